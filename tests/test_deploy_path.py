"""The straight path from training to a deployable model: the model card, `train` -> fused.pth + model.onnx,
`export`, `eval` of either file with no other flag, `repghost_mini.load`, one fusion on the way."""
import re
from pathlib import Path

import onnx
import pytest
import torch

import repghost_mini as rg
from repghost_mini.cli import main
from repghost_mini.deploy import artifacts
from repghost_mini.training import trainer

from test_cli import run_main, subset_available

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """`train --dataset cifar10-subset --epochs 1` as a new user would type it (fewer images, to stay fast), with
    every fusion counted."""
    if not subset_available():
        pytest.skip("the CIFAR-10 subset is not found (set REPGHOST_MINI_DATA)")
    out = tmp_path_factory.mktemp("run")
    calls = []
    patches = pytest.MonkeyPatch()
    for module in (trainer, artifacts):
        original = module.fuse_model
        patches.setattr(module, "fuse_model", lambda m, _f=original: calls.append(1) or _f(m))
    try:
        code = main(["train", "--dataset", "cifar10-subset", "--epochs", "1", "--train-per-class", "40",
                     "--test-per-class", "20", "--batch-size", "64", "--out", str(out), "--no-progress",
                     "--threads", "2"])
    finally:
        patches.undo()
    assert code == 0
    return out, len(calls)


@pytest.mark.slow
def test_train_leaves_fused_weights_and_onnx_fusing_once(run):
    folder, fusions = run
    for name in ("checkpoint.pth", "fused.pth", "model.onnx", "final.json"):
        assert (folder / name).is_file(), name
    assert fusions == 1  # the final evaluation's fused model is the one saved and exported
    fused = rg.load(folder / "fused.pth")
    assert rg.count_batchnorms(fused) == 0 and fused.card.fused
    ops = rg.deploy.count_onnx_ops(folder / "model.onnx")
    assert "BatchNormalization" not in ops and "Concat" not in ops


def test_the_card_travels_with_every_file(run):
    folder, _ = run
    cards = {name: rg.load(folder / name).card for name in ("checkpoint.pth", "fused.pth", "model.onnx")}
    for name, card in cards.items():
        assert card.dataset == "cifar10-subset" and card.image_size == 32 and card.num_classes == 10, name
        assert card.mean == rg.training.NORMALIZATION["cifar10"][0]
        assert card.std == rg.training.NORMALIZATION["cifar10"][1]
        assert card.class_names == rg.training.CIFAR10_CLASSES and card.options.model == "repghostnet_050"
        assert card.top1 is not None and card.top1_split.startswith("cifar10-subset test split")
        assert "held out" in card.selected_on and card.weights in ("ema", "raw")
        assert card.library_version and card.recipe["epochs"] == 1 and "threads" not in card.recipe
    assert not cards["checkpoint.pth"].fused and cards["fused.pth"].fused and cards["model.onnx"].fused
    props = {p.key: p.value for p in onnx.load(str(folder / "model.onnx")).metadata_props}
    assert rg.ModelCard.from_json(props[rg.training.CARD_KEY]) == cards["model.onnx"]


def test_load_rebuilds_every_file_to_the_same_function(run):
    folder, _ = run
    models = {name: rg.load(folder / name) for name in (".", "fused.pth", "model.onnx")}
    images = rg.load_dataset("cifar10-subset", test_per_class=2, download=False).test.images
    x = models["."].card.preprocess(list(images))  # uint8 (3, 32, 32) images -> the normalized batch
    assert x.shape == (20, 3, 32, 32) and x.dtype == torch.float32
    with torch.no_grad():
        logits = {name: m(x) for name, m in models.items()}
    torch.testing.assert_close(logits["fused.pth"], logits["."], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(logits["model.onnx"], logits["."], rtol=1e-4, atol=1e-4)


def test_eval_of_onnx_and_fused_needs_no_flag_and_agrees(run, capsys):
    folder, _ = run
    top1 = {}
    for name in ("model.onnx", "fused.pth"):
        code, out, err = run_main(["eval", str(folder / name)], capsys)
        assert code == 0, err
        assert "cifar10-subset test split, 1017 images" in out
        top1[name] = float(re.search(r"top-1 ([\d.]+)%", out).group(1))
    assert top1["model.onnx"] == top1["fused.pth"]


@pytest.mark.slow
def test_quantized_file_keeps_the_card(run, tmp_path, capsys):
    folder, _ = run
    code, out, err = run_main(["quantize", str(folder / "checkpoint.pth"), str(tmp_path / "int8.onnx"),
                               "--calibration-images", "64"], capsys)
    assert code == 0, err
    assert rg.deploy.read_onnx_card(tmp_path / "int8.onnx") == rg.load(folder / "fused.pth").card.replace(
        image_size=32)
    code, out, err = run_main(["eval", str(tmp_path / "int8.onnx"), "--limit", "5"], capsys)  # no --dataset
    assert code == 0 and "ONNX INT8" in out, err


@pytest.mark.slow
def test_export_command_writes_both_files_and_never_overwrites(run, tmp_path, capsys):
    folder, _ = run
    code, out, err = run_main(["export", str(folder), "--out", str(tmp_path / "deploy")], capsys)
    assert code == 0, err
    assert (tmp_path / "deploy" / "fused.pth").is_file() and (tmp_path / "deploy" / "model.onnx").is_file()
    assert "checked against PyTorch" in out
    code, _, err = run_main(["export", str(folder), "--out", str(tmp_path / "deploy")], capsys)
    assert code == 2 and "already exists" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_main(["export", str(folder / "fused.pth"), "--out", str(tmp_path / "again")], capsys)
    assert code == 2 and "already a fused checkpoint" in err


def test_export_of_an_older_checkpoint_says_why_not(tmp_path, capsys):
    code, _, err = run_main(["export", str(DATA / "v1_train_checkpoint.pth"), "--out", str(tmp_path)], capsys)
    assert code == 2 and "does not record its input size" in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_a_model_without_card_needs_an_input_size(tmp_path):
    model = rg.repghostnet(0.1, num_classes=4).eval()
    with pytest.raises(ValueError, match="input_size"):
        rg.export_onnx(model, tmp_path / "m.onnx")
    assert rg.deploy.read_onnx_card(rg.export_onnx(model, tmp_path / "m.onnx", (1, 3, 32, 32))) is None
    with pytest.raises(ValueError, match="no repghost_mini model card"):
        rg.load(tmp_path / "m.onnx")


def test_fusability_is_known_from_the_options():
    assert rg.ModelOptions("repghostnet_050").why_not_fusable() is None
    assert "Table 6" in rg.ModelOptions("repghostnet_050_relu").why_not_fusable()
    assert "Table 6" in rg.ModelOptions("repghostnet", model_kwargs={"relu_after_dw": True}).why_not_fusable()


def test_fuse_model_fuses_the_feature_extractor_without_timm(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "timm", None)  # importing timm now fails: our models must not need it
    net = rg.randomize_bn_stats_(rg.core.repghostnet_050(features_only=True).eval())
    fused = rg.fuse_model(net)
    assert rg.count_batchnorms(net) > 0 and rg.count_batchnorms(fused) == 0
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for a, b in zip(net(x), fused(x), strict=True):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


def test_card_round_trip_and_damaged_cards():
    card = rg.ModelCard(rg.ModelOptions("repghostnet_050", branches=("bn",)), 10, 32, (0.5,) * 3, (0.25,) * 3,
                        dataset="cifar10")
    assert rg.ModelCard.from_json(card.to_json()) == card
    with pytest.raises(ValueError, match="lacks"):
        rg.ModelCard.from_dict({"options": {}})
    with pytest.raises(ValueError, match="not valid JSON"):
        rg.ModelCard.from_json("{")
