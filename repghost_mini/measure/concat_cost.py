r"""Why concatenation is not free: the measurements behind Table 1 and Fig. 2 (paper Sec. 3.1).

Concatenation has no parameters and no FLOPs, yet it copies memory. For two NCHW maps
$M_1 \in \mathbb{R}^{N\times C_1\times H\times W}$, $M_2 \in \mathbb{R}^{N\times C_2\times H\times W}$ the largest
contiguous blocks it can copy are one image of each ($C_i H W$ numbers, repeated $N$ times); in NHWC
(``channels_last``) they shrink to one pixel's channels ($C_i$ numbers, repeated $NHW$ times). An element-wise
add reads both operands as single contiguous blocks.

* :func:`ghostnet_concat_shapes` collects the shapes $(x_1, x_2)$ of the 32 concatenations in a GhostNet 1.0x
  forward pass with forward hooks (no hand-typed shapes).
* :func:`time_concat_vs_add` is Table 1, in both readings of "add": the accumulated time of all these
  ``torch.cat`` calls against ``add(x1, x2)`` on the concatenation's own operands (Sec. 3.3's add of the two
  halves) and against adds of two tensors of the concatenated output's shape; :data:`BYTES_MODEL` gives what a
  bandwidth-bound machine would predict for each reading (cat/add = 4/3 and 2/3).
* :func:`concat_vs_add_rounds` is the same measurement with one sample per round, for
  :func:`repghost_mini.measure.compare` (may a sentence say that cat costs more?).
* Footnote 2: :func:`channel_slice_is_contiguous` says when a channel slice of one output buffer is a single
  block of memory (batch 1 in NCHW), and :func:`preallocation_rounds` times the three ways to reuse features:
  producers then ``torch.cat``, producers writing straight into the slices of a pre-allocated buffer
  (:func:`reuse_by_preallocation`, no concat at all), and producers then an add.
* :func:`operator_times` is Fig. 2: the absolute time of each operator in a whole forward pass, from
  ``torch.profiler`` (:func:`operator_time_shares`: the same as shares); :func:`replace_concat_with_add` makes
  the GhostNet whose concatenations are adds.
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import sys
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torch.profiler import ProfilerActivity, profile, record_function

from ..core.modules import GhostAddModule, GhostModule, check_input
from ..modes import eval_mode
from .timing import benchmark, interleaved_rounds, medians  # torch.utils.benchmark, imported quietly

__all__ = [
    "ghostnet_concat_shapes",
    "time_concat_vs_add",
    "concat_vs_add_rounds",
    "channel_slice_is_contiguous",
    "reuse_by_concat",
    "reuse_by_preallocation",
    "reuse_by_add",
    "preallocation_rounds",
    "replace_concat_with_add",
    "ReuseByAddModule",
    "operator_time_shares",
    "operator_times",
    "REUSE_ADD_LABEL",
    "BYTES_MODEL",
]

Shape = Tuple[int, ...]

#: Elements moved (read + written) per element $S$ of the concatenated output, for each statement timed by
#: :func:`time_concat_vs_add`. cat reads $x_1, x_2$ ($S$) and writes $S$; ``add(x1, x2)`` reads the two halves
#: ($S$) and writes one half ($S/2$); an add of two output-shaped tensors reads $2S$ and writes $S$. A purely
#: bandwidth-bound machine would give cat/add = 2 / 1.5 = 4/3 for the operands reading and 2 / 3 for the
#: output-shape reading.
BYTES_MODEL: Dict[str, float] = {"cat": 2.0, "add_operands": 1.5, "add_output": 3.0}

#: Profiler range name around the feature-reuse add of :class:`ReuseByAddModule` (so it is not mixed up with
#: the shortcut adds of the bottlenecks in :func:`operator_time_shares`).
REUSE_ADD_LABEL = "add (feature reuse)"


def ghostnet_concat_shapes(model: Optional[nn.Module] = None,
                           input_size: Sequence[int] = (1, 3, 224, 224)) -> List[Tuple[Shape, Shape]]:
    r"""Shapes ``(shape_x1, shape_x2)`` of the two inputs of every :class:`GhostModule` concatenation, in forward order.

    ``model`` defaults to ``repghost_mini.ghostnet(1.0)`` (GhostNet 1.0x: 16 bottlenecks x 2 Ghost modules = 32
    concatenations at 224x224, Sec. 3.1). Forward hooks on each Ghost module's ``primary_conv`` ($x_1$, the
    intrinsic maps) and ``cheap_operation`` ($x_2$, the ghost maps) record the shapes during one eval-mode forward
    pass on a zero input of ``input_size``. The batch dimension of every shape is ``input_size[0]``; the timing
    functions replace it by their own ``batch_size`` (``(batch_size, *shape[1:])``), so collect at batch 1.
    """
    if model is None:
        from ..core.networks import ghostnet
        model = ghostnet(1.0)
    ghost_modules = [m for m in model.modules() if isinstance(m, GhostModule)]
    if not ghost_modules:
        raise ValueError(f"{type(model).__name__} contains no GhostModule, so it has no Ghost concatenations; "
                         "pass a GhostNet (e.g. repghost_mini.ghostnet(1.0)).")
    if len(input_size) != 4:
        raise ValueError(f"input_size must be (N, C, H, W), got {tuple(input_size)!r}.")
    records: Dict[int, Dict[str, Shape]] = {}
    order: List[int] = []
    handles = []

    def hook(key: int, part: str):
        def record(_module: nn.Module, _inputs, output: Tensor) -> None:
            if key not in records:
                records[key] = {}
                order.append(key)
            records[key][part] = tuple(output.shape)
        return record

    for i, m in enumerate(ghost_modules):
        handles.append(m.primary_conv.register_forward_hook(hook(i, "x1")))
        handles.append(m.cheap_operation.register_forward_hook(hook(i, "x2")))
    param = next(model.parameters(), None)
    try:
        with eval_mode(model), torch.no_grad():
            model(torch.zeros(tuple(input_size), dtype=param.dtype if param is not None else torch.float32,
                              device=param.device if param is not None else "cpu"))
    finally:
        for h in handles:
            h.remove()
    return [(records[k]["x1"], records[k]["x2"]) for k in order]


def _with_batch(shape: Shape, batch_size: int) -> Shape:
    return (batch_size, *shape[1:])


def _make_operands(pairs: Sequence[Tuple[Shape, Shape]], batch_size: int, channels_last: bool,
                   device: Union[str, torch.device], dtype: torch.dtype):
    """Random operands: cat inputs (N, C1, H, W), (N, C2, H, W) (also the operands of ``add(x1, x2)``); the
    output-shape add's inputs both (N, C1 + C2, H, W)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    gen = torch.Generator().manual_seed(0)

    def rand(shape: Shape) -> Tensor:
        return torch.randn(shape, generator=gen, dtype=dtype).to(device).contiguous(memory_format=fmt)

    cat_inputs, add_inputs = [], []
    for s1, s2 in pairs:
        a, b = _with_batch(s1, batch_size), _with_batch(s2, batch_size)
        out = (batch_size, s1[1] + s2[1], *s1[2:])
        cat_inputs.append((rand(a), rand(b)))
        add_inputs.append((rand(out), rand(out)))
    return cat_inputs, add_inputs


def check_concat_pairs(pairs: Sequence[Tuple[Shape, Shape]]) -> None:
    """One sentence unless ``pairs`` is a non-empty list of shape pairs that Table 1's cat and add both accept."""
    if not pairs:
        raise ValueError("pairs is empty: pass the shapes from ghostnet_concat_shapes().")
    for s1, s2 in pairs:
        if len(s1) != 4 or len(s2) != 4 or s1[0] != s2[0] or s1[2:] != s2[2:] or s1[1] != s2[1]:
            raise ValueError(f"cannot concatenate shapes {s1} and {s2} along channels: both must be (N, C, H, W) "
                             "with equal N, C, H and W (s = 2: as many ghost as intrinsic maps).")


def _check_timing_args(pairs, batch_size, min_run_time, rounds) -> None:
    check_concat_pairs(pairs)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if min_run_time <= 0 or rounds < 1:
        raise ValueError(f"min_run_time must be > 0 and rounds >= 1, got {min_run_time!r} and {rounds!r}.")


def _concat_add_timers(pairs, batch_size, channels_last, min_run_time, rounds, threads, device, dtype):
    """The three warmed-up ``torch.utils.benchmark`` timers (cat, add of its operands, add of output-shaped
    tensors) over all ``pairs``, after checking the arguments."""
    _check_timing_args(pairs, batch_size, min_run_time, rounds)
    cat_inputs, add_inputs = _make_operands(pairs, batch_size, channels_last, device, dtype)
    stmts = {
        "cat": "for a, b in cat_inputs: torch.cat((a, b), dim=1)",
        "add_operands": "for a, b in cat_inputs: torch.add(a, b)",
        "add_output": "for a, b in add_inputs: torch.add(a, b)",
    }
    env = {"torch": torch, "cat_inputs": cat_inputs, "add_inputs": add_inputs}
    num_threads = threads or torch.get_num_threads()
    timers = {name: benchmark.Timer(stmt=stmt, globals=env, num_threads=num_threads) for name, stmt in stmts.items()}
    with torch.inference_mode():
        for timer in timers.values():  # warm-up: allocator caches
            timer.timeit(2)
    return timers


def time_concat_vs_add(pairs: Sequence[Tuple[Shape, Shape]], batch_size: int = 1, channels_last: bool = False,
                       min_run_time: float = 0.2, rounds: int = 5, threads: Optional[int] = None,
                       device: Union[str, torch.device] = "cpu",
                       dtype: torch.dtype = torch.float32) -> Dict[str, float]:
    r"""Accumulated time in ms of all ``pairs``' concatenations vs. element-wise adds (Table 1, Sec. 3.1), in
    both readings of the paper's add.

    For each pair ``(shape_x1, shape_x2)`` (e.g. from :func:`ghostnet_concat_shapes`; $C_1 = C_2$) the batch
    dimension is replaced by ``batch_size``. Three statements are timed, each over all pairs:

    * ``"cat"``: ``torch.cat([x1, x2], dim=1)``;
    * ``"add_operands"``: ``torch.add(x1, x2)`` on the same operands (the literal reading, and Sec. 3.3's
      "add" of the two halves);
    * ``"add_output"``: ``torch.add(u, v)`` with ``u``, ``v`` of the concatenated output's shape
      $(N, C_1 + C_2, H, W)$, so both operators produce a tensor of the same shape.

    :data:`BYTES_MODEL` gives the bandwidth-bound prediction of each. ``channels_last=True`` stores all operands
    in NHWC. The statements are timed with ``torch.utils.benchmark`` in ``rounds`` interleaved rounds of
    ``min_run_time / rounds`` seconds each, so machine drift hits all alike; each result is the median over all
    runs. ``threads`` (default: torch's current setting) is the number of CPU threads during timing; the paper
    timed single-threaded (MNN, Sec. 4). ``device``/``dtype`` place the operands.
    """
    timers = _concat_add_timers(pairs, batch_size, channels_last, min_run_time, rounds, threads, device, dtype)
    with torch.inference_mode():
        times = interleaved_rounds(lambda name: timers[name].blocked_autorange(min_run_time=min_run_time / rounds)
                                   .times, list(timers), rounds)
    return {name: ms * 1e3 for name, ms in medians(times).items()}


def concat_vs_add_rounds(pairs: Sequence[Tuple[Shape, Shape]], batch_size: int = 1, channels_last: bool = False,
                         min_run_time: float = 0.2, rounds: int = 10, threads: Optional[int] = None,
                         device: Union[str, torch.device] = "cpu",
                         dtype: torch.dtype = torch.float32) -> Dict[str, List[float]]:
    r"""The measurement of :func:`time_concat_vs_add`, one number per round: ``{name: [ms of round 1, ...]}``.

    Same statements (``"cat"``, ``"add_operands"``, ``"add_output"``), operands, warm-up and interleaving as
    :func:`time_concat_vs_add`; each round's value is the median of that round's ``torch.utils.benchmark`` blocks
    (accumulated ms of all ``pairs``). These per-round samples are what :func:`repghost_mini.measure.compare` needs
    to say whether cat costs more than an add, or that this run cannot rank them; a ratio of two names *in the
    same round* (``cat[i] / add[i]``) cancels the load of that round.
    """
    timers = _concat_add_timers(pairs, batch_size, channels_last, min_run_time, rounds, threads, device, dtype)
    with torch.inference_mode():
        samples = interleaved_rounds(lambda name: timers[name].blocked_autorange(min_run_time=min_run_time / rounds)
                                     .median * 1e3, list(timers), rounds)
    return samples


def _is_one_block(t: Tensor) -> bool:
    """Whether ``t`` occupies one gap-free block of memory (contiguous in NCHW or in NHWC order)."""
    return t.is_contiguous() or t.is_contiguous(memory_format=torch.channels_last)


def channel_slice_is_contiguous(batch_size: int, channels: Tuple[int, int] = (8, 8),
                                spatial: Tuple[int, int] = (4, 4), channels_last: bool = False) -> bool:
    r"""Whether both channel slices ``buf[:, :C1]`` and ``buf[:, C1:]`` of an output buffer
    ``buf`` of shape $(N, C_1 + C_2, H, W)$ are single blocks of memory (footnote 2 of Sec. 3.1).

    Only then can the two producing operators write their results straight into one pre-allocated tensor as
    if into tensors of their own, so that the concatenation disappears. In NCHW a slice is $N$ blocks of
    $C_i H W$ numbers, one per image: a single block only when $N = 1$. In NHWC (``channels_last``) it is
    $NHW$ blocks of $C_i$ numbers: never one block (unless $N = H = W = 1$). The buffer lives on the ``meta``
    device: nothing is allocated, only the strides are asked.
    """
    c1, c2 = channels
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    buf = torch.empty((batch_size, c1 + c2, *spatial), device="meta", memory_format=fmt)
    return _is_one_block(buf[:, :c1]) and _is_one_block(buf[:, c1:])


def _produce(u: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """The stand-in producing operator: one element-wise op with an ``out=`` argument, $2u$ (convolutions have no
    ``out=`` in PyTorch, so an element-wise op plays the primary conv and the cheap operation)."""
    return torch.mul(u, 2.0) if out is None else torch.mul(u, 2.0, out=out)


def reuse_by_concat(u1: Tensor, u2: Tensor) -> Tensor:
    """Feature reuse as in the Ghost module: produce both maps, then copy them into a new tensor
    ``torch.cat(dim=1)``: $(N, C_1, H, W), (N, C_2, H, W) \to (N, C_1 + C_2, H, W)$."""
    return torch.cat((_produce(u1), _produce(u2)), dim=1)


def reuse_by_preallocation(u1: Tensor, u2: Tensor, out: Optional[Tensor] = None) -> Tensor:
    r"""Footnote 2: both producers write straight into the channel slices of one $(N, C_1 + C_2, H, W)$ tensor
    ``out`` (pre-allocated by the caller, in the operands' memory format; allocated here if ``None``); no
    concatenation runs. The result equals :func:`reuse_by_concat` exactly. When the slices are not single blocks
    (:func:`channel_slice_is_contiguous` is False), PyTorch's element-wise kernels still write them, with strides;
    an engine whose kernels expect a dense output needs the "operator-level optimization" the footnote names.
    """
    n, c1, *hw = u1.shape
    if out is None:
        nhwc = u1.dim() == 4 and not u1.is_contiguous() and u1.is_contiguous(memory_format=torch.channels_last)
        fmt = torch.channels_last if nhwc else torch.contiguous_format
        out = torch.empty((n, c1 + u2.shape[1], *hw), dtype=u1.dtype, device=u1.device, memory_format=fmt)
    if out.shape != (n, c1 + u2.shape[1], *hw):
        raise ValueError(f"out must have shape {(n, c1 + u2.shape[1], *hw)} (the concatenation's), "
                         f"got {tuple(out.shape)}.")
    _produce(u1, out=out[:, :c1])
    _produce(u2, out=out[:, c1:])
    return out


def reuse_by_add(u1: Tensor, u2: Tensor) -> Tensor:
    """Feature reuse by an add, as in the RepGhost module's training form: produce both maps, then add them
    ($C_1 = C_2$; the output has $C_1$ channels, the operands' shape)."""
    return torch.add(_produce(u1), _produce(u2))


def preallocation_rounds(pairs: Sequence[Tuple[Shape, Shape]], batch_sizes: Sequence[int] = (1, 2, 8, 32),
                         channels_last: bool = False, min_run_time: float = 0.2, rounds: int = 10,
                         threads: Optional[int] = None) -> Dict[int, Dict[str, List[float]]]:
    r"""Footnote 2 measured: accumulated ms over all ``pairs`` of :func:`reuse_by_concat`,
    :func:`reuse_by_preallocation` and :func:`reuse_by_add`, one sample per round, for each batch size:
    ``{N: {"concat": [...], "preallocated": [...], "add": [...]}}``.

    ``pairs`` are the operand shapes ``(shape_x1, shape_x2)`` (e.g. :func:`ghostnet_concat_shapes`; the batch
    dimension is replaced by each ``N``; $C_1 = C_2$ so that the add is defined). The pre-allocated output buffers
    are made once before timing (a memory plan, as an inference engine would), in the operands' memory format
    (``channels_last`` for NHWC); cat and the producers allocate their outputs on every call, as eager PyTorch
    does. Timed with ``torch.utils.benchmark`` in ``rounds`` interleaved rounds (:func:`interleaved_rounds`), each
    sample the median of one round's blocks: what :func:`repghost_mini.measure.compare` ranks.
    """
    samples: Dict[int, Dict[str, List[float]]] = {}
    for batch_size in batch_sizes:
        _check_timing_args(pairs, batch_size, min_run_time, rounds)
        operands, _ = _make_operands(pairs, batch_size, channels_last, "cpu", torch.float32)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        buffers = [torch.empty((batch_size, a.shape[1] + b.shape[1], *a.shape[2:]), memory_format=fmt)
                   for a, b in operands]
        env = {"reuse_by_concat": reuse_by_concat, "reuse_by_preallocation": reuse_by_preallocation,
               "reuse_by_add": reuse_by_add, "operands": operands, "buffers": buffers}
        stmts = {"concat": "for a, b in operands: reuse_by_concat(a, b)",
                 "preallocated": "for (a, b), buf in zip(operands, buffers): reuse_by_preallocation(a, b, buf)",
                 "add": "for a, b in operands: reuse_by_add(a, b)"}
        timers = {name: benchmark.Timer(stmt=stmt, globals=env, num_threads=threads or torch.get_num_threads())
                  for name, stmt in stmts.items()}
        with torch.inference_mode():
            for timer in timers.values():  # warm-up: one call each (allocator, caches)
                timer.timeit(1)
            samples[batch_size] = interleaved_rounds(
                lambda name, timers=timers: timers[name].blocked_autorange(
                    min_run_time=min_run_time / rounds).median * 1e3,
                list(timers), rounds)
    return samples


class ReuseByAddModule(GhostAddModule):
    r"""A Ghost module whose concatenation is replaced by an add (Sec. 3.1, "replace all its concatenation
    operators with add operators"), for profiling only.

    It has the channel layout of module b (:class:`GhostAddModule`): the primary conv makes all $C_{out}$ channels
    and the depthwise conv keeps them, so the add's operands have exactly the concatenated output's shape
    $(N, C_{out}, H, W)$. The add runs inside a ``torch.profiler`` range named :data:`REUSE_ADD_LABEL` so that
    :func:`operator_time_shares` can tell it from the bottlenecks' shortcut adds. The output equals module b's.
    """

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self.in_channels, self.owner)
        x1 = self.primary_conv(x)
        x2 = self.cheap_operation(x1)
        with record_function(REUSE_ADD_LABEL):
            return x1 + x2


def replace_concat_with_add(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every :class:`GhostModule` swapped for a :class:`ReuseByAddModule` of the same
    ``in_channels``, ``out_channels``, ``dw_size`` and ReLU setting (freshly initialised weights).

    The rest of the network is unchanged, so the two models differ only in how features are reused (concat vs add)
    and in the channel counts of the Ghost modules' two convs (module b makes $C_{out}$ channels in its 1x1 conv
    instead of $C_{out}/s$): compare their *operator shares*, not their total time. Used for Fig. 2's "Diff".
    """
    if not any(isinstance(m, GhostModule) for m in model.modules()):
        raise ValueError(f"{type(model).__name__} contains no GhostModule to replace; pass a GhostNet.")
    model = copy.deepcopy(model)

    def swap(parent: nn.Module) -> None:
        for name, child in list(parent.named_children()):
            if isinstance(child, GhostModule):
                dw = child.cheap_operation[0]
                relu = isinstance(child.primary_conv[2], nn.ReLU)
                new = ReuseByAddModule(child.in_channels, child.out_channels, dw_size=dw.kernel_size[0], relu=relu)
                param = next(child.parameters())
                setattr(parent, name, new.to(device=param.device, dtype=param.dtype).train(child.training))
            else:
                swap(child)

    swap(model)
    return model


def _operator_name(event) -> str:
    """Readable operator name of a top-level profiler event: ``aten::relu_`` -> ``relu``; 2-D convolutions are
    split into ``conv`` (dense) and ``dwconv`` (depthwise: weight of shape (C, 1, k, k) with C > 1)."""
    name = event.name
    if name == REUSE_ADD_LABEL:
        return name
    name = name.split("::")[-1].rstrip("_")
    if name in ("conv2d", "convolution", "_convolution"):
        shapes = getattr(event, "input_shapes", None) or []
        weight = shapes[1] if len(shapes) > 1 else []
        if len(weight) == 4 and weight[1] == 1 and weight[0] > 1:
            return "dwconv"
        return "conv"
    return name


#: Lines the profiler's native library (kineto) prints to the process's stderr on every session, whatever the
#: Python-side settings: start/stop markers and, on a machine without a GPU, a failed GPU query.
_PROFILER_NOISE = ("profiler_start", "profiler_stop", "Completed Stage", "gpuGetDeviceCount failed")


@contextlib.contextmanager
def _quiet_profiler_stderr():
    """Drop the profiler library's own log lines (:data:`_PROFILER_NOISE`), which it writes to file descriptor 2
    from C++, so Python cannot filter them; every other line written meanwhile is passed on to ``sys.stderr``."""
    fd = 2  # the C-level stderr the native library writes to (sys.stderr may be a Jupyter or pytest stream)
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            kept = [line for line in sink.read().decode(errors="replace").splitlines()
                    if line.strip() and not any(noise in line for noise in _PROFILER_NOISE)]
            if kept:
                print("\n".join(kept), file=sys.stderr)


def operator_times(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224), repeats: int = 5,
                   channels_last: bool = False, threads: Optional[int] = None) -> Dict[str, float]:
    r"""Time in ms of each operator in one whole eval-mode forward pass (Fig. 2), from ``torch.profiler``.

    Runs one warm-up forward, then profiles ``repeats`` forward passes of a random input of ``input_size``
    (``channels_last`` for NHWC), one profiler session each, and attributes each top-level operator's total time
    (children included, e.g. ``conv2d`` contains the oneDNN kernel call) to its readable name: ``conv`` (dense),
    ``dwconv`` (depthwise), ``batch_norm``, ``relu``, ``cat``, ``add``, ``slice``, :data:`REUSE_ADD_LABEL`, ...
    Each operator's time is the median over the repeats (robust to a busy neighbour on a shared machine).
    Returns ``{name: ms}``, largest first. ``threads`` sets ``torch.set_num_threads`` for the measurement
    (restored afterwards). The profiler's native start/stop log lines are dropped at the source.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats!r}.")
    if len(input_size) != 4:
        raise ValueError(f"input_size must be (N, C, H, W), got {tuple(input_size)!r}.")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.randn(tuple(input_size), generator=torch.Generator().manual_seed(0)).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        model = copy.deepcopy(model).to(memory_format=torch.channels_last)
    old_threads = torch.get_num_threads()
    runs: List[Dict[str, float]] = []
    try:
        if threads:
            torch.set_num_threads(threads)
        with eval_mode(model), torch.inference_mode(), _quiet_profiler_stderr():
            model(x)  # warm-up
            for _ in range(repeats):
                with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
                    model(x)
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                totals: Dict[str, float] = {}
                for event in prof.events():
                    if event.cpu_parent is None and event.device_type.name == "CPU":
                        name = _operator_name(event)
                        totals[name] = totals.get(name, 0.0) + event.cpu_time_total / 1e3
                runs.append(totals)
    finally:
        torch.set_num_threads(old_threads)
    names = {name for totals in runs for name in totals}
    median_times = {name: float(torch.tensor([t.get(name, 0.0) for t in runs]).median()) for name in names}
    if sum(median_times.values()) <= 0 or not math.isfinite(sum(median_times.values())):
        raise RuntimeError("the profiler recorded no CPU time; check that the model runs on this machine.")
    return dict(sorted(((n, t) for n, t in median_times.items() if t > 0), key=lambda kv: -kv[1]))


def operator_time_shares(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224), repeats: int = 5,
                         channels_last: bool = False, threads: Optional[int] = None,
                         min_share: float = 0.0) -> Dict[str, float]:
    r"""Share of the whole forward pass's CPU time spent in each operator (Fig. 2): :func:`operator_times`
    divided by their sum. Returns ``{name: share}`` with shares summing to 1, largest first; names below
    ``min_share`` are summed into ``"other"``.
    """
    times = operator_times(model, input_size, repeats, channels_last, threads)
    total = sum(times.values())
    shares = {name: t / total for name, t in times.items()}
    kept = {name: s for name, s in shares.items() if s >= min_share}
    other = sum(s for name, s in shares.items() if s < min_share)
    if other > 0:
        kept["other"] = kept.get("other", 0.0) + other
    return dict(sorted(kept.items(), key=lambda kv: -kv[1]))
