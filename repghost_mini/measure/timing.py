"""Timing: the two primitives every latency in the package is measured with -- :func:`median_time` (one callable,
``torch.utils.benchmark``) and :func:`interleaved_rounds` (several names, round after round).

On a shared machine the load drifts while you measure. Measuring A, then B, then C in separate blocks lets the
drift land on one of them; :func:`interleaved_rounds` measures A B C, A B C, ... so every round sees the same
load, and :func:`medians` summarizes each name by the median over rounds (robust to a round that hit a
neighbour's burst). Ratios of two names in the *same round* cancel the drift further (see
:func:`repghost_mini.deploy.paired_ratios`).
"""
from __future__ import annotations

import logging
import statistics
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Union

import torch

# Importing torch.utils.benchmark logs a "No CUDA runtime is found" warning (with a timestamp) on CPU machines
# that have a CUDA toolkit installed; it is noise for latency measurement, so it is muted for this import only.
_cpp_log = logging.getLogger("torch.utils.cpp_extension")
_cpp_level = _cpp_log.level
_cpp_log.setLevel(logging.ERROR)
try:
    import torch.utils.benchmark as benchmark
finally:
    _cpp_log.setLevel(_cpp_level)

__all__ = ["interleaved_rounds", "medians", "median_time"]


def interleaved_rounds(measure: Callable[[str], Union[float, Iterable[float]]], names: Sequence[str],
                       rounds: int) -> Dict[str, List[float]]:
    """``measure(name)`` for every name, round after round (A B C, A B C, ...): ``{name: samples}``.

    ``measure`` returns one number or several (e.g. all runs of a ``torch.utils.benchmark`` block); every
    number becomes a sample of that name.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds!r}.")
    samples: Dict[str, List[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            value = measure(name)
            samples[name].extend(value if isinstance(value, Iterable) else [value])
    return samples


def medians(samples: Dict[str, List[float]]) -> Dict[str, float]:
    """The median of every name's samples."""
    return {name: float(statistics.median(values)) for name, values in samples.items()}


def median_time(fn: Callable[[], object], min_run_time: float = 0.2, warmup: int = 3,
                threads: Optional[int] = None) -> float:
    """Median seconds of one call of ``fn()``: ``warmup`` calls first (allocator, oneDNN / onnxruntime caches), then
    ``torch.utils.benchmark.Timer.blocked_autorange`` for about ``min_run_time`` seconds. ``threads``: torch's
    intra-op threads during the measurement (default: the current setting; other runtimes set their own)."""
    for _ in range(warmup):
        fn()
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads or torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median
