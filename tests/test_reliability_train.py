"""Issue #11, trainer / checkpoints / CLI: no silent wrong result (items 1-3, EMA), no lost run (6, 8), one line
for every user error (9-11, 13, 14), full and read-only disks on small tmpfs mounts (10)."""
import json
import os

import pytest
import torch

import repghost_mini as rg
from repghost_mini.cli import main
from repghost_mini.files import RunFolderBusy, RunLock
from repghost_mini.training import trainer as trainer_module

from test_cli import assert_one_line_error, run_main
from test_reliability_export import fill, tmpfs
from test_train import TINY, colour_bundle

CLI_RUN = ["--dataset", "synthetic", "--model", "repghostnet_050", "--epochs", "1", "--batch-size", "128",
           "--no-progress", "--threads", "1", "--eval-every", "0", "--no-export"]


@pytest.fixture(scope="module")
def bundle():
    return colour_bundle()


@pytest.fixture(scope="module")
def finished(tmp_path_factory, bundle):
    """One finished tiny run (epochs=1, seed=1)."""
    out = tmp_path_factory.mktemp("finished")
    rg.train(bundle=bundle, epochs=1, seed=1, out_dir=str(out), eval_every=0, ema_decay=0.5, **TINY)
    return out


def test_train_or_load_never_returns_another_runs_weights(tmp_path, bundle):  # item 1
    cfg = rg.TrainConfig(epochs=1, seed=1, out_dir=str(tmp_path), eval_every=0, **TINY)
    _, _, how = rg.train_or_load(cfg, bundle)
    assert how == "trained" and rg.train_or_load(cfg, bundle)[2] == "cache"
    # another run (seed 5) stops half-way in the same folder: the cache must not hand out its weights
    rg.train(bundle=bundle, epochs=2, seed=5, stop_after=1, out_dir=str(tmp_path), eval_every=0, overwrite=True,
             **TINY)
    model, _, how = rg.train_or_load(cfg, bundle)
    assert how == "trained"
    ckpt = torch.load(tmp_path / "checkpoint.pth", weights_only=True)
    assert ckpt["config"]["seed"] == 1 and ckpt["finished"]


@pytest.mark.slow
def test_resume_refuses_changed_settings_unless_allowed(tmp_path, bundle):  # items 2 and 11
    rg.train(bundle=bundle, epochs=3, stop_after=1, out_dir=str(tmp_path), eval_every=0, **TINY)
    with pytest.raises(ValueError, match=r"lr 0.2 -> 0.9, weight_decay 1e-05 -> 0.01.*--allow-changes") as err:
        rg.train(bundle=bundle, epochs=3, out_dir=str(tmp_path), resume=True, eval_every=0,
                 **{**TINY, "lr": 0.9}, weight_decay=0.01)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="another network.*model_kwargs") as err:  # --branches differs
        rg.train(bundle=bundle, epochs=3, out_dir=str(tmp_path), resume=True, eval_every=0, allow_changes=True,
                 **{**TINY, "model_kwargs": {"width": 0.1, "branches": ()}})
    res = rg.train(bundle=bundle, epochs=3, out_dir=str(tmp_path), resume=True, eval_every=0, allow_changes=True,
                   **{**TINY, "lr": 0.9})
    assert res.history[-1]["lr"] == pytest.approx(0.0, abs=1e-9)  # the restarted schedule still ends at zero
    assert max(h["lr"] for h in res.history[1:]) > 0.2  # ... from the new lr
    final = json.loads((tmp_path / "final.json").read_text())
    assert final["changes"] == [{"epoch": 1, "changed": {"lr": [0.2, 0.9]}}] and final["config"]["lr"] == 0.9


def test_load_checkpoint_checks_the_network_it_was_trained_as(finished):  # item 3
    path = finished / "checkpoint.pth"
    wrong = rg.repghostnet(0.1, num_classes=4, small_input=False)
    with pytest.raises(ValueError, match="small_input=True in the file, False in the model"):
        rg.load_checkpoint(wrong, path)
    right = rg.load_checkpoint(rg.repghostnet(0.1, num_classes=4, small_input=True), path)
    kept = json.loads((finished / "final.json").read_text())["weights"]
    assert torch.equal(right.classifier.weight, rg.training.load_trained(finished).classifier.weight)
    assert rg.training.load_trained(finished).weights == kept


def test_a_folder_is_owned_by_one_run_and_finished_runs_are_not_overwritten(finished, bundle, tmp_path):  # 6, 8
    with RunLock(tmp_path / "busy"):
        with pytest.raises(RunFolderBusy, match="in use by process"):
            rg.train(bundle=bundle, epochs=1, out_dir=str(tmp_path / "busy"), **TINY)
    before = (finished / "checkpoint.pth").read_bytes()
    with pytest.raises(ValueError, match="already holds a finished run"):
        rg.train(bundle=bundle, epochs=1, seed=1, out_dir=str(finished), eval_every=0, **TINY)
    assert (finished / "checkpoint.pth").read_bytes() == before
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    with pytest.raises(ValueError, match="is not empty"):
        rg.train(bundle=bundle, epochs=1, out_dir=str(tmp_path / "mine"), **TINY)
    umask = os.umask(0)
    os.umask(umask)
    assert (finished / "checkpoint.pth").stat().st_mode & 0o777 == 0o666 & ~umask  # like every other file
    assert not (finished / ".lock").exists()


def test_failed_run_leaves_no_empty_folder(tmp_path, bundle, monkeypatch):  # item 14
    def boom(*args, **kwargs):
        raise ValueError("something the user did wrong")

    monkeypatch.setattr(trainer_module, "_train", boom)
    with pytest.raises(ValueError, match="user did wrong"):
        rg.train(bundle=bundle, epochs=1, out_dir=str(tmp_path / "new" / "run"), **TINY)
    assert not (tmp_path / "new" / "run").exists()


def test_unfusable_variant_is_known_before_training(tmp_path, bundle):  # item 13
    res = rg.train(bundle=bundle, epochs=1, out_dir=str(tmp_path), eval_every=0,
                   **{**TINY, "model_kwargs": {"width": 0.1, "relu_after_dw": True}})
    assert res.final["fused"] is None and "cannot be re-parameterized" in res.final["not_fusable"]
    assert json.loads((tmp_path / "final.json").read_text())["train_form"]["top1"] >= 0


@pytest.mark.parametrize("argv", [
    ["train", "--device", "tpu"], ["train", "--device", "cuda:7"], ["train", "--model", "timm:not_a_model"],
    ["train", "--eval-every", "-1"], ["tour", "--model", "nope"],
    ["tour", "--device", "tpu"], ["eval", "--device", "cuda", "x.pth"],
])
def test_bad_values_give_one_line_before_any_work(argv, capsys, tmp_path, monkeypatch):  # items 9, 14
    if "cuda" in argv and torch.cuda.is_available() and torch.cuda.device_count() > 7:
        pytest.skip("this machine has that GPU")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main([argv[0], *CLI_RUN, *argv[1:]] if argv[0] == "train" else argv, capsys)
    assert_one_line_error(code, err)
    assert not list(tmp_path.iterdir())  # nothing written


def test_cli_paths_that_cannot_work(finished, tmp_path, capsys):  # items 8, 10, 14
    (tmp_path / "a_file").write_text("x")
    for argv, words in (
            (["train", *CLI_RUN, "--out", str(tmp_path / "a_file")], "is a file"),
            (["train", *CLI_RUN, "--out", str(tmp_path / "a_file" / "run")], "part of the folder path is a file"),
            (["train", *CLI_RUN, "--out", str(finished)], "already holds a finished run"),
            (["eval", str(tmp_path)], "folder without a checkpoint.pth"),
            (["convert", str(finished), str(tmp_path / "a_file")], "already exists"),
            (["convert", str(finished), str(tmp_path / "a_file" / "fused.pth")], "a_file is a file")):
        code, _, err = run_main(argv, capsys)
        assert_one_line_error(code, err)
        assert words in err, err
    assert (tmp_path / "a_file").read_text() == "x"


def test_eval_names_the_weights_it_used(tmp_path, capsys):  # EMA vs raw
    code, out, _ = run_main(["train", *CLI_RUN, "--out", str(tmp_path / "run")], capsys)
    assert code == 0
    kept = json.loads((tmp_path / "run" / "final.json").read_text())["weights"]
    code, out, _ = run_main(["eval", str(tmp_path / "run"), "--threads", "1"], capsys)
    assert code == 0 and f"weights: the {'EMA' if kept == 'ema' else 'raw (non-EMA)'} weights the run kept" in out


def test_read_only_and_full_disks_give_one_line(finished, tmp_path, capsys):  # item 10
    with tmpfs(tmp_path / "ro", read_only=True) as ro:
        code, _, err = run_main(["train", *CLI_RUN, "--out", str(ro / "run")], capsys)
        assert_one_line_error(code, err)
        assert "read-only" in err
    with tmpfs(tmp_path / "full", size="200k") as full:
        code, _, err = run_main(["train", *CLI_RUN, "--out", str(full / "run")], capsys)
        assert_one_line_error(code, err)
        assert "disk is full" in err and "inline_container" not in err
        assert not [p for p in (full / "run").iterdir() if p.name.endswith(".tmp") or p.name == ".lock"]
        fill(full)
        code, _, err = run_main(["convert", str(finished), str(full / "fused.pth")], capsys)
        assert_one_line_error(code, err)
        assert "disk is full" in err and not (full / "fused.pth").exists()


def test_genuine_bugs_still_raise_with_a_traceback(monkeypatch, tmp_path):
    def bug(*args, **kwargs):
        raise KeyError("a bug in the library")

    monkeypatch.setattr(trainer_module, "train", bug)
    with pytest.raises(KeyError):
        main(["train", *CLI_RUN, "--out", str(tmp_path / "r")])
