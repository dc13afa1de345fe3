r"""ExecuTorch, PyTorch's on-device runtime, with XNNPACK (the CPU kernel library of ARM phones, and of x86):
fused model -> ``.pte`` in float32 or INT8, then run it (``bench --runtimes executorch executorch-int8`` and
``benchmarks/runtimes.py`` time it).

* :func:`export_executorch` -- an eval-mode model to a ``.pte`` program: ``torch.export``, then every supported
  operator lowered to XNNPACK. ``int8=True`` quantizes first with PT2E (per-channel symmetric INT8 weights,
  INT8 activations calibrated on the images you pass: real training images, see
  :func:`repghost_mini.deploy.calibration_images`). The model card travels along as a constant method
  ``model_card`` of the program; :func:`read_executorch_card` reads it back.
* :func:`executorch_method` / :func:`run_executorch` -- load a ``.pte`` and run a batch;
  :class:`ExecutorchModel` -- the same behind ``nn.Module``, so :func:`repghost_mini.evaluate` scores it;
  :func:`set_executorch_threads` -- the thread count (1: the paper's setting).

A ``.pte`` has **static shapes**: it runs exactly the input shape it was exported with (batch size included);
export one file per batch size you need. Lowering is slower than an ONNX export, and INT8 slower still
(calibration, then a second export of the quantized graph).

ExecuTorch is an optional extra: ``pip install -e '.[mobile]'``; nothing here opens a socket (tests/test_executorch.py
blocks sockets and lowers anyway).
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Union

import torch
from torch import nn

from ..errors import UserError
from ..files import atomic_output
from ..training.card import ModelCard
from .mnn import _native_output, missing_extra

__all__ = ["export_executorch", "executorch_method", "run_executorch", "read_executorch_card", "set_executorch_threads",
           "ExecutorchModel"]

PathLike = Union[str, os.PathLike]

#: The name of the constant method that holds the model card (JSON) in a ``.pte`` written by :func:`export_executorch`.
CARD_METHOD = "model_card"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep ExecuTorch's import-time and lowering chatter out of the output: C++ log lines (written to the file
    descriptors, or through Python's ``sys.stderr`` by the runtime's bindings, which is what a notebook shows),
    deprecation warnings and torch's logged warnings."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), _native_output([]), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _require_executorch():
    """``(to_edge_transform_and_lower, XnnpackPartitioner, Runtime)``; one sentence when the extra is missing."""
    with _quiet():
        try:
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
            from executorch.exir import to_edge_transform_and_lower
            from executorch.runtime import Runtime
        except ImportError as err:
            raise missing_extra("ExecuTorch", err) from None
    return to_edge_transform_and_lower, XnnpackPartitioner, Runtime


def _quantize_pt2e(exported_module: nn.Module, calibration: torch.Tensor, batch_size: int) -> nn.Module:
    """PT2E static INT8: XNNPACK's quantizer (symmetric; per-channel min/max weights; histogram observers for the
    activations), calibrated on
    ``calibration`` in batches of ``batch_size`` (the exported shape), then converted to quantize/dequantize pairs."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(exported_module, quantizer)
    with torch.no_grad():
        for start in range(0, len(calibration) - batch_size + 1, batch_size):
            prepared(calibration[start:start + batch_size])
    return convert_pt2e(prepared)


def _check_export_args(model, input_size, card, int8: bool, calibration) -> tuple:
    if not isinstance(model, nn.Module):
        raise TypeError(f"export_executorch expects a torch.nn.Module, got {type(model).__name__}.")
    if model.training:
        raise RuntimeError("export_executorch exports the inference graph: call model.eval() first.")
    from .export import model_input

    input_size, card = model_input(model, input_size, card)
    if int8:
        if calibration is None or not isinstance(calibration, torch.Tensor) or calibration.ndim != 4:
            raise ValueError("int8=True needs calibration images: a float tensor (count, C, H, W) of real, "
                             "normalized training images (repghost_mini.deploy.calibration_images).")
        if tuple(calibration.shape[1:]) != input_size[1:] or len(calibration) < input_size[0]:
            raise ValueError(f"calibration images have shape {tuple(calibration.shape)}; they must be at least one "
                             f"batch of {input_size[0]} images of shape {input_size[1:]} (the exported shape).")
    return input_size, card


def export_executorch(model: nn.Module, path: PathLike, input_size: Optional[Sequence[int]] = None,
                      card: Optional[ModelCard] = None, int8: bool = False,
                      calibration: Optional[torch.Tensor] = None, overwrite: bool = True) -> Path:
    """Write ``model`` (eval mode, usually fused) to ``path`` as an ExecuTorch program lowered to XNNPACK.

    ``input_size`` (N, C, H, W) is the one shape the program will run (default: the model card's ``input_size``, one
    image); ``card`` defaults to ``model.card`` and is stored in the program. BatchNorms that follow a conv
    are folded into it (the network computes the same). ``int8=True`` quantizes
    with PT2E first (per-channel INT8 weights, activations calibrated on ``calibration``, real normalized images of
    the exported shape). The model itself is not modified. Writes atomically (``overwrite=False``: never over an
    existing file) and returns the path.
    """
    input_size, card = _check_export_args(model, input_size, card, int8, calibration)
    lower, partitioner, _ = _require_executorch()
    import copy

    from ..core.reparam import fold_conv_bn_pairs

    # BNs right after a conv are folded into it first, as the ONNX exporter's optimizer does: XNNPACK's lowering
    # would otherwise decompose each one on its own (minutes for a GhostNet); a fused model has none left.
    model = fold_conv_bn_pairs(copy.deepcopy(model).to("cpu", torch.float32))
    x = torch.randn(input_size)
    with _quiet(), torch.no_grad():
        exported = torch.export.export(model, (x,))
        if int8:
            exported = torch.export.export(_quantize_pt2e(exported.module(), calibration.float(), input_size[0]),
                                           (x,))
        constants = {CARD_METHOD: card.to_json()} if card is not None else None
        program = lower(exported, partitioner=[partitioner()], constant_methods=constants).to_executorch()
    with atomic_output(path, overwrite) as out:
        with open(out, "wb") as f:
            program.write_to_file(f)
    return Path(path)


def _load_program(path: PathLike):
    _, _, runtime = _require_executorch()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"ExecuTorch file {path!r} does not exist; write it first with "
                                "export_executorch(model, path).")
    try:
        with _quiet():
            return runtime.get().load_program(path)
    except (RuntimeError, ValueError):
        raise UserError(f"ExecuTorch cannot load {path!r}: it is not a complete .pte program; write it again "
                        "with export_executorch(model, path).") from None


def executorch_method(path: PathLike):
    """The ``forward`` method of a ``.pte`` file, loaded and ready: ``method.execute([x])`` returns a list with
    the output tensor (see :func:`run_executorch`)."""
    with _quiet():
        return _load_program(path).load_method("forward")


def set_executorch_threads(threads: int) -> None:
    """Size the thread pool that XNNPACK runs every loaded ExecuTorch program on (process-wide; 1: the paper's
    setting). Uses ExecuTorch's own ``_unsafe_reset_threadpool``, marked experimental by ExecuTorch: call it
    before loading programs, never while one is running."""
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}.")
    _require_executorch()
    with _quiet():  # the runtime logs CPU probing and the reset on its own output
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

        _unsafe_reset_threadpool(threads)


def read_executorch_card(path: PathLike) -> Optional[ModelCard]:
    """The :class:`repghost_mini.ModelCard` that :func:`export_executorch` stored in a ``.pte`` file (``None`` if
    none)."""
    return _program_card(_load_program(path))


def _program_card(program) -> Optional[ModelCard]:
    if CARD_METHOD not in program.method_names:
        return None
    with _quiet():
        return ModelCard.from_json(program.load_method(CARD_METHOD).execute([])[0])


def run_executorch(method_or_path, x: torch.Tensor) -> torch.Tensor:
    """Run a ``.pte`` program (a path, or a loaded :func:`executorch_method`) on ``x``, which must have the exact
    shape it was exported with, and return the output as a float32 tensor."""
    method = executorch_method(method_or_path) if isinstance(method_or_path, (str, os.PathLike)) else method_or_path
    expected = tuple(method.metadata.input_tensor_meta(0).sizes())
    x = torch.as_tensor(x, dtype=torch.float32).contiguous()
    if tuple(x.shape) != expected:
        raise ValueError(f"this .pte program runs inputs of shape {expected} only (ExecuTorch programs have static "
                         f"shapes), got {tuple(x.shape)}; export one with that input_size.")
    outputs: List[torch.Tensor] = method.execute([x])
    return outputs[0].float()


class ExecutorchModel(nn.Module):
    """A ``.pte`` classifier (fp32 or INT8) behind the ``nn.Module`` interface, so :func:`repghost_mini.evaluate`
    scores it exactly like a checkpoint (the twin of :class:`repghost_mini.deploy.OnnxModel`).

    The program runs one static batch size; ``forward`` takes any batch and feeds it in chunks of that size, the
    last one padded with zeros (their outputs dropped). ``card`` is the stored model card (or ``None``),
    ``input_shape`` the program's input shape, ``num_classes`` its output width. It has no parameters.
    """

    def __init__(self, path: PathLike) -> None:
        super().__init__()
        self.path = Path(path)
        program = _load_program(path)  # read once: the forward method and the card come from the same program
        with _quiet():
            self.method = program.load_method("forward")
        self.input_shape = tuple(self.method.metadata.input_tensor_meta(0).sizes())
        self.num_classes = int(self.method.metadata.output_tensor_meta(0).sizes()[-1])
        self.card = _program_card(program)
        if self.card is not None:
            self.card.check_graph(self.path.name, self.input_shape, self.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float32, device="cpu")
        if tuple(x.shape[1:]) != self.input_shape[1:]:
            raise ValueError(f"{self.path.name} takes images of shape {self.input_shape[1:]}, got "
                             f"{tuple(x.shape[1:])}; resize them as its model card says.")
        step = self.input_shape[0]
        outputs = []
        for start in range(0, len(x), step):
            chunk = x[start:start + step]
            padded = torch.cat([chunk, chunk.new_zeros((step - len(chunk), *chunk.shape[1:]))]) \
                if len(chunk) < step else chunk
            outputs.append(run_executorch(self.method, padded)[:len(chunk)])
        return torch.cat(outputs)
