r"""INT8 deployment: static post-training quantization of an exported ONNX model with onnxruntime.

Quantization maps a float tensor $x$ to 8-bit integers with a scale $s$ and a zero point $z$:
$$q = \mathrm{clamp}\bigl(\mathrm{round}(x / s) + z,\; q_{\min},\; q_{\max}\bigr), \qquad \hat x = s\,(q - z).$$
Weights are usually signed and symmetric ($z = 0$, $s = \max|W| / 127$), either one scale for the whole tensor
(*per-tensor*) or one per output channel (*per-channel*, $s_c = \max|W_c| / 127$); on x86 CPUs without VNNI,
where signed 8-bit weights saturate in onnxruntime's kernels, unsigned ones with a zero point
(:func:`default_weight_type`, :func:`quantization_error`). Activations are unsigned
with a range found by running real images through the float model (*calibration*: min/max, entropy or a
percentile of the observed values).

Re-parameterization (paper Sec. 3.2, Eq. 2) adds branches and folds BatchNorm scales $\gamma/\sigma$ into
one kernel per output channel, so output channels of a fused kernel can have very different ranges: one
per-tensor scale then rounds the small channels coarsely (the problem QARepVGG studies for RepVGG). This
module does the quantization with the real toolchain, ``onnxruntime.quantization.quantize_static`` in QDQ
format (``QuantizeLinear``/``DequantizeLinear`` pairs that onnxruntime fuses into INT8 kernels), and scores
an ONNX file with the same evaluation code as a PyTorch checkpoint (:class:`OnnxModel` +
:func:`repghost_mini.evaluate`).
"""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import require_finite
from ..files import atomic_output
from ..training.card import CARD_KEY
from ..training.data import DataBundle, InMemoryImages, eval_transforms
from .export import _load, export_onnx, onnx_session, read_onnx_card, run_onnx

__all__ = ["CALIBRATION_METHODS", "WEIGHT_TYPES", "cpu_int8_kind", "default_weight_type", "ImageCalibrationReader",
           "calibration_images", "quantize_onnx", "quantize_model", "onnx_input_shape", "check_onnx_input", "OnnxModel",
           "evaluate_onnx",
           "quantized_op_counts", "quantization_error", "weight_ranges_per_channel"]

PathLike = Union[str, os.PathLike]
#: Calibration methods of onnxruntime.quantization.CalibrationMethod, by our option name.
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
#: How weights are stored (see :func:`quantize_onnx`): signed 8-bit symmetric, signed 7-bit (onnxruntime's
#: ``reduce_range``), or unsigned 8-bit with a zero point.
WEIGHT_TYPES = ("int8", "int8-7bit", "uint8")


# ----------------------------------------------------------------------------------------------------------------
# The CPU's INT8 instructions
# ----------------------------------------------------------------------------------------------------------------
def cpu_int8_kind(cpuinfo: PathLike = "/proc/cpuinfo") -> str:
    """Which INT8 dot product onnxruntime's x86 kernels get on this CPU, read from the flags in ``cpuinfo``:

    * ``"VNNI"``: AVX-512 VNNI or AVX-VNNI multiply u8 x s8 and add four products straight into int32: exact.
    * ``"AVX2"``: an x86 CPU without VNNI. Its ``VPMADDUBSW`` adds *pairs* of u8 x s8 products into int16, which
      saturates at 32,767 when both weights of a pair are large (2 x 255 x 127 = 64,770): results are silently
      less accurate than the quantization itself. Unsigned weights (u8 x u8, widened to 16 bits before the
      multiply) or 7-bit signed weights (2 x 255 x 64 < 2^15) avoid it.
    * ``"unknown"``: no readable x86 flags (ARM, macOS, Windows); nothing is assumed.
    """
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return "unknown"
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), None)
    if not flags:
        return "unknown"
    if "avx512_vnni" in flags or "avx_vnni" in flags:
        return "VNNI"
    return "AVX2" if "avx2" in flags else "unknown"


def default_weight_type(cpu: Optional[str] = None) -> str:
    """The weight type (:data:`WEIGHT_TYPES`) for a CPU kind (:func:`cpu_int8_kind`, default: this machine's):
    ``"uint8"`` on x86 without VNNI, where signed 8-bit weights saturate; ``"int8"`` everywhere else."""
    return "uint8" if (cpu or cpu_int8_kind()) == "AVX2" else "int8"


# ----------------------------------------------------------------------------------------------------------------
# Calibration data
# ----------------------------------------------------------------------------------------------------------------
def _folder_images(dataset, indices: Sequence[int], transform) -> Tensor:
    """Eval-transformed images of an ImageFolder-like dataset (``samples`` + ``loader``), also inside a Subset."""
    base, index_map = (dataset.dataset, dataset.indices) if isinstance(dataset, torch.utils.data.Subset) \
        else (dataset, None)
    if not (hasattr(base, "samples") and hasattr(base, "loader")):
        raise ValueError(f"calibration needs in-memory images or an ImageFolder dataset, got "
                         f"{type(base).__name__}.")
    paths = [base.samples[index_map[i] if index_map is not None else i][0] for i in indices]
    return torch.stack([transform(base.loader(p)) for p in paths])


def calibration_images(bundle: DataBundle, count: int = 512, seed: int = 0,
                       image_size: Optional[int] = None) -> Tensor:
    """``count`` real training images of ``bundle`` as the model sees them at test time (no augmentation,
    normalized), drawn at random with ``seed``: a float32 tensor (count, 3, S, S).

    ``image_size`` resizes them (bilinear, antialiased), e.g. CIFAR images for a 224-px latency model.
    """
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"the calibration set is empty (calibration images = {count!r}); quantization needs at "
                         "least 1 real image, typically 100-1000.")
    n = len(bundle.train)
    if n == 0:
        raise ValueError(f"the calibration set is empty: dataset {bundle.name!r} has no training images.")
    g = torch.Generator().manual_seed(seed)
    indices = torch.randperm(n, generator=g)[:count].sort().values.tolist()
    if isinstance(bundle.train, InMemoryImages):
        mean = torch.tensor(bundle.mean).view(1, 3, 1, 1)
        std = torch.tensor(bundle.std).view(1, 3, 1, 1)
        x = (bundle.train.images[indices].float() / 255 - mean) / std
    else:
        x = _folder_images(bundle.train, indices, eval_transforms(bundle.image_size, bundle.mean, bundle.std))
    if image_size is not None and image_size != x.shape[-1]:
        x = nn.functional.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True,
                                      align_corners=False)
    return x.float().contiguous()


class ImageCalibrationReader:
    """An ``onnxruntime.quantization.CalibrationDataReader`` over a tensor of images (N, 3, H, W).

    ``get_next()`` returns ``{input_name: float32 array of up to batch_size images}`` until the images are
    used up, then ``None``; ``rewind()`` starts over. (onnxruntime recognizes a reader by its ``get_next``.)
    """

    def __init__(self, images: Tensor, input_name: str = "input", batch_size: int = 32) -> None:
        if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[0] == 0:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(f"the calibration set is empty or malformed (got {shape}); give at least one image "
                             "as a float tensor (N, 3, H, W), e.g. from calibration_images(bundle, 512).")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.images = images.detach().to("cpu", torch.float32).contiguous().numpy()
        self.input_name, self.batch_size, self.position = input_name, batch_size, 0

    def __len__(self) -> int:
        return self.images.shape[0]

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        if self.position >= len(self):
            return None
        batch = self.images[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        return {self.input_name: batch}

    def rewind(self) -> None:
        self.position = 0

    def __iter__(self):
        self.rewind()
        return iter(self.get_next, None)


# ----------------------------------------------------------------------------------------------------------------
# Reading and checking ONNX files
# ----------------------------------------------------------------------------------------------------------------
def onnx_input_shape(path: PathLike) -> Tuple[Optional[int], ...]:
    """Shape of the first graph input of an ONNX file; a symbolic dimension (e.g. the batch) is ``None``."""
    proto = _load(path)
    weights = {init.name for init in proto.graph.initializer}
    first = next(i for i in proto.graph.input if i.name not in weights)
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in first.type.tensor_type.shape.dim)


def check_onnx_input(path: PathLike, image_size: int, channels: int = 3) -> None:
    """Raise ``ValueError`` unless the ONNX file takes (N, channels, image_size, image_size) images."""
    shape = onnx_input_shape(path)
    if len(shape) != 4 or tuple(shape[1:]) != (channels, image_size, image_size):
        got = "x".join("?" if d is None else str(d) for d in shape)
        raise ValueError(f"the ONNX model {os.fspath(path)!r} takes inputs of shape {got} but the dataset has "
                         f"{channels}x{image_size}x{image_size} images; export it with input_size=(1, {channels}, "
                         f"{image_size}, {image_size}) or pick the dataset it was made for.")


def quantized_op_counts(path: PathLike) -> Dict[str, int]:
    """How many ``QuantizeLinear``, ``DequantizeLinear`` and ``QLinear*`` nodes an ONNX file holds (all 0 for an
    fp32 file)."""
    ops = [n.op_type for n in _load(path).graph.node]
    return {"QuantizeLinear": ops.count("QuantizeLinear"), "DequantizeLinear": ops.count("DequantizeLinear"),
            "QLinear*": sum(op.startswith("QLinear") for op in ops)}


# ----------------------------------------------------------------------------------------------------------------
# Quantization
# ----------------------------------------------------------------------------------------------------------------
def quantize_onnx(fp32_path: PathLike, out_path: PathLike, calibration: Union[Tensor, ImageCalibrationReader],
                  per_channel: bool = True, method: str = "minmax", batch_size: int = 32,
                  weights: str = "auto", overwrite: bool = True) -> Path:
    """Static INT8 quantization of the float ONNX model ``fp32_path`` into ``out_path`` (QDQ format).

    Weights: one scale per output channel (``per_channel=True``) or per tensor, stored as ``weights``
    (:data:`WEIGHT_TYPES`): ``"int8"`` symmetric (-127..127), ``"int8-7bit"`` (-64..64, onnxruntime's
    ``reduce_range``) or ``"uint8"`` (0..255 with a zero point). Which is exact depends on the CPU that *runs*
    the file (:func:`cpu_int8_kind`): ``"int8"`` saturates on x86 without VNNI, where ``"uint8"`` keeps 8 bits
    exactly. ``"auto"`` (default) picks :func:`default_weight_type` for the CPU this runs on, so a file made for
    another CPU should name its weight type.
    Activations: unsigned INT8 with ranges calibrated on ``calibration`` (real images, a tensor (N, 3, H, W)
    or an :class:`ImageCalibrationReader`) by ``method`` (:data:`CALIBRATION_METHODS`). The graph is first
    pre-processed (shape inference and onnxruntime's graph optimizations, as onnxruntime recommends). The
    file appears only when complete (:func:`repghost_mini.files.atomic_output`); ``overwrite=False`` refuses an
    existing file. Returns ``out_path``.
    """
    try:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("INT8 quantization needs onnxruntime: `pip install onnxruntime` "
                          "(or `pip install -e .[dev]`).") from None
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    if method not in methods:
        raise ValueError(f"unknown calibration method {method!r}; choose one of {list(CALIBRATION_METHODS)}.")
    shape = onnx_input_shape(fp32_path)
    reader = calibration if isinstance(calibration, ImageCalibrationReader) else \
        ImageCalibrationReader(calibration, batch_size=batch_size)
    if len(shape) == 4 and shape[1:] != reader.images.shape[1:]:
        raise ValueError(f"calibration images have shape {tuple(reader.images.shape[1:])} but the ONNX model takes "
                         f"{tuple(shape[1:])}; resize them (calibration_images(..., image_size=...)).")
    if weights == "auto":
        weights = default_weight_type()
    if weights not in WEIGHT_TYPES:
        raise ValueError(f"unknown weight type {weights!r}; choose one of {list(WEIGHT_TYPES)} or 'auto'.")
    out_path = Path(out_path)
    reader.rewind()
    # out_path appears only complete (files.atomic_output); the pre-processed graph is a scratch file
    with tempfile.TemporaryDirectory() as tmp, atomic_output(out_path, overwrite) as partial:
        pre = os.path.join(tmp, "preprocessed.onnx")
        with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print progress lines
            quant_pre_process(os.fspath(fp32_path), pre)
            quantize_static(pre, os.fspath(partial), reader, quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QUInt8 if weights == "uint8" else QuantType.QInt8,
                            reduce_range=weights == "int8-7bit", calibrate_method=methods[method])
        card = read_onnx_card(fp32_path)
        if card is not None:  # the INT8 file describes itself like its fp32 original
            import onnx

            proto = onnx.load(os.fspath(partial))
            onnx.helper.set_model_props(proto, {CARD_KEY: card.to_json()})
            onnx.save(proto, os.fspath(partial))
    return out_path


def quantize_model(model: nn.Module, out_path: PathLike, calibration: Tensor, per_channel: bool = True,
                   method: str = "minmax", fp32_path: Optional[PathLike] = None, weights: str = "auto",
                   overwrite: bool = True) -> Path:
    """Export the eval-mode PyTorch ``model`` to ONNX (float32, input size of ``calibration``) and quantize it to
    ``out_path`` with :func:`quantize_onnx`. The float file goes to ``fp32_path`` when given (else a temporary
    folder). Fused or training form: whatever the model is, is what gets quantized."""
    if not isinstance(calibration, Tensor) or calibration.dim() != 4 or calibration.shape[0] == 0:
        raise ValueError("the calibration set is empty; give at least one real image as a float tensor (N, 3, H, W), "
                         "e.g. calibration_images(bundle, 512).")
    size = (1, *calibration.shape[1:])
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(fp32_path) if fp32_path is not None else Path(tmp) / "fp32.onnx"
        export_onnx(model, fp32, size)
        return quantize_onnx(fp32, out_path, calibration, per_channel=per_channel, method=method, weights=weights,
                             overwrite=overwrite)


# ----------------------------------------------------------------------------------------------------------------
# Evaluation of ONNX files with the PyTorch evaluation code
# ----------------------------------------------------------------------------------------------------------------
class OnnxModel(nn.Module):
    """An ONNX classifier (float or INT8) behind the ``nn.Module`` interface, run by onnxruntime on the CPU
    (``optimization``: the graph optimization level of :func:`repghost_mini.deploy.onnx_session`).

    ``OnnxModel(path)(x)`` returns the logits for a float batch ``x`` (N, 3, H, W) as a CPU tensor, so
    :func:`repghost_mini.evaluate` scores an ONNX file exactly like a checkpoint. It has no parameters.
    """

    def __init__(self, path: PathLike, threads: int = 1, optimization: str = "all") -> None:
        super().__init__()
        self.path = Path(path)
        shape = onnx_input_shape(path)
        self.input_shape = shape
        self.session = onnx_session(path, threads=threads, optimization=optimization)
        self.num_classes = self.session.get_outputs()[0].shape[-1]
        self.card = read_onnx_card(path)
        if self.card is not None:
            self.card.check_graph(self.path.name, shape, self.num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return run_onnx(self.session, x)


def evaluate_onnx(path: PathLike, loader, image_size: int, threads: int = 1) -> Dict:
    """Top-1 / top-5 / loss of the ONNX file ``path`` on ``loader`` through :func:`repghost_mini.evaluate`
    (the same function that scores checkpoints); checks first that the file takes ``image_size`` images."""
    from ..training.evaluation import evaluate

    check_onnx_input(path, image_size)
    return evaluate(OnnxModel(path, threads=threads), loader, device="cpu")


def quantization_error(fp32_path: PathLike, int8_path: PathLike, images: Tensor, threads: int = 1) -> Dict[str, float]:
    """How far an INT8 file moves the logits of ``images`` from its fp32 original, split into the rounding of the
    quantization itself and what the CPU's INT8 kernels add.

    * ``"kernels"``: median over images of the largest |INT8 logit - fp32 logit|, the file run as deployed
      (onnxruntime fuses each DequantizeLinear -> Conv -> QuantizeLinear into an integer ``QLinearConv``).
    * ``"simulated"``: the same with graph optimizations off, so every Conv runs in float on dequantized values:
      the rounding to the quantization grid alone, exact integer arithmetic.
    * ``"agreement"`` / ``"agreement_simulated"``: share (%) of images whose top-1 class stays the fp32 one.

    ``kernels`` well above ``simulated`` means the kernels lose accuracy of their own, e.g. int16 saturation of
    signed 8-bit weights on x86 without VNNI (:func:`cpu_int8_kind`)."""
    z32 = OnnxModel(fp32_path, threads=threads)(images)
    require_finite(z32, f"the output of {Path(fp32_path).name}")
    out = {}
    for key, optimization in (("kernels", "all"), ("simulated", "disable")):
        z8 = OnnxModel(int8_path, threads=threads, optimization=optimization)(images)
        require_finite(z8, f"the output of {Path(int8_path).name}")
        out[key] = (z8 - z32).abs().amax(1).median().item()
        out["agreement" + ("" if key == "kernels" else "_simulated")] = \
            (z8.argmax(1) == z32.argmax(1)).float().mean().item() * 100
    return out


def weight_ranges_per_channel(weight: Tensor) -> Tensor:
    """$\\max_{i,j,k} |W_{c,i,j,k}|$ for every output channel $c$ of a conv / linear weight: shape (C_out,).

    The per-tensor INT8 step is ``max over c`` / 127; a channel whose range is far below that maximum keeps
    only a few of the 255 levels."""
    return weight.detach().abs().flatten(1).amax(1)
