"""Issue #37: no silent wrong result, no lost file. A diverged run stops the epoch it diverges; no comparison of
outputs passes on NaN; settings that make no sense are refused before any work; no command replaces a file it
did not write; the card is checked wherever data meets a model; image folders of any size load; every field read
from a file is validated. One case per bad input: each must give one sentence (exit 2 on the command line)."""
import math
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import repghost_mini as rg
from repghost_mini.deploy.export import check_onnx_matches, export_onnx
from repghost_mini.files import atomic_output
from repghost_mini.training.trainer import TrainConfig

from test_cli import assert_one_line_error, run_main
from test_reliability_export import SIZE, small
from test_train import TINY, colour_bundle

SYNTHETIC = ["--dataset", "synthetic", "--epochs", "1", "--no-progress", "--threads", "1", "--no-export"]


@pytest.fixture(scope="module")
def bundle():
    return colour_bundle()


@pytest.fixture(scope="module")
def run(tmp_path_factory, bundle):
    """A finished tiny run on 16 px images, exported (checkpoint.pth, fused.pth, model.onnx)."""
    out = tmp_path_factory.mktemp("run")
    result = rg.train(bundle=bundle, epochs=1, out_dir=str(out), eval_every=0, ema_decay=None, **TINY)
    rg.export_run(out, fused=result.fused, images=next(iter(rg.make_loaders(bundle, 8, augment=False)[1]))[0])
    return out


# ---------------------------------------------------------------------------------------------------------------
# 1. finite or refused
# ---------------------------------------------------------------------------------------------------------------
def test_a_run_that_diverges_in_its_first_epoch_stops_and_saves_nothing(tmp_path, bundle):
    with pytest.raises(rg.UserError, match=r"training diverged in epoch 1: .*lr=1e\+06.*nothing was saved") as err:
        rg.train(bundle=bundle, epochs=2, out_dir=str(tmp_path / "r"), eval_every=1, **{**TINY, "lr": 1e6})
    assert "\n" not in str(err.value) and not (tmp_path / "r").exists()


def test_a_run_that_diverges_later_keeps_its_last_finite_checkpoint(tmp_path, bundle):
    out = tmp_path / "r"
    rg.train(bundle=bundle, epochs=3, stop_after=1, out_dir=str(out), eval_every=0, **TINY)
    with pytest.raises(rg.UserError, match=r"diverged in epoch 2: .*checkpoint.pth still holds epoch 1"):
        rg.train(bundle=bundle, epochs=3, out_dir=str(out), resume=True, allow_changes=True, eval_every=0,
                 **{**TINY, "lr": 1e9})
    kept = torch.load(out / "checkpoint.pth", weights_only=True)
    assert kept["epoch"] == 1 and all(bool(t.isfinite().all()) for t in kept["state_dict"].values()
                                      if t.is_floating_point())
    assert not (out / "fused.pth").exists() and not (out / "model.onnx").exists()


def nan_model():
    model = small()
    with torch.no_grad():
        model.classifier.weight.fill_(float("nan"))
    return model


@pytest.mark.slow
def test_an_all_nan_onnx_file_is_never_equal_to_a_healthy_model(tmp_path):
    path = export_onnx(nan_model(), tmp_path / "nan.onnx", SIZE)
    with pytest.raises(rg.UserError, match="nan.onnx holds NaN or inf"):
        check_onnx_matches(small(), path, input_size=SIZE)
    with pytest.raises(rg.UserError, match="PyTorch model's output holds NaN"):
        check_onnx_matches(nan_model(), export_onnx(small(), tmp_path / "ok.onnx", SIZE), input_size=SIZE)


def test_no_accuracy_is_reported_for_nan_logits(bundle):
    loader = rg.make_loaders(bundle, 8, augment=False)[1]
    model = rg.build_model("repghostnet", 4, width=0.1, small_input=True).eval()
    with torch.no_grad():
        model.classifier.bias.fill_(float("inf"))
    with pytest.raises(rg.UserError, match="holds NaN or inf"):
        rg.evaluate(model, loader)


@pytest.mark.parametrize("argv, word", [
    (["--lr", "inf"], "positive finite number"),
    (["--lr", "nan"], "positive finite number"),
    (["--weight-decay", "nan"], "weight_decay must be a finite number"),
    (["--weight-decay", "-1"], "weight_decay must be >= 0"),
    (["--workers", "-5"], "workers must be"),
    (["--seed", str(2 ** 70)], "seed must be a whole number in"),
    (["--train-per-class", "1"], "--no-ema"),
    (["--warmup", "inf"], "warmup must be a finite number"),
])
def test_settings_that_make_no_sense_are_refused_in_one_line(argv, word, tmp_path, capsys):
    code, out, err = run_main(["train", *SYNTHETIC, "--out", str(tmp_path / "r"), *argv], capsys)
    assert_one_line_error(code, err)
    assert word in err and not (tmp_path / "r").exists()


@pytest.mark.parametrize("settings, word", [
    (dict(epochs="2"), "epochs must be a whole number"),
    (dict(batch_size=2.5), "batch_size must be a whole number"),
    (dict(threads=-3), "threads must be >= 1"),
    (dict(momentum=-1), "momentum must be in [0, 1)"),
    (dict(lr=float("nan")), "lr must be a finite number"),
    (dict(amp="yes"), "amp must be True or False"),
    (dict(ema_decay="0.9"), "ema_decay must be a finite number"),
    (dict(branches="bn"), "branches must be a sequence of names"),
    (dict(out_dir=b"\xff".decode("utf-8", "surrogateescape")), "is not valid UTF-8"),
])
def test_library_settings_of_the_wrong_type_are_refused(settings, word, bundle):
    with pytest.raises(rg.UserError, match=re.escape(word)):
        rg.train(TrainConfig(**settings), bundle=bundle)


def test_valid_settings_of_every_kind_pass_the_check(tmp_path):
    TrainConfig(out_dir=tmp_path, branches=["bn"], resume="a.pth", lr=1, ema_decay=None, epochs=None,
                time_budget=3, workers=0, seed=2 ** 63 - 1).check()


@pytest.mark.parametrize("a, b, verdict", [
    ([1.0, 1.0], [1.0 + 1e-15] * 2, "cannot rank"),  # a rounding difference is no ranking
    ([2.0, 2.0], [1.0, 1.0], "higher"),  # exact values still rank
    ([1e308, 1.1e308], [1.5e308, 1.6e308], "lower"),  # no overflow near the largest float
])
def test_compare_on_degenerate_samples(a, b, verdict):
    c = rg.compare(a, b)
    assert c.verdict == verdict and all(math.isfinite(v) for v in (c.ratio, c.low, c.high))


# ---------------------------------------------------------------------------------------------------------------
# 2. nothing replaced
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_quantize_never_replaces_the_runs_model_onnx(run, capsys):
    before = (run / "model.onnx").read_bytes()
    code, _, err = run_main(["quantize", str(run / "checkpoint.pth"), str(run / "model.onnx")], capsys)
    assert_one_line_error(code, err)
    assert "already exists; quantize never overwrites" in err and (run / "model.onnx").read_bytes() == before


def test_a_file_created_meanwhile_by_another_writer_is_not_replaced(tmp_path):
    target = tmp_path / "model.onnx"
    with pytest.raises(FileExistsError, match="already exists and was left as it is"):
        with atomic_output(target, overwrite=False) as tmp:
            tmp.write_text("mine")
            target.write_text("theirs")  # another command finished first
    assert target.read_text() == "theirs" and [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    with pytest.raises(FileExistsError):
        with atomic_output(target, overwrite=False):
            pass


# ---------------------------------------------------------------------------------------------------------------
# 3. the card is checked wherever data meets a model
# ---------------------------------------------------------------------------------------------------------------
def data_like(card, **changes):
    fields = dict(name="imagefolder", image_size=card.image_size, num_classes=card.num_classes,
                  class_names=list(card.class_names), mean=card.mean, std=card.std)
    return SimpleNamespace(**{**fields, **changes})


@pytest.mark.parametrize("changes, word", [
    (dict(image_size=64), "takes 16x16 images but 'imagefolder' has 64x64"),
    (dict(num_classes=5, class_names=list("abcde")), "has 4 classes but 'imagefolder' has 5"),
    (dict(class_names=["class1", "class0", "class2", "class3"]), "name the class folders as the model's classes"),
    (dict(mean=(0.1, 0.2, 0.3)), "is normalized with mean (0.1, 0.2, 0.3)"),
])
def test_data_the_model_was_not_trained_on_is_refused(run, changes, word):
    card = rg.load(run / "fused.pth").card
    card.check_data(data_like(card))  # the data it was trained on passes
    with pytest.raises(rg.UserError, match=re.escape(word)) as err:
        card.check_data(data_like(card, **changes))
    assert "\n" not in str(err.value)


def test_eval_of_a_checkpoint_refuses_images_of_another_size(run, tmp_path, capsys):
    folder = tmp_path / "folder"
    for split in ("train", "val"):
        for c in rg.load(run / "fused.pth").card.class_names:
            (folder / split / c).mkdir(parents=True)
            Image.new("RGB", (80, 80)).save(folder / split / c / "a.png")
    # an image folder is resized to the size the card records: 80 px images evaluate at 16 px
    for name in ("fused.pth", "checkpoint.pth", "model.onnx"):
        code, out, err = run_main(["eval", str(run / name), "--dataset", "imagefolder", "--data", str(folder)],
                                  capsys)
        assert code == 2 and "normalized with mean" in err  # a folder is normalized as ImageNet, the run was not


@pytest.mark.slow
def test_a_file_whose_card_and_graph_disagree_is_refused(run, tmp_path):
    card = rg.load(run / "fused.pth").card
    path = export_onnx(rg.load(run / "fused.pth"), tmp_path / "m.onnx", card=card.replace(num_classes=100,
                                                                                           class_names=None))
    for read in (rg.load, rg.deploy.quantize.OnnxModel):
        with pytest.raises(rg.UserError, match="card says 100 classes but its graph has 4"):
            read(path)


# ---------------------------------------------------------------------------------------------------------------
# 4. image folders of any size
# ---------------------------------------------------------------------------------------------------------------
def test_a_folder_of_small_and_odd_sized_images_loads_and_batches(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in ("cat", "dog"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(4):
                pixels = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / split / c / f"{i}.png")
    Image.new("RGB", (80, 60)).save(tmp_path / "val" / "cat" / "wide.png")  # non-square, larger
    data = rg.load_dataset("imagefolder", tmp_path)
    train, test = rg.make_loaders(data, 4, workers=0)
    assert next(iter(train))[0].shape == (4, 3, 64, 64)
    assert sum(x.shape[0] for x, _ in test) == 9
    assert rg.load_dataset("imagefolder", tmp_path, image_size=16).image_size == 16


def test_an_npz_of_non_square_images_is_refused_at_load(tmp_path):
    x = np.zeros((4, 32, 40, 3), np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(4) % 2, x_test=x, y_test=np.arange(4) % 2)
    with pytest.raises(ValueError, match="holds 32x40 images, but the models take square images"):
        rg.load_dataset("npz", tmp_path / "d.npz")


def test_preprocess_takes_images_of_any_mode(run):
    card = rg.load(run / "fused.pth").card
    images = [Image.new(mode, (40, 30)) for mode in ("RGBA", "L", "P", "CMYK")]
    assert card.preprocess(images).shape == (4, 3, 16, 16)
    with pytest.raises(rg.UserError, match="drop an alpha channel"):
        card.preprocess([torch.zeros(4, 8, 8, dtype=torch.uint8)])


# ---------------------------------------------------------------------------------------------------------------
# 5. every field read from a file is validated; one line for the rest
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value, word", [
    ("num_classes", "ten", "num_classes is 'ten'"),
    ("image_size", 16.5, "image_size is 16.5"),
    ("class_names", [1, 2, 3, 4], "class_names is not a list"),
    ("fused", "no", "'fused' is 'no'"),
    ("config", "x", "is not a dict"),
    ("state_dict", {"a": 1}, "not named tensors"),
    ("model_config", {"width": "wide"}, "do not build"),
])
def test_crafted_checkpoint_fields_are_refused(run, tmp_path, field, value, word):
    ckpt = torch.load(run / "checkpoint.pth", weights_only=True)
    torch.save({**ckpt, field: value}, tmp_path / "bad.pth")
    with pytest.raises(rg.UserError, match=word) as err:
        rg.load(tmp_path / "bad.pth")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("field, value, word", [
    ("num_classes", "4", "num_classes must be a whole number"),
    ("image_size", 0, "image_size must be a whole number"),
    ("mean", [0.5, 0.5], "mean must be one finite number per input channel"),
    ("std", [1.0, 0.0, 1.0], "std must be one positive number"),
    ("top1", float("nan"), "top1 must be a percentage"),
    ("weights", "best", "weights must be 'raw' or 'ema'"),
    ("surprise", 1, "unknown fields"),
])
def test_crafted_card_fields_are_refused(run, tmp_path, field, value, word):
    ckpt = torch.load(run / "checkpoint.pth", weights_only=True)
    torch.save({**ckpt, "card": {**ckpt["card"], field: value}}, tmp_path / "bad.pth")
    with pytest.raises(rg.UserError, match=word):
        rg.load(tmp_path / "bad.pth")


def test_a_card_that_contradicts_its_checkpoint_is_refused(run, tmp_path):
    ckpt = torch.load(run / "checkpoint.pth", weights_only=True)
    torch.save({**ckpt, "card": {**ckpt["card"], "num_classes": 5, "class_names": None}}, tmp_path / "bad.pth")
    with pytest.raises(rg.UserError, match="card says num_classes 5 but the file 4"):
        rg.load(tmp_path / "bad.pth")


def test_a_device_file_is_named_as_such():
    with pytest.raises(FileNotFoundError, match="is not a regular file"):
        rg.load("/dev/zero")


def test_cli_one_line_for_the_rest(tmp_path, capsys):
    (tmp_path / "bad.ipynb").write_text("not json")
    cases = [
        (["bench", "repghostnet_050", "--runtimes", "tflite"], "unknown runtime 'tflite'"),
        (["bench", "repghostnet_050", "--baseline", "ghostnet_050"], "baseline 'ghostnet_050' must be one of"),
        (["notebooks", str(tmp_path / "bad.ipynb")], "is not a Jupyter notebook"),
        (["train", *SYNTHETIC, "--out", str(tmp_path / b"\xff".decode("utf-8", "surrogateescape"))],
         "is not valid UTF-8"),
    ]
    for argv, word in cases:
        code, _, err = run_main(argv, capsys)
        assert_one_line_error(code, err)
        assert word in err, (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ipynb"]
