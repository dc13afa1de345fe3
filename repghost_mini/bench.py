"""Latency measurement with ``torch.utils.benchmark`` (medians over repeated blocked runs, warm-up included).

CPU timings on a shared 2-core machine are noisy: compare models by ratios measured side by side in one
run (see :func:`compare_latency`, which interleaves the models), never against numbers from another run.
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional

import torch
import torch.utils.benchmark as benchmark
from torch import nn

__all__ = ["measure_latency", "compare_latency"]


@torch.inference_mode()
def measure_latency(model: nn.Module, input_size=(1, 3, 224, 224), threads: Optional[int] = None,
                    min_run_time: float = 0.5, channels_last: bool = False) -> float:
    """Median latency in milliseconds of ``model(x)`` for a random ``x`` of ``input_size``, in eval mode.

    ``threads`` defaults to torch's current setting; ``min_run_time`` (s) bounds how long to sample.
    The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.randn(input_size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    for _ in range(3):  # warm-up: allocator, oneDNN primitive caches
        model(x)
    timer = benchmark.Timer(stmt="model(x)", globals={"model": model, "x": x},
                            num_threads=threads or torch.get_num_threads())
    try:
        return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3
    finally:
        model.train(was_training)


def compare_latency(models: Mapping[str, nn.Module], input_size=(1, 3, 224, 224), threads: Optional[int] = None,
                    rounds: int = 5, min_run_time: float = 0.2) -> Dict[str, float]:
    """Median latency (ms) per model, measured in ``rounds`` interleaved rounds so drift hits all alike."""
    samples: Dict[str, list] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            samples[name].append(measure_latency(model, input_size, threads, min_run_time))
    return {name: float(torch.tensor(v).median()) for name, v in samples.items()}
