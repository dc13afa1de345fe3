"""ExecuTorch with XNNPACK (repghost_mini.deploy.executorch): fp32 and INT8 programs, equality to PyTorch, the model
card, static shapes, bench, and the no-network rule. Tests that need ExecuTorch skip without the mobile extra
(pip install -e '.[mobile]')."""
import subprocess
import sys
import textwrap

import pytest
import torch

import repghost_mini as rg
from repghost_mini.deploy import executorch as ret

from test_cli import run_main

SKIP_REASON = "ExecuTorch is not installed (the mobile extra: pip install -e '.[mobile]')"


@pytest.fixture
def needs_executorch():
    pytest.importorskip("executorch.runtime", reason=SKIP_REASON)


def small_fused_model() -> torch.nn.Module:
    """RepGhostNet-0.5x for 32-px images, 10 classes, BN statistics randomized (defaults hide bugs), fused."""
    torch.manual_seed(0)
    net = rg.build_model("repghostnet_050", 10, small_input=True).eval()
    return rg.reparameterize(rg.randomize_bn_stats_(net, seed=0))


def card() -> rg.ModelCard:
    return rg.ModelCard(rg.ModelOptions("repghostnet_050", small_input=True), 10, 32, (0.5,) * 3, (0.25,) * 3,
                        dataset="cifar10")


@pytest.mark.slow
def test_fp32_program_equals_pytorch_and_carries_the_card(needs_executorch, tmp_path):
    model = small_fused_model()
    path = ret.export_executorch(model, tmp_path / "model.pte", (2, 3, 32, 32), card=card())
    assert path.stat().st_size > 0 and ret.read_executorch_card(path) == card()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x)
    method = ret.executorch_method(path)
    got = ret.run_executorch(method, x)
    assert got.shape == expected.shape == (2, 10)
    assert (got - expected).abs().max().item() < 1e-4
    torch.testing.assert_close(ret.run_executorch(path, x), got)  # a path works too
    with pytest.raises(ValueError, match="static"):  # the batch size is part of the program
        ret.run_executorch(method, x[:1])


@pytest.mark.slow
def test_int8_program_is_close_to_fp32_on_real_images(needs_executorch, tmp_path):
    """PT2E per-channel INT8 calibrated on real CIFAR-10 images: the predictions mostly agree with fp32 (a fused
    model with randomized BN statistics is a hard case for INT8, so the bar is agreement, not accuracy)."""
    bundle = rg.training.data.load_dataset("cifar10-subset")
    images = rg.deploy.calibration_images(bundle, 64, seed=0)
    torch.manual_seed(0)
    model = rg.reparameterize(rg.build_model("repghostnet_050", 10, small_input=True).eval())
    path = ret.export_executorch(model, tmp_path / "int8.pte", (16, 3, 32, 32), int8=True, calibration=images[:48])
    held_out = images[48:]
    with torch.no_grad():
        expected = model(held_out)
    got = ret.run_executorch(path, held_out)
    scale = expected.abs().max().item()
    assert (got - expected).abs().max().item() < 0.25 * scale  # quantized, not garbage
    assert (got - expected).abs().max().item() > 0  # and really quantized
    assert (got.argmax(1) == expected.argmax(1)).float().mean().item() >= 0.75
    with pytest.raises(ValueError, match="calibration"):
        ret.export_executorch(model, tmp_path / "x.pte", (16, 3, 32, 32), int8=True)
    with pytest.raises(ValueError, match="at least one batch"):
        ret.export_executorch(model, tmp_path / "x.pte", (16, 3, 32, 32), int8=True, calibration=images[:8])


@pytest.mark.slow
def test_bad_inputs_and_files_are_one_sentence(needs_executorch, tmp_path):
    model = small_fused_model()
    with pytest.raises(ValueError, match="input_size"):  # no card, no size
        ret.export_executorch(model, tmp_path / "m.pte")
    with pytest.raises(RuntimeError, match="eval"):
        ret.export_executorch(model.train(), tmp_path / "m.pte", (1, 3, 32, 32))
    model.eval()
    path = ret.export_executorch(model, tmp_path / "m.pte", (1, 3, 32, 32))
    assert ret.read_executorch_card(path) is None
    garbage = tmp_path / "garbage.pte"
    garbage.write_bytes(b"not a program" * 8)
    truncated = tmp_path / "truncated.pte"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    for bad in (garbage, truncated):
        with pytest.raises(rg.UserError, match="not a complete .pte program"):
            ret.executorch_method(bad)
    with pytest.raises(FileNotFoundError, match="export_executorch"):
        ret.executorch_method(tmp_path / "missing.pte")
    with pytest.raises(ValueError, match="threads"):
        ret.set_executorch_threads(0)


@pytest.mark.slow
def test_lowering_and_running_work_with_sockets_blocked(needs_executorch, tmp_path):
    """A fresh process, import time included: sockets are blocked before ExecuTorch is first imported."""
    script = textwrap.dedent(f"""
        import socket
        def no_network(*args, **kwargs):
            raise SystemExit("tried to open a network connection")
        socket.socket.connect = socket.socket.connect_ex = no_network
        import torch
        import repghost_mini as rg
        from repghost_mini.deploy import executorch as ret
        net = rg.reparameterize(rg.build_model("repghostnet_050", 10, small_input=True).eval())
        path = ret.export_executorch(net, {str(tmp_path / "m.pte")!r}, (1, 3, 32, 32))
        assert ret.run_executorch(path, torch.randn(1, 3, 32, 32)).shape == (1, 10)
        print("ok")
        """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok"  # ExecuTorch's native log lines are kept out of the output as well


def test_missing_executorch_is_one_sentence(monkeypatch, capsys, tmp_path):
    for name in ("executorch", "executorch.exir", "executorch.runtime",
                 "executorch.backends.xnnpack.partition.xnnpack_partitioner"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if the extra were not installed
    with pytest.raises(ImportError, match=r"ExecuTorch is not installed; install the mobile extra with "
                                          r"pip install -e '\.\[mobile\]'\."):
        ret.export_executorch(small_fused_model(), tmp_path / "m.pte", (1, 3, 32, 32))
    code, _, err = run_main(["bench", "repghostnet_050_fused", "--runtimes", "executorch", "--image-size", "32"],
                            capsys)
    assert code == 2 and err.strip().count("\n") == 0 and "pip install -e '.[mobile]'" in err


@pytest.mark.slow
def test_bench_has_executorch_columns(needs_executorch, capsys):
    """fp32 rows for two batch sizes (one program each) and an INT8 row come out like the other runtimes'."""
    rows = []
    for runtime, batches in (("executorch", ["1", "2"]), ("executorch-int8", ["1"])):
        code, out, err = run_main(["bench", "repghostnet_050_fused", "--image-size", "32", "--runtimes", runtime,
                                   "--batch-sizes", *batches, "--rounds", "2", "--min-run-time", "0.01"], capsys)
        assert code == 0, err
        rows += [[c.strip() for c in line.split("|")[1:-1]] for line in out.splitlines()
                 if line.startswith("| repghost")]
    assert [(r[1], r[2], r[3]) for r in rows] == [("executorch", "1", "1"), ("executorch", "2", "1"),
                                                  ("executorch-int8", "1", "1")]
    assert all(0 < float(r[5]) <= float(r[4]) for r in rows)  # min <= median


def test_quantize_refuses_onnxruntime_only_flags_for_executorch(capsys, tmp_path):
    """Nothing silently dropped: --per-tensor / --weights / --calibration-method have no ExecuTorch meaning."""
    for flags in (["--per-tensor"], ["--weights", "uint8"], ["--calibration-method", "entropy"]):
        code, _, err = run_main(["quantize", str(tmp_path / "missing.pth"), str(tmp_path / "q.pte"), "--backend",
                                 "executorch", *flags], capsys)
        assert code == 2 and err.strip().count("\n") == 0 and f"{flags[0]} only apply to --backend onnxruntime" in err
