"""The one checkpoint format: one writer (save_checkpoint), one reader (read_checkpoint) used by load_trained,
load_checkpoint, the CLI and load_reference_model; files written before it (tests/data/v1_*: a training run and a
`convert` output of the previous version, a 2-stage RepGhostNet 0.1x without shortcut) keep loading."""
from pathlib import Path

import pytest
import torch

import repghost_mini as r
from repghost_mini.training import checkpoints

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def expected():
    return torch.load(DATA / "v1_expected_logits.pt", weights_only=True)


def test_old_training_checkpoint_loads_with_its_model_options(expected):
    ckpt = r.training.read_checkpoint(DATA / "v1_train_checkpoint.pth")
    assert ckpt.model_name == "repghostnet" and not ckpt.fused and ckpt.num_classes == 4 and ckpt.has_ema
    assert ckpt.model_options["shortcut"] is False and len(ckpt.model_options["cfg"]) == 2
    model = r.training.load_trained(DATA / "v1_train_checkpoint.pth")  # EMA weights, as the old run returned them
    with torch.no_grad():
        torch.testing.assert_close(model(expected["x"]), expected["logits"], rtol=1e-6, atol=1e-6)


def test_old_convert_output_loads_as_a_fused_model(expected):
    ckpt = r.training.read_checkpoint(DATA / "v1_convert_fused.pth")
    assert ckpt.fused and ckpt.run_config["model"] == "repghostnet"
    model = ckpt.build_model()
    assert r.count_batchnorms(model) == 0
    with torch.no_grad():
        torch.testing.assert_close(model(expected["x"]), expected["logits"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fused", [False, True])
def test_save_then_read_rebuilds_the_exact_model(tmp_path, fused):
    torch.manual_seed(0)
    model = r.randomize_bn_stats_(r.build_model("repghostnet_050_noshortcut", 7, small_input=True,
                                                branches=("identity", "bn"), width=0.25), seed=1).eval()
    if fused:
        model = r.reparameterize(model)
    path = r.training.save_checkpoint(tmp_path / "m.pth", model, "repghostnet_050_noshortcut",
                                      class_names=list("abcdefg"))
    ckpt = r.training.read_checkpoint(path)
    assert ckpt.fused is fused and ckpt.num_classes == 7 and ckpt.class_names == list("abcdefg")
    rebuilt = ckpt.build_model()
    assert rebuilt.config == model.config
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model(x))


def test_load_checkpoint_refuses_a_differently_built_model(tmp_path):
    model = r.build_model("repghostnet_050", 10, small_input=True)
    path = r.training.save_checkpoint(tmp_path / "m.pth", model, "repghostnet_050")
    with pytest.raises(r.UserError, match="small_input=True in the file, False in the model"):
        r.load_checkpoint(r.core.repghostnet_050(num_classes=10), path)
    r.load_checkpoint(r.core.repghostnet_050(num_classes=10, small_input=True), path)  # same options: loads


def test_foreign_file_is_named_in_one_sentence(tmp_path):
    path = r.training.save_atomic({"weights": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(r.UserError, match="not a repghost_mini checkpoint"):
        r.training.read_checkpoint(path)


def test_reference_model_missing_says_so_in_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="reference model 'cifar10' is not installed") as info:
        r.training.load_reference_model("cifar10")
    assert "\n" not in str(info.value)
    with pytest.raises(r.UserError, match="unknown reference model"):
        r.training.load_reference_model("imagenet")


def test_reference_model_loads_from_package_data(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "WEIGHTS_DIR", tmp_path)
    torch.manual_seed(0)
    trained = r.randomize_bn_stats_(r.build_model("repghostnet_050", 10, width=0.25), seed=0).eval()
    fused = r.reparameterize(trained)
    names = [f"class{i}" for i in range(10)]
    r.training.save_checkpoint(tmp_path / r.training.REFERENCE_MODELS["cifar10"], fused, "repghostnet_050", fused=True,
                      class_names=names, image_size=32, dtype=torch.float16, test_top1=12.5)
    model = r.training.load_reference_model()
    assert not model.training and model.class_names == names and r.count_batchnorms(model) == 0
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():  # float16 storage: equal to rounding
        torch.testing.assert_close(model(x), fused(x), rtol=2e-2, atol=2e-2)


def test_reference_payload_of_the_first_script_version_loads(tmp_path, monkeypatch):
    """The payload benchmarks/cifar_reference.py wrote before the one format (a run may still write it)."""
    monkeypatch.setattr(checkpoints, "WEIGHTS_DIR", tmp_path)
    fused = r.reparameterize(r.build_model("repghostnet_050", 10).eval())
    payload = {"state_dict": {k: v.half() for k, v in fused.state_dict().items()}, "model": "repghostnet_050",
               "small_input": True, "num_classes": 10, "class_names": list("abcdefghij"), "test_top1": 86.0,
               "train_minutes": 1.0, "device": "cpu", "recipe": {"model": "repghostnet_050"}}
    r.training.save_atomic(payload, tmp_path / r.training.REFERENCE_MODELS["cifar10"])
    model = r.training.load_reference_model("cifar10")
    assert model.config["small_input"] is True and model.class_names == list("abcdefghij")
