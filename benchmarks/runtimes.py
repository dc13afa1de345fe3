"""Every runtime side by side on the paper's two 1.0x models: PyTorch eager, onnxruntime (fp32 and INT8), MNN (the
paper's runtime, fp32) and ExecuTorch + XNNPACK (fp32 and INT8), fused RepGhostNet-1.0x and GhostNet-1.0x, 224 px,
1 thread (the paper's setting), batch 1 and 32.

For each batch size every (runtime, model) pair is timed in the same interleaved rounds
(``repghost_mini.deploy.benchmark_models``), so a ratio between any two columns is measured side by side; each
sentence that ranks two of them comes from ``repghost_mini.measure.compare`` over the rounds (it says "cannot rank"
when the rounds overlap). Weights are random (latency does not depend on them); INT8 is calibrated on 64 real
CIFAR-10 training images resized to 224 px. Also reported per file: its size, and its largest output difference from
PyTorch on 32 other real images (``add_output_differences``; fp32 runtimes: float rounding; INT8: the quantization
error). Writes ``benchmarks/results/runtimes.json`` and ``runtimes.md`` (``--quick``: ``runtimes_quick.*``, so a
quick check never replaces the recorded full run) and prints the RESULT lines.
Needs the mobile extra: ``pip install -e '.[mobile]'``.

    python benchmarks/runtimes.py            # 7 rounds of >= 0.3 s per measurement (~15 min on 2 cores)
    python benchmarks/runtimes.py --quick    # 3 rounds of >= 0.1 s (~6 min; lowering INT8 takes most of it)
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from repghost_mini.deploy import executorch as ret
from repghost_mini.deploy import mnn as rm
from repghost_mini.deploy.latency import add_output_differences, benchmark_models
from repghost_mini.deploy.quantize import calibration_images
from repghost_mini.measure import compare
from repghost_mini.measure.tables import markdown_table
from repghost_mini.paper import table3
from repghost_mini.teaching.runs import cpu_description
from repghost_mini.training.data import load_dataset

MODELS = {"repghostnet_100_fused": "RepGhostNet", "ghostnet_100": "GhostNet"}
RUNTIMES = ("torch", "onnxruntime", "onnxruntime-int8", "mnn", "executorch", "executorch-int8")
INT8_PAIRS = (("executorch-int8", "executorch"), ("onnxruntime-int8", "onnxruntime"))
SIZE = 224


def _samples_by_batch(rows):
    """``{batch: {"runtime model": samples}}`` from benchmark_models rows."""
    out = {}
    for r in rows:
        out.setdefault(r["batch"], {})[f"{r['runtime']} {r['model']}"] = r["samples_ms"]
    return out


def _paired(samples, a, b):
    """Median over rounds of the same-round ratio a / b."""
    return statistics.median(x / y for x, y in zip(samples[a], samples[b], strict=True))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of >= 0.1 s per measurement")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 7, --quick 3)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 7)
    if rounds < 2:
        parser.error(f"--rounds must be at least 2 (got {rounds}): a ranking needs two rounds to see the noise")
    min_run_time = 0.1 if args.quick else 0.3
    try:
        rm._require_mnn(), ret._require_executorch()
    except ImportError as err:
        print(f"benchmarks/runtimes.py: {err}", file=sys.stderr)
        return 2
    load_before = os.getloadavg()[0]
    images = calibration_images(load_dataset("cifar10-subset"), 32, seed=1, image_size=SIZE)  # output check only
    with tempfile.TemporaryDirectory() as folder:
        rows = benchmark_models(list(MODELS), batch_sizes=args.batches, threads=(1,), runtimes=RUNTIMES,
                                rounds=rounds, image_size=SIZE, min_run_time=min_run_time, workdir=folder)
        add_output_differences(rows, images)
    for row in rows:
        row.pop("file")
    samples_by_batch = _samples_by_batch(rows)
    load_after = os.getloadavg()[0]
    results, lines = _headlines(samples_by_batch, args.batches)
    report = _report(rows, lines, rounds, min_run_time, load_before, load_after)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "runtimes_quick" if args.quick else "runtimes"
    (out / f"{stem}.json").write_text(json.dumps(dict(machine=cpu_description(), rows=rows, results=results,
                                                      rounds=rounds, min_run_time_s=min_run_time,
                                                      load_before=load_before, load_after=load_after), indent=1))
    (out / f"{stem}.md").write_text(report)
    print(report)
    print("\n".join(f"RESULT runtimes {k}: {v:.2f}" for k, v in results.items()))
    return 0


def _headlines(samples_by_batch, batches):
    """The RESULT numbers (same-round ratios) and one sentence per ranking, each from ``compare``."""
    results, lines = {}, []
    ours, theirs = MODELS
    for b in batches:
        s = samples_by_batch[b]
        for int8, fp32 in INT8_PAIRS:
            a, c = f"{int8} {ours}", f"{fp32} {ours}"
            results[f"{int8.split('-')[0]} int8/fp32 b{b}"] = _paired(s, a, c)
            lines.append(f"- batch {b}: " + compare(s[a], s[c]).sentence(f"{int8} (fused RepGhostNet-1.0x)", fp32,
                                                                         "faster", "slower"))
        for runtime in RUNTIMES:
            a, c = f"{runtime} {ours}", f"{runtime} {theirs}"
            ratio = _paired(s, a, c)
            if runtime == "mnn":
                results[f"mnn fp32 RepGhostNet/GhostNet b{b}"] = ratio
            lines.append(f"- batch {b}, {runtime}: RepGhostNet/GhostNet {ratio:.2f}; " + compare(s[a], s[c]).sentence(
                "fused RepGhostNet-1.0x", "GhostNet-1.0x", "faster", "slower"))
    paper = table3("repghostnet", 1.0)["latency_ms"] / table3("ghostnet", 1.0)["latency_ms"]
    lines.append(f"- the paper (Table 3, MNN on an ARM phone, 1 thread, batch 1): RepGhostNet/GhostNet 1.0x "
                 f"{paper:.2f}; this is MNN's x86 build on the CPU named above, with AVX2/AVX-512 kernels instead of "
                 "NEON")
    return results, lines


def _report(rows, lines, rounds, min_run_time, load_before, load_after) -> str:
    columns = {"runtime": "runtime", "model": "model", "batch": "batch", "median_ms": "median ms", "min_ms": "min ms",
               "file_mb": "file MB", "max_abs_diff_vs_torch": "max |diff| vs PyTorch"}
    table_rows = [{k: ("-" if r[k] is None else f"{r[k]:.2g}" if k == "max_abs_diff_vs_torch"
                       else f"{r[k]:.2f}" if isinstance(r[k], float) else r[k]) for k in columns} for r in rows]
    return "\n".join([
        "# Runtimes side by side (generated by benchmarks/runtimes.py)", "",
        f"- {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}; {cpu_description()}; "
        f"torch {torch.__version__}; 1 thread everywhere; 1-minute load before / after {load_before:.1f} / "
        f"{load_after:.1f}",
        f"- {rounds} interleaved rounds per batch size (all runtimes and models in each round), each measurement a "
        f"median over >= {min_run_time} s; 224 px; random weights; INT8 calibrated on 64 real CIFAR-10 images", "",
        "## Rankings (95% intervals over the rounds)", "", *lines, "",
        "## All measurements", "", markdown_table(table_rows, columns), ""])


if __name__ == "__main__":
    raise SystemExit(main())
