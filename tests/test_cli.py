"""The command line (python -m repghost_mini ...): one-line errors, train -> convert -> eval round trip, quick tour."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import repghost_mini as rg
from repghost_mini.cli import main


def run_main(argv, capsys):
    """(exit code, stdout, stderr) of main(argv), also when argparse exits."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_error(code, err):
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "error:" in lines[0] and "Traceback" not in err


def subset_available() -> bool:
    try:
        rg.load_dataset("cifar10-subset", download=False)
        return True
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_module_entry_point_help():
    proc = subprocess.run([sys.executable, "-m", "repghost_mini", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0
    for command in ("tour", "train", "export", "eval", "convert", "quantize", "bench", "notebooks"):
        assert command in proc.stdout


@pytest.mark.parametrize("command", ["tour", "train", "export", "eval", "convert", "bench", "notebooks"])
def test_subcommand_help(command, capsys):
    code, out, _ = run_main([command, "--help"], capsys)
    assert code == 0 and out.startswith("usage: repghost-mini " + command)


@pytest.mark.parametrize("argv", [
    [],
    ["fly"],
    ["train", "--epochs", "zero"],
    ["train", "--epochs", "-3"],
    ["tour", "--train-seconds", "0"],
    ["bench", "repghostnet_100", "--image-size", "0"],
    ["bench"],
    ["convert", "only_one_argument.pth"],
])
def test_bad_arguments_give_one_line(argv, capsys):
    assert_one_line_error(*run_main(argv, capsys)[::2])


def test_unknown_model_and_dataset_give_one_line(tmp_path, capsys):
    code, _, err = run_main(["bench", "resnet50"], capsys)
    assert_one_line_error(code, err)
    assert "repghostnet_100" in err  # says what to use instead
    code, _, err = run_main(["train", "--dataset", "mnist", "--epochs", "1", "--out", str(tmp_path)], capsys)
    assert_one_line_error(code, err)


def test_missing_files_give_one_line(tmp_path, capsys):
    missing = str(tmp_path / "missing.pth")
    for argv in (["convert", missing, str(tmp_path / "out.pth")], ["eval", missing]):
        code, _, err = run_main(argv, capsys)
        assert_one_line_error(code, err)
        assert "missing.pth" in err
    not_a_checkpoint = tmp_path / "notes.pth"
    not_a_checkpoint.write_text("hello")
    code, _, err = run_main(["convert", str(not_a_checkpoint), str(tmp_path / "out.pth")], capsys)
    assert_one_line_error(code, err)
    code, _, err = run_main(["tour", "--quick", "--no-download", "--data", str(tmp_path), "--out",
                             str(tmp_path / "runs")], capsys)
    assert_one_line_error(code, err)
    assert "CIFAR-10" in err


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny training run through the CLI (synthetic data, one epoch) -> its run folder."""
    out = tmp_path_factory.mktemp("run")
    code = main(["train", "--dataset", "synthetic", "--epochs", "1", "--batch-size", "64", "--out", str(out),
                 "--no-progress", "--threads", "2"])
    assert code == 0 and (out / "checkpoint.pth").is_file()
    return out


@pytest.mark.slow
def test_a_resumed_run_replaces_its_own_export(tmp_path, capsys):
    """A finished, exported run continued with --resume --allow-changes trains on and replaces the fused.pth and
    model.onnx it wrote before (they hold the earlier weights); a plain export still refuses to overwrite them."""
    out = tmp_path / "run"
    base = ["train", "--dataset", "synthetic", "--batch-size", "64", "--out", str(out), "--no-progress",
            "--threads", "2"]
    assert run_main(base + ["--epochs", "1"], capsys)[0] == 0
    before = torch.load(out / "fused.pth", map_location="cpu", weights_only=True)["state_dict"]
    code, stdout, err = run_main(base + ["--epochs", "2", "--resume", "--allow-changes"], capsys)
    assert code == 0, err
    assert "replaces the run's export from before it was resumed" in stdout
    after = torch.load(out / "fused.pth", map_location="cpu", weights_only=True)["state_dict"]
    assert any(not torch.equal(before[k], after[k]) for k in before)
    code, _, err = run_main(["export", str(out)], capsys)
    assert_one_line_error(code, err)
    assert "already exists" in err


@pytest.mark.slow
def test_convert_round_trip_gives_equal_logits(trained_run, tmp_path, capsys):
    fused_path = tmp_path / "fused.pth"
    code, out, err = run_main(["convert", str(trained_run / "checkpoint.pth"), str(fused_path)], capsys)
    assert code == 0, err
    assert "fused checkpoint" in out and "-> 0 BatchNorms" in out
    ckpt = torch.load(fused_path, map_location="cpu", weights_only=True)
    assert ckpt["fused"] is True and not any(k.endswith("running_var") for k in ckpt["state_dict"])
    original = rg.training.load_trained(trained_run / "checkpoint.pth")
    assert ckpt["model_config"]["small_input"] is True  # decided by the data: 32 px images
    fused = rg.reparameterize(rg.build_model(ckpt["config"]["model"], ckpt["num_classes"], small_input=True).eval())
    rg.load_checkpoint(fused, ckpt["state_dict"])
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(fused(x), original(x), rtol=1e-4, atol=1e-4)
    assert rg.count_batchnorms(fused) == 0
    # converting a fused checkpoint again, or onto itself, is refused in one line
    code, _, err = run_main(["convert", str(fused_path), str(tmp_path / "again.pth")], capsys)
    assert_one_line_error(code, err)
    code, _, err = run_main(["convert", str(fused_path), str(fused_path)], capsys)
    assert_one_line_error(code, err)


@pytest.mark.skipif(not subset_available(), reason="the CIFAR-10 subset is not found (set REPGHOST_MINI_DATA)")
def test_eval_on_real_subset_training_form_equals_fused(trained_run, tmp_path, capsys):
    # a model of the synthetic classes is refused on CIFAR-10's (class names are compared, issue #37) ...
    code, out, err = run_main(["eval", str(trained_run / "checkpoint.pth"), "--dataset", "cifar10-subset",
                               "--limit", "10"], capsys)
    assert_one_line_error(code, err)
    assert "class 0 of the model is 'class0' but of 'cifar10-subset' 'airplane'" in err
    # ... and scored on its own data, both forms alike
    code, out, err = run_main(["eval", str(trained_run / "checkpoint.pth"), "--limit", "10"], capsys)
    assert code == 0, err
    assert "100 images" in out
    top1 = dict(re.findall(r"^(training form|re-parameterized)\s+top-1 ([\d.]+)%", out, flags=re.M))
    assert set(top1) == {"training form", "re-parameterized"} and top1["training form"] == top1["re-parameterized"]
    assert "predictions equal on 100.00%" in out
    fused_path = tmp_path / "fused.pth"
    assert run_main(["convert", str(trained_run / "checkpoint.pth"), str(fused_path)], capsys)[0] == 0
    code, out, err = run_main(["eval", str(fused_path), "--limit", "10"], capsys)
    assert code == 0, err
    assert re.search(r"fused model: top-1 ([\d.]+)%", out).group(1) == top1["re-parameterized"]


def test_bench_prints_a_markdown_row_per_model(capsys):
    code, out, err = run_main(["bench", "repghostnet_050", "repghostnet_050_fused", "--image-size", "32",
                               "--rounds", "1", "--min-run-time", "0.01", "--baseline", "repghostnet_050"], capsys)
    assert code == 0, err
    rows = [line.split("|") for line in out.splitlines() if line.startswith("| repghostnet_050")]
    assert [r[1].strip() for r in rows] == ["repghostnet_050", "repghostnet_050_fused"]
    assert all(float(r[5]) > 0 for r in rows) and float(rows[0][7]) == 1.0  # median ms; ratio of baseline to itself
    code, out, _ = run_main(["bench", "--list"], capsys)
    assert code == 0 and "repghostnet_100_fused" in out.split()


@pytest.mark.slow
@pytest.mark.skipif(not subset_available(), reason="the CIFAR-10 subset is not found (set REPGHOST_MINI_DATA)")
def test_quick_tour_writes_a_report(tmp_path, capsys):
    code, out, err = run_main(["tour", "--quick", "--train-seconds", "3", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    report = Path(out.strip().splitlines()[-1].removeprefix("report: "))
    assert report.is_file() and report.parent.parent == tmp_path
    text = report.read_text()
    for heading in ("## 1. Concatenation vs add", "fused into module e", "Table 3", "## 4. Training",
                    "## 5. Re-parameterization", "## 6. Latency"):
        assert heading in text
    assert re.search(r"^RESULT tour test top-1: \d+\.\d%$", out, re.MULTILINE)
    for figure in re.findall(r"!\[[^]]*\]\(([^)]+)\)", text):
        assert (report.parent / figure).is_file()
    results = json.loads((report.parent / "tour.json").read_text())
    assert results["data"]["name"] == "cifar10-subset"
    assert results["concat_vs_add"]["pairs"] == 32
    assert all(f["max_abs_diff"] < 1e-9 for f in results["fusion"])
    rp = results["reparam"]
    assert rp["batchnorms"][1] == 0 and rp["agreement"] == 1.0
    assert abs(rp["train_form"]["top1"] - rp["fused"]["top1"]) < 1e-9
    for row in results["table3"]:
        assert abs(row["params_m"] - row["paper_params_m"]) <= 0.05 and abs(row["macs_m"] - row["paper_macs_m"]) <= 1


def test_train_flags_are_the_config_fields():
    """Every train option sets the TrainConfig field named by its dest, every model option (ModelOptions) has one,
    and an option not given leaves the config's default."""
    from repghost_mini.cli import _train_overrides, build_parser

    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    dests = {a.dest for a in train._actions} - {"help", "no_export"}
    assert dests <= set(rg.TrainConfig.__dataclass_fields__), dests - set(rg.TrainConfig.__dataclass_fields__)
    assert set(rg.ModelOptions.names()) - {"model_kwargs"} <= dests
    assert _train_overrides(parser.parse_args(["train"])) == {}
    given = _train_overrides(parser.parse_args(["train", "--no-ema", "--full-size", "--branches", "identity,bn",
                                                "--no-shortcut", "--data", "d", "--out", "o"]))
    assert given == {"ema_decay": None, "small_input": False, "branches": ("identity", "bn"), "shortcut": False,
                     "data_path": "d", "out_dir": "o"}
