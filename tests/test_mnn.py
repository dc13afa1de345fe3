"""MNN, the paper's runtime (repghost_mini.deploy.mnn): conversion, equality to PyTorch, the paper's protocol, bench,
and the no-network rule. Tests that need MNN skip without the mobile extra (pip install -e '.[mobile]')."""
import ast
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import repghost_mini as rg
from repghost_mini.deploy import mnn as rm

from test_cli import run_main

PACKAGE = Path(rg.__file__).parent
SKIP_REASON = "MNN is not installed (the mobile extra: pip install -e '.[mobile]')"


@pytest.fixture
def needs_mnn():
    pytest.importorskip("MNN", reason=SKIP_REASON)
    pytest.importorskip("_tools", reason=SKIP_REASON)


def small_fused_model() -> torch.nn.Module:
    """RepGhostNet-0.5x for 32-px images, 10 classes, BN statistics randomized (defaults hide bugs), fused."""
    torch.manual_seed(0)
    net = rg.build_model("repghostnet_050", 10, small_input=True).eval()
    return rg.reparameterize(rg.randomize_bn_stats_(net, seed=0))


@pytest.mark.slow
def test_fused_model_in_mnn_equals_pytorch(needs_mnn, tmp_path):
    model = small_fused_model()
    card = rg.ModelCard(rg.ModelOptions("repghostnet_050", small_input=True), 10, 32, (0.5,) * 3, (0.25,) * 3,
                        dataset="cifar10")
    path = rm.export_mnn(model, tmp_path / "model.mnn", card=card)
    assert path.stat().st_size > 0 and rm.read_mnn_card(path) == card  # the card travels in the .mnn file
    module = rm.mnn_module(path)
    for n in (1, 3):  # the batch dimension stays symbolic
        x = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(n))
        with torch.no_grad():
            expected = model(x)
        got = rm.run_mnn(module, x)
        assert got.shape == expected.shape == (n, 10)
        assert (got - expected).abs().max().item() < 1e-4
    torch.testing.assert_close(rm.run_mnn(path, x.numpy()), got)  # a path and a numpy batch work too


@pytest.mark.slow
def test_onnx_file_in_and_bad_files_out(needs_mnn, tmp_path):
    model = small_fused_model()
    onnx_path = rg.export_onnx(model, tmp_path / "model.onnx", (1, 3, 32, 32))
    path = rm.export_mnn(onnx_path, tmp_path / "from_onnx.mnn")
    assert rm.read_mnn_card(path) is None  # an ONNX file without a card gives a .mnn file without one
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (rm.run_mnn(path, x) - model(x)).abs().max().item() < 1e-4
    garbage = tmp_path / "garbage.mnn"
    garbage.write_bytes(b"not an mnn file")
    truncated = tmp_path / "truncated.mnn"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    for bad in (garbage, truncated):
        with pytest.raises(rg.UserError, match="not a complete .mnn file"):
            rm.mnn_module(bad)
    with pytest.raises(FileNotFoundError, match="export_mnn"):
        rm.mnn_module(tmp_path / "missing.mnn")
    with pytest.raises(ValueError, match="4-d|N, C, H, W"):
        rm.run_mnn(path, np.zeros((3, 32, 32), np.float32))


@pytest.mark.slow
def test_a_one_thread_module_runs_on_one_thread(needs_mnn, tmp_path):
    """pymnn's load_module_from_file ignores thread_num; mnn_module must not (a "one-thread" latency that used both
    cores made one model's MNN latency move by 55% between two notebooks of one run)."""
    path = rm.export_mnn(small_fused_model(), tmp_path / "model.mnn", (1, 3, 32, 32))
    x = torch.randn(1, 3, 32, 32)

    def started(threads: int) -> int:
        before = len(os.listdir("/proc/self/task"))
        module = rm.mnn_module(path, threads=threads)
        rm.run_mnn(module, x)
        return len(os.listdir("/proc/self/task")) - before

    assert started(1) == 0
    assert started(2) >= 1  # the count is seen: a pool of two threads starts one


@pytest.mark.slow
def test_mnn_latency_follows_the_papers_protocol(needs_mnn, tmp_path):
    assert "single thread" in rm.PAPER_LATENCY_PROTOCOL and "100 times" in rm.PAPER_LATENCY_PROTOCOL
    path = rm.export_mnn(small_fused_model(), tmp_path / "model.mnn", (1, 3, 32, 32))
    stats = rm.mnn_latency(path, (1, 3, 32, 32), runs=5, warmup=1)
    assert set(stats) == {"mean_ms", "median_ms", "stdev_ms", "min_ms", "max_ms", "runs"} and stats["runs"] == 5
    assert 0 < stats["min_ms"] <= stats["median_ms"] <= stats["max_ms"]
    assert stats["min_ms"] <= stats["mean_ms"] <= stats["max_ms"] and stats["stdev_ms"] >= 0
    with pytest.raises(ValueError, match="runs"):
        rm.mnn_latency(path, runs=0)


@pytest.mark.slow
def test_conversion_and_run_work_with_sockets_blocked(needs_mnn, tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("MNN conversion or inference tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    model = small_fused_model()
    path = rm.export_mnn(model, tmp_path / "model.mnn", (1, 3, 32, 32))
    assert rm.run_mnn(path, torch.randn(1, 3, 32, 32)).shape == (1, 10)
    assert not [m for m in sys.modules if m.startswith(("MNN.tools", "aliyun"))]  # the telemetry path


@pytest.mark.slow
def test_a_fresh_process_imports_converts_and_runs_with_sockets_blocked(needs_mnn, tmp_path):
    """Import time included: sockets are blocked before MNN is first imported."""
    script = textwrap.dedent(f"""
        import socket, sys
        def no_network(*args, **kwargs):
            raise SystemExit("tried to open a network connection")
        socket.socket.connect = socket.socket.connect_ex = no_network
        import torch
        import repghost_mini as rg
        from repghost_mini.deploy import mnn
        net = rg.reparameterize(rg.build_model("repghostnet_050", 10, small_input=True).eval())
        path = mnn.export_mnn(net, {str(tmp_path / "m.mnn")!r}, (1, 3, 32, 32))
        assert mnn.run_mnn(path, torch.randn(1, 3, 32, 32)).shape == (1, 10)
        assert not [m for m in sys.modules if m.startswith(("MNN.tools", "aliyun"))]
        print("ok")
        """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok"  # MNN's native log lines are kept out of the output as well


def _code_strings_and_imports(tree: ast.AST):
    """The string constants of a module that are not docstrings, and the names of the modules it imports."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    strings = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
               and isinstance(node.value, str) and id(node) not in docstrings]
    imports = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imports += [f"{node.module}.{alias.name}" for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module for alias in node.names]
    return strings, imports


def test_the_package_never_runs_mnns_console_scripts():
    """mnnconvert / mnnquant (and MNN.tools behind them) pip-install a logging SDK and send usage data."""
    for path in sorted(PACKAGE.rglob("*.py")):
        strings, imports = _code_strings_and_imports(ast.parse(path.read_text()))
        named = [s for s in strings if any(word in s for word in ("mnnconvert", "mnnquant", "MNN.tools", "aliyun"))]
        assert not named, f"{path.relative_to(PACKAGE)} names MNN's console scripts or telemetry: {named}"
        assert not [m for m in imports if m.startswith("MNN.tools") or m == "MNN.tools"], path


def test_missing_mnn_is_one_sentence(monkeypatch, capsys, tmp_path):
    for name in ("MNN", "MNN.nn", "MNN.expr", "_tools"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if the extra were not installed
    with pytest.raises(ImportError, match=r"MNN is not installed; install the mobile extra with "
                                          r"pip install -e '\.\[mobile\]'\."):
        rm.export_mnn(small_fused_model(), tmp_path / "m.mnn", (1, 3, 32, 32))
    code, _, err = run_main(["bench", "repghostnet_050_fused", "--runtimes", "mnn", "--image-size", "32"], capsys)
    assert code == 2 and err.strip().count("\n") == 0 and "pip install -e '.[mobile]'" in err


@pytest.mark.slow
def test_bench_has_an_mnn_column(needs_mnn, capsys):
    """The mnn rows come out like the other runtimes' (test_bench.py covers the torch and onnxruntime columns)."""
    code, out, err = run_main(["bench", "repghostnet_050_fused", "ghostnet_050", "--image-size", "32", "--runtimes",
                               "mnn", "--rounds", "2", "--min-run-time", "0.01", "--baseline", "ghostnet_050"], capsys)
    assert code == 0, err
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in out.splitlines()
            if line.startswith(("| repghostnet", "| ghostnet"))]
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [("repghostnet_050_fused", "mnn", "1", "1"),
                                                        ("ghostnet_050", "mnn", "1", "1")]
    assert all(0 < float(r[5]) <= float(r[4]) for r in rows) and float(rows[1][6]) == 1.0  # min <= median; ratio


@pytest.mark.slow
def test_operator_profile_names_the_concat_path(needs_mnn, tmp_path):
    """Fig. 2 in MNN: every run gives a time per operator kind; GhostNet's concat + slice become Raster operators
    named after the slice node, its shortcut adds BinaryOps; a missing file is one sentence."""
    ghost = rg.core.ghostnet_050().eval()
    path = rm.export_mnn(ghost, tmp_path / "ghost.mnn", (1, 3, 64, 64))
    times = rm.mnn_operator_times(path, (2, 3, 64, 64), runs=3, warmup=1)
    assert all(len(v) == 3 and min(v) >= 0 for v in times.values())
    assert {"Convolution", "ConvolutionDepthwise", "Raster (getitem)", "BinaryOp (add)"} <= set(times)
    assert sum(times["Convolution"]) > 0
    assert [rm._node_op(n) for n in ("cat_3_raster_0", "add_12", "getitem_9_raster_0", "mean_raster_0")] == \
        ["cat", "add", "getitem", "mean"]
    with pytest.raises(FileNotFoundError, match="export_mnn"):
        rm.mnn_operator_times(tmp_path / "missing.mnn")


@pytest.mark.slow
def test_table1_in_mnn_times_each_statement_per_round(needs_mnn, monkeypatch):
    """Table 1 in MNN: one sample per round, statement and batch size (all positive); each statement's graph holds
    its operator once per pair; bad pairs, rounds and batch sizes are one sentence."""
    pairs = [((1, 4, 6, 6), (1, 4, 6, 6)), ((1, 8, 3, 3), (1, 8, 3, 3))]
    graphs = {}
    real_export = rm.export_mnn

    def keep_ops(onnx_path, path, *args, **kwargs):  # read each graph's operators while its file exists
        graphs[Path(path).stem] = rg.deploy.count_onnx_ops(onnx_path)
        return real_export(onnx_path, path, *args, **kwargs)

    monkeypatch.setattr(rm, "export_mnn", keep_ops)
    samples = rm.mnn_concat_vs_add_rounds(pairs, batch_sizes=(1, 3), min_run_time=0.01, rounds=2)
    assert list(samples) == [1, 3]
    assert all(list(s) == ["cat", "add_operands", "add_output"] for s in samples.values())
    assert all(len(v) == 2 and min(v) > 0 for s in samples.values() for v in s.values())
    assert graphs == {"cat": {"Concat": 2}, "add_operands": {"Add": 2}, "add_output": {"Add": 2}}
    with pytest.raises(ValueError, match="cannot concatenate"):
        rm.mnn_concat_vs_add_rounds([((1, 4, 6, 6), (1, 4, 5, 5))])
    with pytest.raises(ValueError, match="rounds"):
        rm.mnn_concat_vs_add_rounds(pairs, rounds=0)
    with pytest.raises(ValueError, match="batch_sizes"):
        rm.mnn_concat_vs_add_rounds(pairs, batch_sizes=(0,))
