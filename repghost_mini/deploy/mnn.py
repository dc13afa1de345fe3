r"""MNN, the paper's own runtime (Sec. 4, "Latency"): fused model -> ONNX -> ``.mnn``, run it, time it.

The paper measures every latency with MNN on one thread of an ARM phone, batch 1, as the mean of 100 runs
(:data:`PAPER_LATENCY_PROTOCOL` quotes it). This module gives the same three steps on the machine you are on:

* :func:`export_mnn` -- a model (or an ``.onnx`` file written by :func:`repghost_mini.export_onnx`) to ``.mnn``,
  through MNN's converter called in-process. The model card travels along (in the file's ``bizCode`` string, the
  one free-text field an ``.mnn`` file has); :func:`read_mnn_card` reads it back.
* :func:`mnn_module` / :func:`run_mnn` -- load a ``.mnn`` file (1 thread by default) and run a batch.
* :func:`mnn_latency` -- the paper's protocol: warm-up, then 100 timed runs; their mean (the paper's number),
  median and spread.
* :func:`mnn_operator_times` -- MNN's per-operator profile of one forward pass (the paper's Fig. 2 is such a
  profile), through the Session API's callbacks.
* :func:`mnn_concat_vs_add_rounds` -- Table 1 in MNN: the 32 GhostNet concatenations against adds, each kind as
  one graph run through the Session API.

MNN is an optional extra: ``pip install -e '.[mobile]'``. **No network.** The ``MNN`` wheel's ``mnnconvert`` /
``mnnquant`` console scripts (and the ``MNN.tools`` package behind them) import a logger that pip-installs an
SDK and sends usage data; this module never imports ``MNN.tools`` and never runs a console script. It calls the
converter's C++ entry point in the wheel's ``_tools`` extension (the console script's own argument list) and the
engine through ``MNN.nn`` / ``MNN.expr``, neither of which opens a socket (tests/test_mnn.py blocks sockets and
converts anyway).

This is MNN's x86 build on this CPU, not an ARM phone: the kernels differ (AVX2/AVX-512 instead of NEON), so
absolute times and even ratios can differ from the paper's Table 3; what carries over is the graph MNN runs.
"""
from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from ..errors import UserError
from ..files import atomic_output
from ..paper import quote
from ..training.card import ModelCard

__all__ = ["export_mnn", "read_mnn_card", "mnn_module", "run_mnn", "mnn_latency", "mnn_operator_times",
           "mnn_concat_vs_add_rounds", "PAPER_LATENCY_PROTOCOL"]

PathLike = Union[str, os.PathLike]

#: The paper's latency protocol, verbatim (Sec. 4, "Latency").
PAPER_LATENCY_PROTOCOL = " ".join(quote(k) for k in ("latency.mnn", "latency.batch", "latency.runs"))

#: ``bizCode`` of a converted file without a model card (MNN's own default flag).
_NO_CARD = "MNN"


class MissingExtraError(ImportError, UserError):
    """An optional runtime that is not installed: an ``ImportError`` and a :class:`UserError` (one sentence; the
    command line prints it and exits with code 2)."""


@contextlib.contextmanager
def _native_output(sink: List[str]) -> Iterator[None]:
    """Capture what MNN's C++ code prints to file descriptors 1 and 2 (a CPU-feature line on import, the
    converter's progress), which Python cannot silence otherwise; the text is appended to ``sink``."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            tmp.seek(0)
            sink.append(tmp.read().decode(errors="replace"))


def missing_extra(runtime: str, err: ImportError) -> MissingExtraError:
    """The one sentence for a runtime of the ``mobile`` extra that failed to import (raise it ``from None``)."""
    what = "is not installed" if isinstance(err, ModuleNotFoundError) else f"cannot be imported ({err})"
    return MissingExtraError(f"{runtime} {what}; install the mobile extra with pip install -e '.[mobile]'.")


def _require_mnn():
    """``(MNN.nn, MNN.expr, _tools)``, imported quietly; one sentence when the ``mobile`` extra is missing."""
    with _native_output([]):
        try:
            import _tools  # the converter's C++ entry point (not MNN.tools: see the module docstring)
            import MNN.expr as expr
            import MNN.nn as mnn_nn
        except ImportError as err:
            raise missing_extra("MNN", err) from None
    return mnn_nn, expr, _tools


def export_mnn(model_or_onnx_path: Union[nn.Module, PathLike], path: PathLike,
               input_size: Optional[Sequence[int]] = None, card: Optional[ModelCard] = None) -> Path:
    """Write ``model_or_onnx_path`` (an eval-mode model, usually fused, or an ``.onnx`` file) to ``path`` as ``.mnn``.

    A model is first exported with :func:`repghost_mini.export_onnx` (``input_size`` and ``card`` are passed on:
    the card defaults to ``model.card``; the batch dimension stays symbolic); an ONNX file brings its own card
    (:func:`repghost_mini.deploy.read_onnx_card`). MNN's converter then turns the ONNX graph into MNN's
    (float32 weights, MNN's own graph optimizations), in this process, with no network. Writes atomically and
    returns the path; the converter's own log is kept out of the output and quoted when it fails.
    """
    from .export import export_onnx, read_onnx_card

    _, _, tools = _require_mnn()
    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(model_or_onnx_path, nn.Module):
            onnx_path = export_onnx(model_or_onnx_path, os.path.join(tmp, "model.onnx"), input_size, card=card)
        elif isinstance(model_or_onnx_path, (str, os.PathLike)):
            onnx_path = Path(model_or_onnx_path)
        else:
            raise TypeError(f"export_mnn expects a torch.nn.Module or an .onnx path, got "
                            f"{type(model_or_onnx_path).__name__}.")
        card = card if card is not None else read_onnx_card(onnx_path)  # also checks the ONNX file
        log: List[str] = []
        with atomic_output(path) as out:
            with _native_output(log):
                ok = tools.mnnconvert(["MNNConvert", "-f", "ONNX", "--modelFile", os.fspath(onnx_path),
                                       "--MNNModel", os.fspath(out),
                                       "--bizCode", card.to_json() if card is not None else _NO_CARD])
            if not ok or os.path.getsize(out) == 0:
                lines = [line.strip() for line in "".join(log).splitlines() if line.strip()]
                raise UserError(f"MNN's converter could not convert {os.fspath(onnx_path)!r} "
                                f"({lines[-1] if lines else 'no message'}); export it again with export_onnx.")
    return Path(path)


def mnn_module(path: PathLike, threads: int = 1):
    """Load a ``.mnn`` file as an MNN ``Module`` on the CPU with ``threads`` threads (1: the paper's setting),
    float32 (MNN's normal precision; fp16 only with its low precision mode, which this does not ask for).

    The thread count goes through a runtime manager: pymnn 3.6.1's ``load_module_from_file`` ignores its own
    ``thread_num`` argument and runs MNN's default thread pool, so a "one-thread" latency used both cores of this
    machine and moved with what the other core was doing (measured: 1.7-2.0 s of CPU per second of wall time,
    RepGhostNet-1.0x 4.5 ms on a quiet machine, 7.5 ms beside a busy core). ``tests/test_mnn.py`` checks that a
    one-thread module uses one core."""
    mnn_nn, _, _ = _require_mnn()
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}.")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"MNN file {path!r} does not exist; write it first with export_mnn(model, path).")
    try:
        with _native_output([]):
            runtime = mnn_nn.create_runtime_manager(({"backend": "CPU", "numThread": threads,
                                                      "precision": "normal"},))
            module = mnn_nn.load_module_from_file(path, [], [], runtime_manager=runtime)
    except (SystemError, RuntimeError):  # MNN's binding reports an unreadable file as a SystemError
        module = None
    if module is None:
        raise UserError(f"MNN cannot load {path!r}: it is not a complete .mnn file; write it again with "
                        "export_mnn(model, path).")
    return module


def read_mnn_card(module_or_path) -> Optional[ModelCard]:
    """The :class:`repghost_mini.ModelCard` that :func:`export_mnn` stored in a ``.mnn`` file (``None`` if none)."""
    module = mnn_module(module_or_path) if isinstance(module_or_path, (str, os.PathLike)) else module_or_path
    code = module.get_info().get("bizCode", "")
    return ModelCard.from_json(code) if code.startswith("{") else None


def _as_var(expr, x: Union[torch.Tensor, np.ndarray]):
    array = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy() if isinstance(x, torch.Tensor)
                                 else np.asarray(x, dtype=np.float32))
    if array.ndim != 4:
        raise ValueError(f"run_mnn expects a batch of images (N, C, H, W), got shape {tuple(array.shape)}.")
    return expr.const(array, list(array.shape), expr.NCHW)


def _inference(module, x: Union[torch.Tensor, np.ndarray]) -> Callable[[], object]:
    """One timed inference: ``module`` on the batch ``x`` (converted once), output read back -- what
    :func:`mnn_latency` and ``benchmark_models(runtimes=["mnn"])`` time."""
    _, expr, _ = _require_mnn()
    var = _as_var(expr, x)
    return lambda: module.forward([var])[0].read()


def run_mnn(module_or_path, x: Union[torch.Tensor, np.ndarray], threads: int = 1) -> torch.Tensor:
    """Run a ``.mnn`` model (a loaded :func:`mnn_module` or a path, then with ``threads``) on a batch ``x``
    (N, C, H, W), torch or numpy, and return its output as a float32 tensor (N, num_classes)."""
    _, expr, _ = _require_mnn()
    module = mnn_module(module_or_path, threads) if isinstance(module_or_path, (str, os.PathLike)) else module_or_path
    out = module.forward([_as_var(expr, x)])
    return torch.from_numpy(np.array(out[0].read(), dtype=np.float32))


def mnn_latency(module_or_path, input_size: Sequence[int] = (1, 3, 224, 224), runs: int = 100, warmup: int = 10,
                threads: int = 1, seed: int = 0) -> Dict[str, float]:
    """Latency of a ``.mnn`` model with the paper's protocol (:data:`PAPER_LATENCY_PROTOCOL`): ``warmup`` untimed runs,
    then ``runs`` timed runs (default 100) on one thread at batch 1 (``input_size`` (N, C, H, W)).

    Returns milliseconds: ``mean_ms`` (the paper's number), ``median_ms`` (robust to a run hit by another
    process), ``stdev_ms``, ``min_ms``, ``max_ms``, and ``runs``. Each run is one ``forward`` with the output read
    back, timed with ``time.perf_counter``.
    """
    _, expr, _ = _require_mnn()
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}.")
    module = mnn_module(module_or_path, threads) if isinstance(module_or_path, (str, os.PathLike)) else module_or_path
    once = _inference(module, torch.randn(tuple(input_size), generator=torch.Generator().manual_seed(seed)))
    for _ in range(warmup):
        once()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        once()
        times.append((time.perf_counter() - start) * 1e3)
    return dict(mean_ms=statistics.fmean(times), median_ms=statistics.median(times),
                stdev_ms=statistics.stdev(times) if runs > 1 else 0.0, min_ms=min(times), max_ms=max(times),
                runs=runs)


def mnn_operator_times(path: PathLike, input_size: Sequence[int] = (1, 3, 224, 224), runs: int = 10,
                       warmup: int = 3, threads: int = 1, seed: int = 0) -> Dict[str, List[float]]:
    """Per-operator time of a ``.mnn`` model: ``{kind: [ms of run 1, ms of run 2, ...]}`` over ``runs`` profiled
    forward passes (after ``warmup`` plain ones) on ``threads`` threads, through MNN's Session API
    (``runSessionWithCallBackInfo``: a callback before and after every operator, timed with ``time.perf_counter``;
    the callbacks add a few microseconds per operator, so the sum is a little above :func:`mnn_latency`).

    ``kind`` is MNN's operator type (``Convolution``, ``ConvolutionDepthwise``, ...). MNN runs every memory
    movement -- a concatenation, a slice, a broadcast -- as a ``Raster`` operator, and every element-wise
    add or multiply as a ``BinaryOp``; for these two the kind also names the graph node the operator came from,
    e.g. ``"Raster (cat)"`` or ``"BinaryOp (add)"`` (the ONNX exporter names nodes after the PyTorch op: ``cat``,
    ``getitem``, ``add``, ``mul``, ``mean``).
    """
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}.")
    interpreter, session = _session(path, threads, seed, lambda shape: tuple(input_size))
    for _ in range(warmup):
        interpreter.runSession(session)
    samples: Dict[str, List[float]] = {}
    for run in range(runs):
        totals = _profiled_run(interpreter, session)
        for kind in set(samples) | set(totals):
            samples.setdefault(kind, [0.0] * run).append(totals.get(kind, 0.0))
    return samples


def _profiled_run(interpreter, session) -> Dict[str, float]:
    """One forward pass of ``session`` with MNN's callbacks around every operator: ``{kind: ms}`` (see
    :func:`mnn_operator_times`)."""
    totals: Dict[str, float] = {}
    started = [0.0]

    def before(tensors, info) -> bool:
        started[0] = time.perf_counter()
        return True

    def after(tensors, info) -> bool:
        elapsed = time.perf_counter() - started[0]
        kind = info.getType()
        if kind in ("Raster", "BinaryOp"):
            kind = f"{kind} ({_node_op(info.getName())})"
        totals[kind] = totals.get(kind, 0.0) + elapsed * 1e3
        return True

    interpreter.runSessionWithCallBackInfo(session, before, after)
    return totals


def _session(path: PathLike, threads: int, seed: int, resize: Callable[[tuple], tuple]):
    """An MNN ``Interpreter`` and ``Session`` for ``path`` (``threads`` threads) whose every input is resized to
    ``resize(shape in the file)`` and filled once with random float32 numbers (``seed``), so that
    ``interpreter.runSession(session)`` runs the operators alone: no input copy, no output read."""
    _require_mnn()
    import MNN

    mnn_module(path, threads)  # one sentence for a missing or broken file
    with _native_output([]):
        interpreter = MNN.Interpreter(os.fspath(path))
        session = interpreter.createSession({"numThread": threads})
    for tensor in interpreter.getSessionInputAll(session).values():
        interpreter.resizeTensor(tensor, resize(tuple(tensor.getShape())))
    interpreter.resizeSession(session)
    gen = np.random.default_rng(seed)
    for _, tensor in sorted(interpreter.getSessionInputAll(session).items()):
        shape = tuple(tensor.getShape())
        x = gen.standard_normal(shape, dtype=np.float32)
        tensor.copyFrom(MNN.Tensor(shape, MNN.Halide_Type_Float, x, MNN.Tensor_DimensionType_Caffe))
    return interpreter, session


class _ReuseGraph(nn.Module):
    """All of Table 1's operators of one kind in one graph: input ``2i`` and ``2i + 1`` are pair ``i``'s operands;
    output ``i`` is their concatenation (``kind="cat"``) or their sum (``kind="add"``)."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def forward(self, *xs: torch.Tensor):
        pairs = zip(xs[0::2], xs[1::2], strict=True)
        if self.kind == "cat":
            return tuple(torch.cat((a, b), dim=1) for a, b in pairs)
        return tuple(torch.add(a, b) for a, b in pairs)


def mnn_concat_vs_add_rounds(pairs: Sequence[Tuple[Sequence[int], Sequence[int]]],
                             batch_sizes: Sequence[int] = (1, 2, 8, 32), min_run_time: float = 0.2,
                             rounds: int = 10, threads: int = 1) -> Dict[int, Dict[str, List[float]]]:
    r"""Table 1 in MNN: the accumulated time of all ``pairs``' concatenations vs. adds, one sample per round.

    The same three statements as :func:`repghost_mini.measure.concat_vs_add_rounds` (``"cat"``, ``"add_operands"``:
    ``add(x1, x2)`` on the concatenation's operands, ``"add_output"``: an add of two tensors of the concatenated
    output's shape), each written as one graph holding the operator once per pair (e.g. the 32 GhostNet shapes of
    :func:`repghost_mini.measure.ghostnet_concat_shapes`), exported to ONNX, converted to ``.mnn`` in-process and
    run through MNN's Session API on ``threads`` threads with its inputs filled once, so a timed run is the
    operators alone. MNN runs a concatenation as a ``Raster`` operator (a memory copy) and an add as a
    ``BinaryOp``; it keeps its own internal layout (channels in blocks of 4), so there is no NCHW/NHWC choice.

    For each batch size (the graphs' batch dimension is resized), ``rounds`` interleaved rounds time every graph
    for ``min_run_time / rounds`` seconds (median ms of one run). Returns ``{batch size: {name: [ms per round]}}``
    for :func:`repghost_mini.measure.compare`.
    """
    from ..measure.concat_cost import check_concat_pairs
    from ..measure.timing import interleaved_rounds, median_time
    from .export import quiet_onnx_export

    check_concat_pairs(pairs)
    if min_run_time <= 0 or rounds < 1:
        raise ValueError(f"min_run_time must be > 0 and rounds >= 1, got {min_run_time!r} and {rounds!r}.")
    if not batch_sizes or any(not isinstance(b, int) or b < 1 for b in batch_sizes):
        raise ValueError(f"batch_sizes must be positive integers, got {batch_sizes!r}.")
    _require_mnn()
    shapes = {"cat": [s for pair in pairs for s in pair], "add_operands": [s for pair in pairs for s in pair],
              "add_output": [(1, s1[1] + s2[1], *s1[2:]) for s1, s2 in pairs for _ in range(2)]}
    samples: Dict[int, Dict[str, List[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for name, graph_shapes in shapes.items():
            xs = tuple(torch.randn((1, *s[1:])) for s in graph_shapes)
            onnx_path = os.path.join(tmp, f"{name}.onnx")
            quiet_onnx_export(_ReuseGraph("cat" if name == "cat" else "add").eval(), xs, onnx_path,
                              [f"x{i}" for i in range(len(xs))])
            files[name] = export_mnn(onnx_path, os.path.join(tmp, f"{name}.mnn"))
        for bs in batch_sizes:
            sessions = {name: _session(path, threads, 0, lambda shape, bs=bs: (bs, *shape[1:]))
                        for name, path in files.items()}

            def measure(name: str, sessions=sessions) -> float:
                interpreter, session = sessions[name]
                return median_time(lambda: interpreter.runSession(session), min_run_time / rounds) * 1e3

            samples[bs] = interleaved_rounds(measure, list(sessions), rounds)
    return samples


def _node_op(name: str) -> str:
    """The PyTorch op an exported node is named after: ``"cat_3_raster_0"`` -> ``"cat"``, ``"add_12"`` -> ``"add"``."""
    head = name.split("/")[-1].lstrip("_")
    letters = ""
    for ch in head:
        if not (ch.isalpha() or (ch == "_" and letters and not letters.endswith("_"))):
            break
        letters += ch
    return letters.rstrip("_").split("_raster")[0] or name
