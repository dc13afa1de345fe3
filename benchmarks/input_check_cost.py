"""Eager-latency cost of the per-module input checks (issue 13): one model, checks on vs off, paired rounds.

Every module of Fig. 3 calls :func:`repghost_mini.core.modules.check_input` (33 calls per RepGhostNet forward).
This script times the same model with all checks, then with only the network's entry check (the per-module
function swapped for a no-op), back to back in each round, so machine load hits both alike, and prints the
median of the per-round ratios. Batch 1, 224 px, one thread. Run: ``python benchmarks/input_check_cost.py``.

Measured on the shared 2-core machine under load average ~24 (so absolute times are ~25x an idle core's):
training form 334 vs 328 ms, paired ratio 0.98 (0.78-1.28); fused 253 vs 246 ms, ratio 1.006 (0.87-1.08);
one check call 4.1 us, i.e. 33 x 4.1 us = 0.14 ms per forward: below the noise, so the checks stay per module.
"""
import statistics
import time

import torch

import repghost_mini as rm
from repghost_mini.core import modules


def _ms_per_call(model, x, n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        model(x)
    return (time.perf_counter() - t) / n * 1e3


def main(rounds: int = 15, calls: int = 10) -> None:
    torch.set_num_threads(1)
    real = modules.check_input
    x = torch.randn(1, 3, 224, 224)
    training = rm.repghostnet(1.0).eval()
    for name, model in (("training", training), ("fused", rm.reparameterize(training))):
        on, off = [], []
        with torch.inference_mode():
            for _ in range(5):
                model(x)
            for _ in range(rounds):
                modules.check_input = real
                on.append(_ms_per_call(model, x, calls))
                modules.check_input = lambda *args: None  # the entry check (networks.check_images) still runs
                off.append(_ms_per_call(model, x, calls))
        modules.check_input = real
        ratios = [a / b for a, b in zip(on, off, strict=True)]
        print(f"{name}: all checks {statistics.median(on):.2f} ms, entry check only {statistics.median(off):.2f} ms, "
              f"paired ratio {statistics.median(ratios):.3f} (min {min(ratios):.2f}, max {max(ratios):.2f})")
    xs = torch.randn(1, 16, 56, 56)
    t = time.perf_counter()
    for _ in range(100_000):
        real(xs, 16, "X")
    calls_per_forward = sum("check" in str(n.target) for n in torch.fx.symbolic_trace(training).graph.nodes)
    print(f"one check call {(time.perf_counter() - t) * 10:.2f} us, {calls_per_forward} calls per forward")


if __name__ == "__main__":
    main()
