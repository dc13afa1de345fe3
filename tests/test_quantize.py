"""INT8 post-training quantization (repghost_mini.quantize): the shipped reference model, calibrated on the real
CIFAR-10 subset and quantized with onnxruntime or ExecuTorch, must hold Q/DQ nodes and predict like the float
model; bad input gets one sentence."""
import os
import re

import numpy as np
import pytest
import torch

import repghost_mini as rm
from repghost_mini.deploy import quantize as q

pytest.importorskip("onnxruntime")
DATA = os.environ.get("REPGHOST_MINI_DATA")
needs_data = pytest.mark.skipif(not DATA or not os.path.isdir(os.path.join(DATA, "cifar10-subset")),
                                reason="the real CIFAR-10 subset is not available (set REPGHOST_MINI_DATA)")


@pytest.fixture(scope="module")
def bundle():
    if not DATA or not os.path.isdir(os.path.join(DATA, "cifar10-subset")):
        pytest.skip("the real CIFAR-10 subset is not available (set REPGHOST_MINI_DATA)")
    return rm.load_dataset("cifar10-subset")


@pytest.fixture(scope="module")
def trained(bundle, tmp_path_factory):
    """The shipped reference model (RepGhostNet-0.8x trained on CIFAR-10, 84% top-1; fused on loading), exported
    and quantized per channel with 512 real calibration images of the subset: (fused model, fp32 path, int8 path).

    A trained model, not a random one: INT8 agreement depends on the logit margins (a 55% model trained with label
    smoothing for two minutes had a median margin of 0.85, so even exact INT8 arithmetic flipped a few percent of
    its near-ties). Quantized with the weight type for this CPU (default_weight_type): on x86 without VNNI signed
    8-bit weights saturate in onnxruntime's kernels (test_int8_kernels_add_no_error_of_their_own)."""
    torch.manual_seed(0)
    work = tmp_path_factory.mktemp("int8")
    model = rm.training.load_reference_model("cifar10")
    fp32, int8 = work / "fp32.onnx", work / "int8.onnx"
    q.quantize_model(model, int8, q.calibration_images(bundle, 512), per_channel=True, fp32_path=fp32)
    return model, fp32, int8


@pytest.fixture(scope="module")
def checkpoint():
    """The reference model's weights file as the package ships it (training form with its model card)."""
    return rm.training.checkpoints.WEIGHTS_DIR / rm.training.checkpoints.REFERENCE_MODELS["cifar10"]


def _test_batch(bundle):
    _, test = rm.make_loaders(bundle, 64, eval_batch_size=len(bundle.test))
    return next(iter(test))


@pytest.mark.slow
@needs_data
def test_int8_file_has_quantize_dequantize_nodes(trained):
    _, fp32, int8 = trained
    counts = q.quantized_op_counts(int8)
    assert counts["QuantizeLinear"] > 0 and counts["DequantizeLinear"] > 0
    assert sum(q.quantized_op_counts(fp32).values()) == 0
    assert os.path.getsize(int8) < 0.5 * os.path.getsize(fp32)  # int8 weights: about a quarter of the bytes


@needs_data
def test_int8_predictions_agree_with_fp32_on_real_test_images(trained, bundle):
    model, fp32, int8 = trained
    x, y = _test_batch(bundle)
    ref = q.OnnxModel(fp32)(x).argmax(1)
    with torch.no_grad():
        assert torch.equal(ref, model(x).argmax(1)) or (ref == model(x).argmax(1)).float().mean() > 0.99
    assert len(ref.unique()) >= 3, "the fixture model predicts (almost) one class: it did not learn"
    agreement = (q.OnnxModel(int8)(x).argmax(1) == ref).float().mean().item()
    assert len(y) == 1017 and agreement >= 0.95, \
        f"INT8 and fp32 agree on only {100 * agreement:.1f}% of {len(y)} test images"


@pytest.mark.slow
@needs_data
def test_int8_kernels_add_no_error_of_their_own(trained, bundle):
    """With the weight type chosen for this CPU, onnxruntime's INT8 kernels compute what the QDQ graph means: their
    logit error is the rounding's (graph run in float), not more. Signed 8-bit weights on x86 without VNNI fail
    this (int16 saturation: 0.28 vs 0.08 here on an AVX2 EPYC, 86% agreement instead of 97%)."""
    _, fp32, int8 = trained
    x, _ = _test_batch(bundle)
    err = q.quantization_error(fp32, int8, x)
    assert err["kernels"] <= 1.25 * err["simulated"] + 1e-3, err


@needs_data
def test_evaluate_onnx_uses_the_checkpoint_evaluation(trained, bundle):
    model, fp32, _ = trained
    _, test = rm.make_loaders(bundle, 64)
    onnx_result = q.evaluate_onnx(fp32, test, bundle.image_size)
    torch_result = rm.evaluate(model, test, device="cpu")
    assert set(onnx_result) == set(torch_result)
    assert abs(onnx_result["top1"] - torch_result["top1"]) <= 100 / len(bundle.test)  # at most one near-tie


@needs_data
def test_calibration_images_are_real_training_images(bundle):
    x = q.calibration_images(bundle, 50, seed=1)
    assert x.shape == (50, 3, 32, 32) and x.dtype == torch.float32
    mean = torch.tensor(bundle.mean).view(1, 3, 1, 1)
    std = torch.tensor(bundle.std).view(1, 3, 1, 1)
    pixels = ((x * std + mean) * 255).round().to(torch.uint8)
    train = bundle.train.images
    for image in pixels[:5]:  # each one is an image of the training split, pixel for pixel
        assert (train == image).flatten(1).all(1).any()
    assert torch.equal(x, q.calibration_images(bundle, 50, seed=1)) and not torch.equal(x, q.calibration_images(
        bundle, 50, seed=2))
    reader = q.ImageCalibrationReader(x, batch_size=16)
    batches = list(reader)
    assert [b["input"].shape[0] for b in batches] == [16, 16, 16, 2]
    assert np.array_equal(np.concatenate([b["input"] for b in batches]), x.numpy())
    assert reader.get_next() is None
    reader.rewind()
    assert reader.get_next()["input"].shape == (16, 3, 32, 32)


def test_calibration_images_resized_for_a_larger_model():
    bundle = rm.load_dataset("synthetic")
    assert q.calibration_images(bundle, 4, image_size=64).shape == (4, 3, 64, 64)


# ------------------------------------------------------------------------------------------------ errors
@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    """A fused RepGhostNet-0.5x (random weights) exported for 32-px inputs, and its folder."""
    work = tmp_path_factory.mktemp("int8err")
    model = rm.reparameterize(rm.randomize_bn_stats_(rm.core.repghostnet_050(num_classes=10, small_input=True).eval()))
    return rm.export_onnx(model, work / "m32.onnx", (1, 3, 32, 32)), work


@pytest.mark.slow
def test_non_onnx_file_is_one_sentence(tiny_onnx, tmp_path):
    garbage = tmp_path / "notes.onnx"
    garbage.write_text("this is not a model\n")
    for call in (lambda: q.onnx_input_shape(garbage), lambda: q.OnnxModel(garbage),
                 lambda: q.quantize_onnx(garbage, tmp_path / "o.onnx", torch.zeros(2, 3, 32, 32))):
        with pytest.raises(ValueError, match="not .*ONNX model") as err:
            call()
        assert "\n" not in str(err.value)
    assert not (tmp_path / "o.onnx").exists()


def test_wrong_input_size_is_one_sentence(tiny_onnx):
    path, _ = tiny_onnx
    q.check_onnx_input(path, 32)
    with pytest.raises(ValueError, match=r"takes inputs of shape \?x3x32x32 .* 3x224x224 images"):
        q.check_onnx_input(path, 224)
    with pytest.raises(ValueError, match="calibration images have shape"):
        q.quantize_onnx(path, path.parent / "x.onnx", torch.zeros(2, 3, 64, 64))


def test_empty_calibration_set_is_one_sentence(tiny_onnx):
    path, work = tiny_onnx
    with pytest.raises(ValueError, match="calibration set is empty"):
        q.quantize_onnx(path, work / "e.onnx", torch.zeros(0, 3, 32, 32))
    with pytest.raises(ValueError, match="calibration set is empty"):
        q.calibration_images(rm.load_dataset("synthetic"), 0)
    with pytest.raises(ValueError, match="calibration set is empty"):
        q.quantize_model(torch.nn.Identity(), work / "e.onnx", torch.zeros(0, 3, 32, 32))
    with pytest.raises(ValueError, match="unknown calibration method"):
        q.quantize_onnx(path, work / "e.onnx", torch.zeros(2, 3, 32, 32), method="mse")
    assert not (work / "e.onnx").exists()


# ------------------------------------------------------------------------------------------------ the CPU's INT8
@pytest.mark.parametrize("flags, kind", [("fpu sse avx2 avx512f avx512_vnni", "VNNI"), ("fpu avx2 avx_vnni", "VNNI"),
                                         ("fpu sse4_2 avx avx2 fma", "AVX2"), ("fpu sse4_2", "unknown")])
def test_cpu_int8_kind_reads_the_flags(tmp_path, flags, kind):
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nmodel name\t: some CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    assert q.cpu_int8_kind(info) == kind


def test_cpu_int8_kind_without_x86_flags(tmp_path):
    arm = tmp_path / "cpuinfo"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd asimddp\n")
    assert q.cpu_int8_kind(arm) == "unknown"
    assert q.cpu_int8_kind(tmp_path / "missing") == "unknown"
    assert q.cpu_int8_kind() in ("VNNI", "AVX2", "unknown")


def _weight_arrays(path):
    """The 8-bit weight initializers (more than one element) of a QDQ file."""
    import onnx
    from onnx import numpy_helper

    kinds = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
    arrays = [numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer if t.data_type in kinds]
    return [a for a in arrays if a.size > 1]


@pytest.mark.slow
def test_weight_types_store_what_they_say(tiny_onnx):
    path, work = tiny_onnx
    calibration = torch.randn(8, 3, 32, 32)
    largest = {}
    for weights in q.WEIGHT_TYPES:
        arrays = _weight_arrays(q.quantize_onnx(path, work / f"{weights}.onnx", calibration, weights=weights))
        assert {a.dtype for a in arrays} == {np.dtype(np.uint8 if weights == "uint8" else np.int8)}
        largest[weights] = max(int(np.abs(a.astype(np.int32)).max()) for a in arrays)
    assert largest["int8"] == 127  # symmetric per channel: every channel's largest weight maps to 127
    assert largest["int8-7bit"] <= 64  # 2 x 255 x 64 < 2^15: no int16 saturation in VPMADDUBSW
    assert largest["uint8"] == 255
    with pytest.raises(ValueError, match="unknown weight type 'int4'"):
        q.quantize_onnx(path, work / "bad.onnx", calibration, weights="int4")
    assert not (work / "bad.onnx").exists()


def test_cli_offers_every_weight_type():
    from repghost_mini.cli import build_parser

    action = next(a for a in build_parser()._subparsers._group_actions[0].choices["quantize"]._actions
                  if a.dest == "weights")
    assert tuple(action.choices) == ("auto",) + q.WEIGHT_TYPES


def test_default_weight_type_follows_the_cpu():
    assert q.default_weight_type("AVX2") == "uint8"
    assert q.default_weight_type("VNNI") == q.default_weight_type("unknown") == "int8"
    assert q.default_weight_type() == q.default_weight_type(q.cpu_int8_kind())


# ------------------------------------------------------------------------------------------------ command line
@pytest.mark.slow
@needs_data
def test_cli_quantize_then_eval_the_onnx_file(checkpoint, tmp_path, capsys):
    from repghost_mini.cli import main

    out = tmp_path / "model-int8.onnx"
    assert main(["quantize", str(checkpoint), str(out), "--dataset", "cifar10-subset", "--calibration-images", "32",
                 "--per-tensor", "--weights", "int8-7bit"]) == 0
    printed = capsys.readouterr().out
    assert "per-tensor int8-7bit weights" in printed and "32 cifar10-subset training images" in printed
    assert max(int(np.abs(a.astype(np.int32)).max()) for a in _weight_arrays(out)) <= 64
    assert q.quantized_op_counts(out)["QuantizeLinear"] > 0
    assert main(["eval", str(out), "--dataset", "cifar10-subset", "--limit", "10"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("ONNX INT8 (model-int8.onnx): top-1 ") and "top-5" in line


@pytest.mark.slow
@needs_data
def test_cli_quantize_for_executorch_then_eval_the_program(trained, checkpoint, tmp_path, capsys):
    """quantize --backend executorch writes an INT8 .pte that eval scores from its model card alone (the card names
    full CIFAR-10), within 2 points of the fp32 model on the same 1,000 test images (--limit 100 per class)."""
    pytest.importorskip("executorch.runtime", reason="ExecuTorch is not installed (pip install -e '.[mobile]')")
    from repghost_mini.cli import main

    out = tmp_path / "model-int8.pte"
    assert main(["quantize", str(checkpoint), str(out), "--backend", "executorch", "--calibration-images", "64"]) == 0
    printed = capsys.readouterr().out
    assert "INT8 ExecuTorch program" in printed and "64 cifar10 training images" in printed
    assert main(["eval", str(out), "--limit", "100"]) == 0  # no --dataset: the card in the program names it
    printed = capsys.readouterr().out
    line = printed.strip().splitlines()[-1]
    assert line.startswith("ExecuTorch (model-int8.pte): top-1 ") and "cifar10 test split, 1000 images" in printed
    int8_top1 = float(re.search(r"top-1 ([0-9.]+)%", line).group(1))
    same_images = rm.load_dataset("cifar10", train_per_class=1, test_per_class=100, download=False)
    _, test = rm.make_loaders(same_images, 64, augment=False, eval_batch_size=250)
    fp32_top1 = rm.evaluate(trained[0], test)["top1"]
    assert abs(int8_top1 - fp32_top1) <= 2.0, (int8_top1, fp32_top1)
    assert main(["quantize", str(checkpoint), str(tmp_path / "q.onnx"), "--backend", "executorch"]) == 2
    assert "must end in .pte" in capsys.readouterr().err


@pytest.mark.slow
@needs_data
def test_cli_errors_are_one_line(checkpoint, tmp_path, capsys):
    from repghost_mini.cli import main

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\x01 not a protobuf")
    cases = [(["eval", str(garbage), "--dataset", "cifar10-subset"], "not .*ONNX model"),
             (["eval", str(garbage)], "not .*ONNX model"),  # the file is read first: its card names the data
             (["quantize", str(checkpoint), str(tmp_path / "q.onnx"), "--calibration-images", "0"],
              "calibration set is empty"),
             (["quantize", str(checkpoint), str(tmp_path / "q.txt")], "must end in .onnx")]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and re.search(message, err), err
    big = rm.export_onnx(rm.reparameterize(rm.core.repghostnet_050(num_classes=10).eval()), tmp_path / "big.onnx",
                         (1, 3, 64, 64))
    assert main(["eval", str(big), "--dataset", "cifar10-subset"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "big.onnx takes 64x64 images but dataset 'cifar10-subset' has 32x32" in err
    assert main(["eval", str(big)]) == 2  # exported without a model card: nothing names its data set
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no model card naming its dataset; pass --dataset" in err


@pytest.mark.slow
@needs_data
def test_bench_runtime_onnxruntime_int8(bundle):
    rows = rm.deploy.benchmark_models(["repghostnet_050_fused"], runtimes=["onnxruntime", "onnxruntime-int8"],
                                      image_size=32, rounds=1, min_run_time=0.01)
    assert [r["runtime"] for r in rows] == ["onnxruntime", "onnxruntime-int8"]
    assert all(r["median_ms"] > 0 for r in rows)
