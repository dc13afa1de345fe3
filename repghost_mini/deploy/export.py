r"""Deployment: export to ONNX, inspect the graph, run it in onnxruntime (paper Sec. 3.2 and Sec. 4, "latency").

The point of re-parameterization is what the deployed graph looks like. After :func:`repghost_mini.reparameterize`
a RepGhost bottleneck is a chain of plain ``Conv`` (+ ``Relu``) nodes and one ``Add`` for the shortcut: no
``Concat`` (GhostNet's feature reuse) and no ``BatchNormalization``. :func:`count_onnx_ops` makes that visible.

**Exporter.** We use ``torch.onnx.export(..., dynamo=True)``, the default since PyTorch 2.9: it traces with
``torch.export`` (no Python-control-flow surprises), takes a symbolic batch dimension through ``dynamic_shapes``,
and is the maintained path (the TorchScript exporter is deprecated and announced for removal). Its ONNX
optimizer (onnxscript) folds every BatchNorm that directly follows a Conv into that Conv when the model is in
eval mode -- so even the training-form network loses those BNs in the file. What no exporter can fold are
the parts re-parameterization removes: the BN *branch* of module d (a BN applied to $x_1$ and added) and the
extra ``Add`` nodes. ``optimize=False`` keeps every BN, at the price of many shape-helper nodes.

onnxruntime itself also folds Conv+BN (its "basic" graph optimizations): see :func:`onnxruntime_optimized_ops`.
"""
from __future__ import annotations

import collections
import contextlib
import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from ..errors import require_finite
from ..files import atomic_output
from ..modes import eval_mode
from ..training.card import CARD_KEY, ModelCard

__all__ = ["export_onnx", "read_onnx_card", "count_onnx_ops", "onnx_session", "run_onnx", "check_onnx_matches",
           "onnxruntime_optimized_ops", "onnx_file_size_mb", "draw_onnx_graph", "fake_quantize_weights", "snr_db"]

PathLike = Union[str, os.PathLike]
#: Lowest ONNX opset we export to (opset 17 has LayerNormalization; 18 is what the dynamo exporter prefers).
MIN_OPSET = 17
#: Node metadata in which the dynamo exporter records the Python stack trace (with local file paths).
STACK_TRACE_KEY = "pkg.torch.onnx.stack_trace"


def _require(module: str):
    try:
        return __import__(module)
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(f"{module} is needed for ONNX export/inference; install it with "
                          f"`pip install {module}` (or `pip install -e .[dev]`).") from None


class OnnxFileError(ValueError):
    """An .onnx file that cannot be used (not ONNX, damaged, or a graph that does not fit the question asked)."""


def _load(model_or_path):
    onnx = _require("onnx")
    if isinstance(model_or_path, (str, os.PathLike)):
        path = os.fspath(model_or_path)
        if os.path.isdir(path):
            raise IsADirectoryError(f"{path!r} is a folder, not an ONNX file; pass the .onnx file inside it.")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"ONNX file {path!r} does not exist; export it first with export_onnx(model, "
                                    "path).")
        try:
            proto = onnx.load(path)
            onnx.checker.check_model(proto)
        except Exception as err:  # protobuf DecodeError, onnx ValidationError: one sentence, not their dump
            raise OnnxFileError(f"{path!r} is not a valid ONNX model ({type(err).__name__}: "
                                f"{str(err).strip().splitlines()[0][:100] if str(err).strip() else 'empty'}); "
                                "export it again with export_onnx(model, path).") from None
        if not proto.graph.node or not proto.graph.input:
            raise OnnxFileError(f"{path!r} is not an ONNX model file (no graph nodes or inputs); give a file "
                                "written by export_onnx / `export` / `quantize`.")
        return proto
    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    raise TypeError(f"expected a path to an .onnx file or an onnx.ModelProto, got {type(model_or_path).__name__}.")


def model_input(model: nn.Module, input_size: Optional[Sequence[int]], card: Optional[ModelCard]) -> tuple:
    """``(input_size, card)`` for an export: ``card`` defaults to ``model.card``, ``input_size`` (N, C, H, W) to the
    card's; a model without a card needs ``input_size`` (one sentence says so)."""
    card = card if card is not None else getattr(model, "card", None)
    if input_size is None:
        if card is None:
            raise ValueError("this model carries no model card, so its input size is unknown; pass "
                             "input_size=(1, 3, H, W) with the image size it was trained on.")
        input_size = card.input_size
    input_size = tuple(int(s) for s in input_size)
    if len(input_size) != 4 or min(input_size) < 1:
        raise ValueError(f"input_size must be (N, C, H, W) with positive entries, got {input_size}.")
    return input_size, card


def export_onnx(model: nn.Module, path: PathLike, input_size: Optional[Sequence[int]] = None, opset: int = 18,
                dynamic_batch: bool = True, optimize: bool = True, card: Optional[ModelCard] = None,
                overwrite: bool = True) -> Path:
    """Export ``model`` (in eval mode, on any device) to ``path`` as ONNX and check it with ``onnx.checker``.

    The graph has one input ``"input"`` of shape ``input_size`` (dimension 0 symbolic, named ``"batch"``,
    when ``dynamic_batch``) and one output ``"output"``. ``card`` (default: ``model.card`` when the model has one,
    as every model :func:`repghost_mini.load` or :func:`repghost_mini.train` returns does) goes into the file's
    ``metadata_props`` and gives the default ``input_size``; a model without a card needs ``input_size``. The
    model is exported on the CPU in float32; the original ``model`` is not modified. ``optimize=False`` skips the
    exporter's graph optimizer (which folds Conv+BN pairs); ``overwrite=False`` refuses an existing file. Returns
    the path.
    """
    _require("onnxscript")
    onnx = _require("onnx")
    if not isinstance(model, nn.Module):
        raise TypeError(f"export_onnx expects a torch.nn.Module, got {type(model).__name__}.")
    if model.training:
        raise RuntimeError("export_onnx exports the inference graph: call model.eval() first (in train mode BN "
                           "uses batch statistics and dropout is active).")
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET} (got {opset}); onnxruntime runs opsets up to 21+.")
    input_size, card = model_input(model, input_size, card)
    param = next(model.parameters(), None)
    if param is not None and (param.device.type != "cpu" or param.dtype != torch.float32):
        import copy
        model = copy.deepcopy(model).to("cpu", torch.float32)
    x = torch.randn(input_size)
    dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic_batch else None
    with atomic_output(path, overwrite) as tmp:
        quiet_onnx_export(model, (x,), tmp, ["input"], ["output"], opset=opset, dynamic_shapes=dynamic_shapes,
                          optimize=optimize)
        proto = onnx.load(str(tmp))
        _drop_stack_traces(proto)
        if card is not None:
            onnx.helper.set_model_props(proto, {CARD_KEY: card.replace(image_size=input_size[-1]).to_json()})
        onnx.checker.check_model(proto, full_check=True)
        onnx.save(proto, str(tmp))
    return Path(path)


def quiet_onnx_export(model: nn.Module, args: tuple, path: PathLike, input_names: Sequence[str],
                      output_names: Optional[Sequence[str]] = None, opset: int = 18, dynamic_shapes=None,
                      optimize: bool = True) -> None:
    """``torch.onnx.export`` (the dynamo exporter, weights inside the file) without its chatter: warnings and
    progress lines are dropped; a failed write (full disk) comes out as the ``OSError`` the exporter wrapped."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # exporter chatter (e.g. opset version conversions); progress lines
        try:
            torch.onnx.export(model, args, os.fspath(path), dynamo=True, opset_version=opset,
                              input_names=list(input_names), output_names=None if output_names is None
                              else list(output_names), dynamic_shapes=dynamic_shapes, optimize=optimize,
                              external_data=False)
        except Exception as err:  # the exporter wraps a failed write (full disk) in its own error type
            cause = _os_error_in(err)
            if cause is None:
                raise
            raise cause from None


def _os_error_in(err: BaseException):
    """The OSError inside an exception chain (``__cause__`` / ``__context__``), if any."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _drop_stack_traces(proto) -> None:
    """Remove the exporter's per-node Python stack traces (they hold this machine's file paths, so the same
    model would give files of different sizes on different machines); module names and scopes are kept."""
    for node in proto.graph.node:
        kept = [p for p in node.metadata_props if p.key != STACK_TRACE_KEY]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)


def read_onnx_card(model_or_path) -> Optional[ModelCard]:
    """The :class:`repghost_mini.ModelCard` stored in an ONNX file's ``metadata_props`` (``None`` if it has none)."""
    props = {p.key: p.value for p in _load(model_or_path).metadata_props}
    return ModelCard.from_json(props[CARD_KEY]) if CARD_KEY in props else None


def count_onnx_ops(model_or_path) -> Dict[str, int]:
    """``{op_type: count}`` over the nodes of the main graph of an ONNX file or ``onnx.ModelProto``,
    most frequent first (``Constant`` nodes included: they are nodes too)."""
    graph = _load(model_or_path).graph
    counts = collections.Counter(node.op_type for node in graph.node)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def onnx_file_size_mb(path: PathLike) -> float:
    """Size of an ONNX file on disk in MB (10^6 bytes)."""
    return os.path.getsize(path) / 1e6


def onnx_session(path: PathLike, threads: int = 1, optimization: str = "all",
                 profile_prefix: Optional[PathLike] = None):
    """An onnxruntime CPU ``InferenceSession`` using ``threads`` intra-op threads (one inter-op thread).

    ``optimization``: ``"disable"``, ``"basic"`` (constant folding, Conv+BN fusion ...), ``"extended"`` or
    ``"all"`` (onnxruntime's default, adds layout transforms and fused Conv+activation kernels).
    ``profile_prefix``: switch on onnxruntime's profiler, which writes ``<prefix>_<time>.json`` (the path that
    ``session.end_profiling()`` returns) with every node's kernel time.
    """
    ort = _require("onnxruntime")
    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    if optimization not in levels:
        raise ValueError(f"unknown optimization level {optimization!r}; choose one of {list(levels)}.")
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}.")
    _load(path)  # one sentence for a missing, damaged or non-ONNX file
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = levels[optimization]
    options.log_severity_level = 3
    if profile_prefix is not None:
        options.enable_profiling, options.profile_file_prefix = True, os.fspath(profile_prefix)
    try:
        return ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:
        if not _is_ort_error(err):
            raise
        raise OnnxFileError(f"onnxruntime cannot load {os.fspath(path)!r} ({type(err).__name__}: "
                            f"{_first_line(err)}); export it again with export_onnx(model, path).") from None


def _is_ort_error(err: BaseException) -> bool:
    return type(err).__module__.startswith("onnxruntime")


def _first_line(err: BaseException, limit: int = 160) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:limit] if text else "no message"


def run_onnx(session_or_path, x: torch.Tensor) -> torch.Tensor:
    """Run a one-input ONNX model (a session or a path) on ``x`` and return its first output as a tensor."""
    session = session_or_path if hasattr(session_or_path, "run") else onnx_session(session_or_path)
    _check_input_shape(session, tuple(x.shape))
    feed = {session.get_inputs()[0].name: x.detach().to("cpu", torch.float32).contiguous().numpy()}
    try:
        return torch.from_numpy(np.asarray(session.run(None, feed)[0]))
    except Exception as err:
        if not _is_ort_error(err):
            raise
        raise OnnxFileError(f"onnxruntime could not run the model on an input of shape {tuple(x.shape)} "
                            f"({type(err).__name__}: {_first_line(err)}).") from None


def _check_input_shape(session, shape: Tuple[int, ...]) -> None:
    """One sentence when ``shape`` does not fit the file's fixed input dimensions (static batch, other size)."""
    declared = list(session.get_inputs()[0].shape)
    if len(declared) != len(shape):
        raise OnnxFileError(f"the ONNX model takes a {len(declared)}-d input {declared}, not {len(shape)}-d "
                            f"{list(shape)}.")
    wrong = [i for i, (d, s) in enumerate(zip(declared, shape, strict=True)) if isinstance(d, int) and d != s]
    if wrong == [0]:
        raise OnnxFileError(f"the ONNX file has a fixed batch size of {declared[0]}, so it cannot run a batch of "
                            f"{shape[0]}; export with dynamic_batch=True or use batch size {declared[0]}.")
    if wrong:
        raise OnnxFileError(f"the ONNX model expects inputs of shape {declared}, not {list(shape)}; pass the "
                            "input_size it was exported with.")


@torch.no_grad()
def check_onnx_matches(model: nn.Module, path: PathLike, input_size: Sequence[int] = (1, 3, 224, 224),
                       batch_sizes: Sequence[int] = (1, 3), rtol: float = 1e-4, atol: float = 1e-4,
                       seed: int = 0, images: Optional[torch.Tensor] = None) -> float:
    r"""Check that onnxruntime's outputs equal the PyTorch model's on random inputs of several batch sizes.

    The model is compared in eval mode (what ONNX holds) and left in the mode it was in: a model in train mode
    keeps its BatchNorm running statistics. "Equal within float32 rounding":
    $|y_{ort} - y_{torch}| \le atol \cdot \max|y_{torch}| + rtol\,|y_{torch}|$ elementwise (the two runtimes sum
    convolutions in different orders). ``images`` (real, preprocessed images (N, C, H, W)) replaces the random
    inputs: they are compared one alone and all together. Raises ``AssertionError`` saying what
    differs (output shape, e.g. another
    ``num_classes``, or the values), :class:`OnnxFileError` when the file cannot take these inputs (a fixed batch
    size, another image size); returns the largest absolute difference seen.
    """
    session = onnx_session(path, threads=1)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    batches = ([images[:1], images] if images is not None else
               [torch.randn((n, *tuple(input_size)[1:]), generator=g) for n in batch_sizes])
    with eval_mode(model):
        for x in batches:
            n = x.shape[0]
            got = run_onnx(session, x)
            expected = model(x.to(device)).float().cpu()
            if got.shape != expected.shape:
                raise AssertionError(f"the ONNX model's output has shape {tuple(got.shape)} but the PyTorch "
                                     f"model's {tuple(expected.shape)} for the same batch of {n}: they are "
                                     f"different networks (e.g. another num_classes).")
            require_finite(expected, "the PyTorch model's output")
            require_finite(got, f"the output of {Path(path).name}")
            diff = (got - expected).abs()
            scale = expected.abs().max().item()
            bound = atol * max(scale, 1.0) + rtol * expected.abs()
            if (diff > bound).any():
                raise AssertionError(f"onnxruntime and PyTorch differ by up to {diff.max().item():.3g} (batch {n}, "
                                     f"output scale {scale:.3g}): more than float32 rounding, so the file was not "
                                     "exported from these weights.")
            worst = max(worst, diff.max().item())
    return worst


def onnxruntime_optimized_ops(path: PathLike, optimization: str = "basic") -> Dict[str, int]:
    """Operator counts of the graph onnxruntime actually runs after its graph optimizations.

    At ``"basic"`` level onnxruntime already folds a BatchNormalization that follows a Conv into it (and
    folds constants); ``"extended"``/``"all"`` also fuse Conv+Relu into ``FusedConv``. This is why, inside
    onnxruntime, a network's leftover Conv->BN pairs cost nothing; only BNs that do not follow a conv
    (RepGhost's BN branch) and the extra Adds survive -- those only re-parameterization removes.
    """
    ort = _require("onnxruntime")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "optimized.onnx")
        session = onnx_session(path, threads=1, optimization=optimization)
        options = ort.SessionOptions()
        options.graph_optimization_level = session.get_session_options().graph_optimization_level
        options.optimized_model_filepath = out
        options.log_severity_level = 3
        ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
        return count_onnx_ops(out)


class _Node:
    """A drawable node: an ONNX node, or a graph input (drawn as ``input``)."""

    def __init__(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str]) -> None:
        self.op_type, self.input, self.output = op_type, list(inputs), list(outputs)


def _graph_layers(graph) -> Tuple[list, Dict[int, int]]:
    """Graph inputs and nodes (Constant nodes dropped), and each one's depth = longest path from the inputs."""
    weights = {init.name for init in graph.initializer}
    nodes = [_Node("input", [], [i.name]) for i in graph.input if i.name not in weights]
    nodes += [_Node(n.op_type, n.input, n.output) for n in graph.node if n.op_type != "Constant"]
    producer = {out: i for i, n in enumerate(nodes) for out in n.output}
    depth: Dict[int, int] = {}
    for i, n in enumerate(nodes):  # ONNX nodes are stored in topological order
        parents = [producer[t] for t in n.input if t in producer]
        depth[i] = 1 + max((depth[p] for p in parents), default=-1)
    return nodes, depth


def draw_onnx_graph(model_or_path, ax=None, title: Optional[str] = None, fontsize: int = 7):
    """Draw an ONNX graph top to bottom with matplotlib: one box per node (op type) plus the graph input,
    arrows along tensors (curved when they skip rows, e.g. a shortcut).

    Meant for small graphs (one bottleneck). Nodes at the same depth (longest path from the input) share a
    row. Returns the matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    graph = _load(model_or_path).graph
    nodes, depth = _graph_layers(graph)
    rows: Dict[int, list] = collections.defaultdict(list)
    for i in range(len(nodes)):
        rows[depth[i]].append(i)
    pos = {}
    for d, members in rows.items():
        for k, i in enumerate(members):
            pos[i] = (k - (len(members) - 1) / 2, -d)
    if ax is None:
        width = max(len(m) for m in rows.values()) if rows else 1
        _, ax = plt.subplots(figsize=(1.2 + 1.3 * width, 0.45 * (len(rows) + 1)))
    producer = {out: i for i, n in enumerate(nodes) for out in n.output}
    for i, n in enumerate(nodes):
        for t in n.input:
            if t in producer:
                src = producer[t]
                (x0, y0), (x1, y1) = pos[src], pos[i]
                skip = depth[i] - depth[src] > 1
                ax.annotate("", xy=(x1, y1 + 0.18), xytext=(x0, y0 - 0.18),
                            arrowprops=dict(arrowstyle="->", color="0.4", lw=0.8,
                                            connectionstyle="arc3,rad=0.35" if skip else "arc3"))
    colors = {"Conv": "#cfe2f3", "BatchNormalization": "#f4cccc", "Concat": "#fce5cd", "Add": "#d9ead3",
              "Relu": "#eeeeee", "input": "#fff2cc"}
    for i, n in enumerate(nodes):
        x, y = pos[i]
        ax.text(x, y, n.op_type, ha="center", va="center", fontsize=fontsize,
                bbox=dict(boxstyle="round,pad=0.25", fc=colors.get(n.op_type, "white"), ec="0.3", lw=0.6))
    xs = [p[0] for p in pos.values()] or [0]
    ax.set_xlim(min(xs) - 1.0, max(xs) + 1.0)
    ax.set_ylim(-max(depth.values(), default=0) - 0.6, 0.6)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=fontsize + 2)
    return ax


# ----------------------------------------------------------------------------------------------------------
# What re-parameterization does not give for free: INT8 weights
# ----------------------------------------------------------------------------------------------------------
@torch.no_grad()
def fake_quantize_weights(model: nn.Module, per_channel: bool = False, bits: int = 8) -> nn.Module:
    r"""A copy of ``model`` whose Conv2d / Linear weights are rounded to signed ``bits``-bit integers and back.

    Symmetric scales from ``torch.ao.quantization`` observers: one scale per tensor
    ($s = \max|W| / (2^{b-1}-1)$, ``per_channel=False``) or one per output channel. Activations and biases
    stay float32, so the output error measures weight quantization alone. A re-parameterized kernel sums
    several branches (Eq. 2), which can widen its range and make per-tensor scales coarse.
    """
    import copy

    from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

    if not 2 <= bits <= 16:
        raise ValueError(f"bits must be between 2 and 16, got {bits}.")
    qmin, qmax = -(2 ** (bits - 1)) + 1, 2 ** (bits - 1) - 1
    qdtype = torch.qint8 if bits <= 8 else torch.qint32  # observers check the range against the dtype
    model = copy.deepcopy(model)
    for module in model.modules():
        if not isinstance(module, (nn.Conv2d, nn.Linear)):
            continue
        w = module.weight
        if per_channel:
            obs = PerChannelMinMaxObserver(ch_axis=0, dtype=qdtype, qscheme=torch.per_channel_symmetric,
                                           quant_min=qmin, quant_max=qmax)
            obs(w)
            scale, zero = obs.calculate_qparams()
            q = torch.fake_quantize_per_channel_affine(w, scale.float(), zero.int(), 0, qmin, qmax)
        else:
            obs = MinMaxObserver(dtype=qdtype, qscheme=torch.per_tensor_symmetric, quant_min=qmin,
                                 quant_max=qmax)
            obs(w)
            scale, zero = obs.calculate_qparams()
            q = torch.fake_quantize_per_tensor_affine(w, float(scale), int(zero), qmin, qmax)
        module.weight.copy_(q)
    return model


def snr_db(reference: torch.Tensor, approximation: torch.Tensor) -> float:
    r"""Signal-to-noise ratio $10\log_{10}(\|y\|^2 / \|y-\hat y\|^2)$ in dB (higher is better; +6 dB ~ 1 bit)."""
    reference, approximation = reference.double(), approximation.double()
    noise = (reference - approximation).pow(2).sum().item()
    if noise == 0:
        return float("inf")
    return 10 * float(np.log10(reference.pow(2).sum().item() / noise))
