"""The reference CIFAR-10 model that ships with the package (a `train` run written by benchmarks/cifar_reference.py):
small, with its card, history and commands, fused on loading, and as accurate on the real CIFAR-10 test images
through `eval` as its file records; and the script's reconstruction of the `train` command lines."""
import importlib.util
import os
import re
import shlex
from pathlib import Path

import pytest
import torch

import repghost_mini as r
from repghost_mini.cli import main as cli_main
from repghost_mini.training import checkpoints

ROOT = Path(__file__).resolve().parents[1]
PATH = checkpoints.WEIGHTS_DIR / r.training.REFERENCE_MODELS["cifar10"]
SHIPPED = PATH.is_file()
DATA = os.environ.get("REPGHOST_MINI_DATA")
needs_weights = pytest.mark.skipif(not SHIPPED, reason="no reference weights in repghost_mini/weights/ (written by "
                                                       "benchmarks/cifar_reference.py from a finished run)")


def _script():
    spec = importlib.util.spec_from_file_location("cifar_reference", ROOT / "benchmarks" / "cifar_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_weights
def test_shipped_reference_model_is_small_fused_on_loading_and_records_its_run():
    assert PATH.stat().st_size <= 5e6, "the issue allows at most 5 MB of committed weights"
    raw = r.training.read_checkpoint(PATH).raw
    assert raw["fused"] is False, "the training form is shipped; the package fuses it"
    assert all(v.dtype == torch.float16 for v in raw["state_dict"].values() if v.is_floating_point())
    model = r.training.load_reference_model("cifar10")
    assert not model.training and r.count_batchnorms(model) == 0 and model.card.fused
    assert model.class_names == list(r.training.CIFAR10_CLASSES) == model.card.class_names
    assert model.card.image_size == 32 and model.card.dataset == "cifar10" and model.card.top1 >= 85
    info = model.info
    assert info["test_top1"] >= 85 and info["train_minutes"] > 0 and info["device"]
    assert info["commands"] and all(c.startswith("python -m repghost_mini train --model ") for c in info["commands"])
    assert len(info["history"]) == model.card.recipe["epochs"]
    loaded = r.load(PATH)  # the one loader of saved models: training form, card included
    assert loaded.card.top1 == model.card.top1 and not loaded.card.fused and r.count_batchnorms(loaded) > 0


@pytest.mark.slow
@needs_weights
def test_shipped_reference_model_reaches_its_recorded_top1_through_eval(capsys):
    """`python -m repghost_mini eval <weights> --dataset cifar10` on all 10,000 CIFAR-10 test images when they are
    here (the issue's goal, 85%, and within 0.3 points of the record: float16 storage may move a few images), else
    the subset's 1,017 test images (a slice of the same test batch: >= 80% leaves room for sampling)."""
    try:
        r.load_dataset("cifar10", download=False)
        record = r.training.load_reference_model("cifar10").info["test_top1"]
        dataset, floor = "cifar10", max(85.0, record - 0.3)
    except FileNotFoundError:
        if not DATA or not os.path.isdir(os.path.join(DATA, "cifar10-subset")):
            pytest.skip("no CIFAR-10 test images here (set REPGHOST_MINI_DATA)")
        dataset, floor = "cifar10-subset", 80.0
    assert cli_main(["eval", str(PATH), "--dataset", dataset, "--no-download", "--batch-size", "500"]) == 0
    out = capsys.readouterr().out
    fused = float(re.search(r"re-parameterized\s+top-1 ([\d.]+)%", out).group(1))
    assert fused >= floor, out
    assert "top-1 predictions equal on 100.00% of images" in out, out


def test_train_commands_name_each_resume_with_changed_settings():
    """A run continued with --allow-changes is two commands: the first with the old settings, then the new ones."""
    cfg = r.TrainConfig(model="repghostnet_080", dataset="cifar10", epochs=45, ema_decay=0.998).to_dict()
    first, second = _script().train_commands(cfg, [{"epoch": 5, "changed": {"epochs": [60, 45]}}])
    assert " --epochs 60 " in first and first.endswith(" --out RUN") and "--resume" not in first
    assert " --epochs 45 " in second and second.endswith(" --out RUN --resume --allow-changes")
    assert first.replace(" --epochs 60 ", " --epochs 45 ") + " --resume --allow-changes" == second


@pytest.mark.parametrize("config", [
    dict(model="repghostnet_080", dataset="cifar10", epochs=60, dropout=0.0, ema_decay=0.998, compile=True, threads=2),
    dict(model="repghostnet_050", epochs=3, branches=("identity",), shortcut=False, ema_decay=None, compile=False),
    dict(model="repghostnet_050", epochs=3, branches=(), small_input=False, relu_after_dw=True, lr=0.05),
])
def test_train_command_reproduces_the_run_settings(config):
    """The command written beside the weights parses back, with the CLI's own parser, to the same settings."""
    from repghost_mini.cli import _train_overrides, build_parser

    cfg = r.TrainConfig(**config).to_dict()
    command = _script().train_command(cfg)
    assert command.startswith(f"python -m repghost_mini train --model {config['model']} ")
    again = r.TrainConfig(**_train_overrides(build_parser().parse_args(shlex.split(command)[3:])))
    for key in ("model", "epochs", "lr", "dropout", "ema_decay", "compile", "shortcut", "small_input", "relu_after_dw"):
        assert getattr(again, key) == cfg[key], key
    assert tuple(again.branches or ()) == tuple(cfg["branches"] or ())
