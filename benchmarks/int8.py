"""INT8 post-training quantization of trained RepGhostNet and GhostNet in onnxruntime (issue 12).

Accuracy: the notebook-05 model (RepGhostNet-0.5x, small-input stem) and GhostNet-0.5x, trained with
:func:`repghost_mini.train` and ``SHORT_RUN_RECIPE`` for the same number of epochs on the 5,169 training images
of the exact CIFAR-10 subset (cached under runs/int8/), plus the longer-trained reference model when
``repghost_mini.training.load_reference_model`` provides one. Each is exported to ONNX -- RepGhostNet (a) fused and
(b) in training form, GhostNet (c) as it is -- and quantized statically (QDQ, INT8 weights per channel and per
tensor, activations calibrated on 512 real training images, min/max); top-1 on the 1,017 test images of the
subset is measured for fp32 and INT8 with the same evaluation code as a checkpoint. One remedy for the
per-tensor loss is measured too (histogram calibration).

Latency: fused RepGhostNet-1.0x and GhostNet-1.0x at 224 px (random seeded weights: latency does not depend on
the values), fp32 vs INT8 in onnxruntime, at batch 1 with 1 and 2 threads and batch 32, the four sessions timed
in interleaved rounds; ratios are medians of same-round ratios. The load average is recorded before and after.

    python benchmarks/int8.py                 # writes benchmarks/results/int8.md and int8.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Dict, Optional

import torch

import repghost_mini as rm
from repghost_mini.deploy import quantize as q
from repghost_mini.measure.tables import markdown_table
from repghost_mini.measure.timing import interleaved_rounds

RESULTS = Path(__file__).resolve().parent / "results"
#: The CIFAR-subset models trained here: the notebook-05 RepGhostNet-0.5x and GhostNet of the same width.
TRAINED = ("repghostnet_050", "ghostnet_050")
#: The latency models (ImageNet stem, 224 px): name in repghost_mini.training.build_named_model.
LATENCY_MODELS = {"RepGhostNet-1.0x fused": "repghostnet_100_fused", "GhostNet-1.0x": "ghostnet_100"}


def cpu_words() -> str:
    """The CPU's model name and its INT8 instructions (repghost_mini's cpu_int8_kind)."""
    try:
        name = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine()
    kind = q.cpu_int8_kind()
    return f"{name}, INT8 dot products: {'VNNI' if kind == 'VNNI' else 'AVX2 without VNNI' if kind == 'AVX2' else kind}"


def time_session(session, x, min_run_time: float):
    """(median wall ms, median CPU ms) of ``session.run`` on ``x`` over about ``min_run_time`` s after a warm-up.

    The CPU time (``time.process_time``) of a 1-thread session is the work of one inference: on a loaded machine
    it does not grow with the time spent waiting for a core, unlike the wall time."""
    feed = {session.get_inputs()[0].name: x}
    for _ in range(3):
        session.run(None, feed)
    wall, cpu = [], []
    start = time.perf_counter()
    while len(wall) < 5 or time.perf_counter() - start < min_run_time:
        t0, c0 = time.perf_counter(), time.process_time()
        session.run(None, feed)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def load() -> str:
    return "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def load_words(latency: Dict) -> str:
    """What the recorded 1-minute load averages say about the absolute milliseconds."""
    worst = max(float(latency[k].split()[0]) for k in ("load_start", "load_end"))
    if worst <= latency["cores"]:  # at most the benchmark's own threads
        return "no more runnable work than cores (the benchmark's own threads), so the milliseconds are usable"
    return ("**the machine was shared and loaded**, so absolute milliseconds are inflated and noisy")


def train_models(args) -> Dict[str, Dict]:
    """``{name: {"model": eval-mode training form, "how": ..., "epochs_done": int}}`` via
    rm.train_or_load with notebook 05's settings (SHORT_RUN_RECIPE, no dropout, no random erasing, no EMA);
    with ``--partial``, a run still in progress is read from its last epoch's checkpoint."""
    out = {}
    for name in TRAINED:
        if args.only and name not in args.only:
            continue
        run = Path(args.runs) / f"{name}-e{args.epochs}-seed{args.seed}"
        cfg = rm.TrainConfig(model=name, dataset="cifar10-subset", epochs=args.epochs, seed=args.seed,
                             threads=args.threads, eval_every=0, progress=False, out_dir=str(run),
                             dropout=0.0, random_erasing=0.0, ema_decay=None, **rm.training.SHORT_RUN_RECIPE)
        if args.partial and not (run / "final.json").is_file() and (run / "metrics.json").is_file():
            done = len(json.loads((run / "metrics.json").read_text()))
            out[name] = {"model": rm.training.load_trained(run, use_ema=False), "epochs_done": done,
                         "how": f"stopped after {done} of {args.epochs} epochs; raw weights, since an EMA of a run "
                                "stopped mid-schedule still averages in its early weights"}
        else:
            model, history, how = rm.train_or_load(cfg)
            out[name] = {"model": model, "how": how, "epochs_done": len(history)}
        print(f"{name}: {out[name]['how']}, load {load()}", flush=True)
    return out


def accuracy_rows(name: str, model: torch.nn.Module, bundle, test, calibration, work: Path, remedy: bool,
                  forms: Optional[Dict[str, torch.nn.Module]] = None):
    """fp32 and INT8 (per-channel, per-tensor) top-1 of one trained model in each exportable form (``forms``,
    by default: fused and training form for RepGhostNet, the model as is otherwise)."""
    if forms is None:
        forms = {"fused": rm.reparameterize(model), "training form": model} if name.startswith("repghost") \
            else {"as is": model}
    rows = []
    for form, net in forms.items():
        tag = f"{name}-{form.replace(' ', '_')}"
        fp32 = rm.export_onnx(net.eval(), work / f"{tag}.onnx", (1, 3, bundle.image_size, bundle.image_size))
        ref = q.evaluate_onnx(fp32, test, bundle.image_size)
        default = q.default_weight_type()
        settings = [("per-channel", True, "minmax", default), ("per-tensor", False, "minmax", default)]
        if remedy and form == "fused":
            settings += [("per-tensor", False, "percentile", default), ("per-channel", True, "percentile", default)]
            settings += [(f"per-channel {kind}", True, "minmax", kind) for kind in q.WEIGHT_TYPES if kind != default]
        for scheme, per_channel, method, kind in settings:
            path = q.quantize_onnx(fp32, work / f"{tag}-{scheme.replace(' ', '_')}-{method}.onnx", calibration,
                                   per_channel=per_channel, method=method, weights=kind)
            res = q.evaluate_onnx(path, test, bundle.image_size)
            rows.append({"model": name, "form": form, "weights": scheme, "weight_type": kind, "calibration": method,
                         "fp32_top1": ref["top1"], "int8_top1": res["top1"], "drop": ref["top1"] - res["top1"],
                         "agreement": (res["predictions"] == ref["predictions"]).float().mean().item() * 100,
                         "fp32_mb": rm.deploy.onnx_file_size_mb(fp32), "int8_mb": rm.deploy.onnx_file_size_mb(path),
                         **margins(fp32, path, test), **q.quantization_error(fp32, path, stack_images(test))})
            print(" ", rows[-1], flush=True)
    return rows


def stack_images(test) -> torch.Tensor:
    return torch.cat([images for images, _ in test])


def margins(fp32: Path, int8: Path, test) -> Dict[str, float]:
    """Why predictions flip: the INT8 logit error per test image (largest |z_int8 - z_fp32| over the classes) against
    the fp32 margin (top-1 logit - top-2 logit). A prediction can flip only where the margin is below twice the
    error, so a model with many near-ties loses agreement to the same quantization noise."""
    x = stack_images(test)
    z32, z8 = q.OnnxModel(fp32)(x), q.OnnxModel(int8)(x)
    top2 = z32.topk(2, dim=1).values
    margin, error = top2[:, 0] - top2[:, 1], (z8 - z32).abs().amax(1)
    flipped = z8.argmax(1) != z32.argmax(1)
    return {"margin_median": margin.median().item(),
            "margin_median_flipped": margin[flipped].median().item() if flipped.any() else float("nan"),
            "near_ties": (margin < 2 * error).float().mean().item() * 100}


def range_spread(model: torch.nn.Module) -> float:
    """Median over conv layers of max channel range / median channel range (1 = all channels alike)."""
    spreads = []
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d) and m.out_channels > 1:
            r = q.weight_ranges_per_channel(m.weight)
            spreads.append((r.max() / r.median().clamp_min(1e-12)).item())
    return statistics.median(spreads)


def module_ranges(module) -> Dict[str, list]:
    """Per-output-channel ranges max|W_c| of one RepGhost module's depthwise branch (BN folded), BN branch and
    fused kernel (their sum, Eq. 2): the data of notebook 07's plot."""
    dw, _ = rm.fold_bn(module.cheap_operation[0].weight.detach(), None, module.cheap_operation[1])
    bn, _ = rm.core.bn_to_kernel(module.fusion_bn[0], module.dw_size)
    return {"depthwise conv + BN": q.weight_ranges_per_channel(dw).tolist(),
            "BN branch": q.weight_ranges_per_channel(bn).tolist(),
            "fused kernel": q.weight_ranges_per_channel(dw + bn).tolist()}


def paired(samples: Dict, a, b) -> float:
    """Median over rounds of the same-round ratio samples[a] / samples[b]."""
    return statistics.median(x / y for x, y in zip(samples[a], samples[b], strict=True))


def op_times(path: Path, runs: int = 30) -> Dict[str, float]:
    """Milliseconds per inference by operator type of the ONNX file ``path`` (batch 1, 224 px, 1 thread), from
    onnxruntime's own profiler (kernel time of each node after the session's graph optimizations)."""
    with tempfile.TemporaryDirectory() as tmp:
        session = rm.deploy.onnx_session(path, threads=1, profile_prefix=os.path.join(tmp, "profile"))
        feed = {session.get_inputs()[0].name: torch.randn(1, 3, 224, 224).numpy()}
        for _ in range(runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    totals: Dict[str, float] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            op = e["args"]["op_name"]
            totals[op] = totals.get(op, 0.0) + e["dur"] / 1e3 / runs
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def latency_rows(args, calibration, work: Path):
    """Interleaved fp32 / INT8 latency of the two 1.0x models in onnxruntime for every (batch, threads)."""
    size = (1, 3, 224, 224)
    paths = {}
    for label, name in LATENCY_MODELS.items():
        fp32 = rm.export_onnx(rm.training.build_named_model(name), work / f"{name}.onnx", size)
        paths[(label, "fp32")] = fp32
        paths[(label, "int8")] = q.quantize_onnx(fp32, work / f"{name}-int8.onnx", calibration, per_channel=True)
    breakdown = {f"{label} {kind}": op_times(p) for (label, kind), p in paths.items()}
    rows = []
    for batch, threads in args.settings:
        sessions = {key: rm.deploy.onnx_session(p, threads=threads) for key, p in paths.items()}
        x = torch.randn(batch, *size[1:]).numpy()
        cpu = {key: [] for key in sessions}

        def measure(key, sessions=sessions, x=x, cpu=cpu):
            wall_ms, cpu_ms = time_session(sessions[key], x, args.min_run_time)
            cpu[key].append(cpu_ms)
            return wall_ms

        before = load()
        samples = interleaved_rounds(measure, list(sessions), args.rounds)
        row = {"batch": batch, "threads": threads, "rounds": args.rounds, "load_before": before, "load_after": load()}
        for key, ms in samples.items():
            row[f"{key[0]} {key[1]} ms"] = statistics.median(ms)
        rep, ghost = LATENCY_MODELS
        for suffix, data in ((" CPU time", cpu), ("", samples)):
            if suffix and threads != 1:  # CPU time per inference: the load-robust measure of the work (1 thread)
                continue
            for label in LATENCY_MODELS:
                row[f"{label} fp32/int8{suffix}"] = paired(data, (label, "fp32"), (label, "int8"))
            row[f"GhostNet int8 / RepGhostNet int8{suffix}"] = paired(data, (ghost, "int8"), (rep, "int8"))
        rows.append(row)
        print(" ", row, flush=True)
    return rows, breakdown


def write_markdown(result: Dict, latency: Dict, path: Path) -> None:
    """int8.md from the accuracy and latency results (each with its own date, command and load)."""
    acc = result["accuracy"]
    text = ["# INT8 post-training quantization in onnxruntime", "",
            f"Written by `python benchmarks/int8.py` from int8_accuracy.json ({result['date']}, `{result['command']}`) "
            f"and int8_latency.json ({latency['date']}, `{latency['command']}`). Machine: {result['machine']}, "
            f"{result['cores']} cores ({result.get('cpu', 'CPU not recorded')}); "
            f"latency: {latency.get('cpu', 'CPU not recorded')}; "
            f"onnxruntime {result['onnxruntime']}, torch {result['torch']}.",
            "", "## Accuracy: top-1 on the CIFAR-10 subset's 1,017 test images, fp32 vs INT8", "",
            "Static PTQ with `onnxruntime.quantization.quantize_static` (`repghost_mini.deploy.quantize_onnx`), "
            "QDQ format, "
            "8-bit weights per output channel or per tensor (`int8` symmetric, `int8-7bit` = onnxruntime's "
            "`reduce_range`, or `uint8` with a zero point), UINT8 activations calibrated on "
            f"{result['calibration_images']} real training images (no augmentation) with min/max or the 99.999th "
            "percentile. Every file is scored by the same code as a checkpoint (`repghost_mini.evaluate` through "
            "`OnnxModel`). Drop = fp32 - INT8 in points (1 test image = 0.1 point); agreement = share of test "
            "images with the same top-1 class in fp32 and INT8.", ""]
    text += [f"- `{name}`: {info['description']}" for name, info in result["models"].items()] + [""]
    text.append(markdown_table(columns=["model", "exported form", "weights", "calibration", "fp32 top-1", "INT8 top-1",
                                        "drop", "agreement", "MB fp32 -> INT8", "logit error: kernels / simulated",
                                        "agreement simulated", "fp32 margin", "margin of flipped", "near-ties"],
                               rows=[[r["model"], r["form"], r["weights"], r["calibration"], f"{r['fp32_top1']:.2f}%",
                                     f"{r['int8_top1']:.2f}%", f"{r['drop']:+.2f}", f"{r['agreement']:.1f}%",
                                     f"{r['fp32_mb']:.2f} -> {r['int8_mb']:.2f}"]
                                     + ([f"{r['kernels']:.3f} / {r['simulated']:.3f}",
                                         f"{r['agreement_simulated']:.1f}%", f"{r['margin_median']:.2f}",
                                         f"{r['margin_median_flipped']:.3f}", f"{r['near_ties']:.1f}%"]
                                        if "near_ties" in r else ["-"] * 5) for r in acc]))
    text += ["", "Weights per channel or per tensor are of the type chosen for the CPU (`default_weight_type`: "
             f"{', '.join(sorted({r.get('weight_type', 'int8') for r in acc if ' ' not in r['weights']}))} here); "
             "*per-channel int8 / int8-7bit / uint8* rows name it. Why predictions flip (medians over the test "
             "images): *logit error* = largest |INT8 logit - fp32 logit| of an image, run by onnxruntime's INT8 "
             "*kernels* as deployed or *simulated* (the same QDQ graph run in float: the rounding alone, "
             "`quantization_error`); *fp32 margin* = top-1 logit minus top-2 logit; *margin of flipped* = the same "
             "for the images whose top-1 class INT8 changed; *near-ties* = share of images whose margin is below "
             "twice their INT8 logit error, the only ones that can flip."]
    text += ["", "Spread of per-output-channel weight ranges, median over conv layers of (largest channel range / "
             "median channel range); a per-tensor INT8 step is set by the largest channel. The training form is "
             "shown as PyTorch holds it (its Conv->BN pairs are folded by the exporter before quantization, its BN "
             "branches are not):", ""]
    text.append(markdown_table(columns=["model", "form", "range spread"],
                               rows=[k.split(" | ") + [f"{v:.1f}"] for k, v in result["range_spread"].items()]))
    lat = latency["latency"]
    ms_cols = [k for k in lat[0] if k.endswith(" ms")]
    ratio_cols = list(dict.fromkeys(k for r in lat for k in r if "/" in k))
    text += ["", "## Latency: onnxruntime, 224 px, fp32 vs INT8 (per-channel QDQ)", "", latency["latency_note"],
             f"Load average (1/5/15 min) {latency['load_start']} at the start and {latency['load_end']} at the end on "
             f"{latency['cores']} cores: {load_words(latency)}; compare only within one row (ratios, measured side "
             "by side). The CPU-time ratios "
             "(1 thread: process CPU seconds per inference) do not count time spent waiting for a core.",
             latency.get("incomplete", ""), ""]
    text.append(markdown_table(columns=["batch", "threads"] + ms_cols + ratio_cols + ["load before -> after"],
                               rows=[[r["batch"], r["threads"]] + [f"{r[k]:.1f}" for k in ms_cols]
                                     + [f"{r[k]:.2f}" if k in r else "-" for k in ratio_cols]
                                     + [f"{r['load_before']} -> {r['load_after']}"]
                                     for r in lat]))
    if "op_times" in latency:
        text += ["", "Where the time goes: onnxruntime's profiler, kernel milliseconds per inference by operator type "
                 "(batch 1, 1 thread, 30 runs, after the session's graph optimizations; fp32 convolutions run in "
                 "onnxruntime's blocked NCHWc layout, INT8 ones as QLinearConv in NHWC):", ""]
        sessions = latency["op_times"]
        ops = list(dict.fromkeys(op for times in sessions.values() for op in times))
        text.append(markdown_table(columns=["operator"] + list(sessions),
                                   rows=[[op] + [f"{t[op]:.2f}" if op in t else "" for t in sessions.values()]
                                         for op in ops]
                                   + [["**total**"] + [f"{sum(t.values()):.2f}" for t in sessions.values()]]))
    text += ["", "## Targets (issue 12)", ""] + [f"- {t}" for t in targets(result, latency)] + [""]
    path.write_text("\n".join(text))


def targets(result: Dict, latency: Dict) -> list:
    """The issue's targets, each with the measured numbers and met / MISSED."""
    acc = {(r["model"], r["form"], r["weights"], r["calibration"]): r for r in result["accuracy"]}
    out = []
    for name in result["models"]:
        pc = acc.get((name, "fused", "per-channel", "minmax"))
        pt = acc.get((name, "fused", "per-tensor", "minmax"))
        if pc is not None:
            others = [r for (n, f, w, c), r in acc.items() if n == name and f == "fused" and c == "minmax"
                      and w.startswith("per-channel ")]
            out.append(f"top-1 drop fp32 -> INT8 per-channel ({pc.get('weight_type', 'int8')} weights), "
                       f"fused `{name}`: "
                       f"{pc['drop']:+.2f} points ({'met' if pc['drop'] <= 1.0 else 'MISSED'}: target <= 1.0); "
                       f"per-tensor: {pt['drop']:+.2f}"
                       + "".join(f"; {r['weights']}: {r['drop']:+.2f}" for r in others))
    rep, ghost = LATENCY_MODELS
    for r in (r for r in latency["latency"] if r["batch"] == 1):
        speed, vs_ghost = r[f"{rep} fp32/int8"], r["GhostNet int8 / RepGhostNet int8"]
        out.append(f"batch 1, {r['threads']} thread(s): fused RepGhostNet fp32 latency / INT8 latency = {speed:.2f} "
                   f"({'met' if speed >= 1.5 else 'MISSED'}: target >= 1.5x); GhostNet INT8 latency / RepGhostNet "
                   f"INT8 latency = {vs_ghost:.2f} ({'met' if vs_ghost > 1 else 'MISSED'}: target > 1)"
                   + (f"; CPU time per inference: fp32 / INT8 = {r[f'{rep} fp32/int8 CPU time']:.2f}, GhostNet INT8 "
                      f"{r['GhostNet int8 / RepGhostNet int8 CPU time']:.2f}x ours" if r["threads"] == 1 else ""))
    return out


def run_accuracy(args, result: Dict) -> None:
    trained = train_models(args)
    torch.set_num_threads(args.threads)
    bundle = rm.load_dataset("cifar10-subset")
    _, test = rm.make_loaders(bundle, 256)
    calibration = q.calibration_images(bundle, args.calibration_images, seed=args.seed)
    result["models"], result["accuracy"], result["range_spread"] = {}, [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, info in trained.items():
            recipe = rm.training.SHORT_RUN_RECIPE
            result["models"][name] = {"description": f"{name} (small-input stem), {info['epochs_done']} epochs of a "
                                                     f"{args.epochs}-epoch schedule ({info['how']}) on the subset's "
                                                     f"{len(bundle.train)} training images with SHORT_RUN_RECIPE "
                                                     f"(batch {recipe['batch_size']}, weight decay "
                                                     f"{recipe['weight_decay']}; no dropout, random "
                                                     "erasing or EMA, as in notebook 05)"}
            result["accuracy"] += accuracy_rows(name, info["model"], bundle, test, calibration, Path(tmp),
                                                remedy=name.startswith("repghost"))
            forms = {"fused": rm.reparameterize(info["model"]), "training form": info["model"]} \
                if name.startswith("repghost") else {"as is": info["model"]}
            for form, net in forms.items():
                result["range_spread"][f"{name} | {form}"] = range_spread(net)
            if name.startswith("repghost"):
                result["module_ranges"] = module_ranges(info["model"].blocks[6][0].ghost1)
        try:  # the long-trained reference model (benchmarks/cifar_reference.py), when the package ships it
            reference = rm.training.load_reference_model("cifar10")
        except FileNotFoundError:
            reference = None
        if reference is not None:
            info = reference.info
            result["models"]["reference"] = {"description": f"the reference model of benchmarks/cifar_reference.py: "
                                                            f"fused RepGhostNet-0.5x, {info['train_minutes']:.0f} min "
                                                            f"on all 50,000 CIFAR-10 training images, "
                                                            f"{info['test_top1']:.2f}% on the 10,000 test images"}
            result["accuracy"] += accuracy_rows("reference", reference, bundle, test, calibration, Path(tmp),
                                                remedy=True, forms={"fused": reference})
            result["range_spread"]["reference | fused"] = range_spread(reference)


def run_latency(args, result: Dict) -> None:
    bundle = rm.load_dataset("cifar10-subset")
    calibration = q.calibration_images(bundle, 64, seed=args.seed, image_size=224)
    result["latency_note"] = (f"Random seeded weights (latency does not depend on their values); INT8 with "
                              f"{q.default_weight_type()} weights (the type quantize_onnx picks for this CPU), "
                              f"calibrated on 64 real CIFAR training images resized to 224 px. Median of {args.rounds} "
                              f"interleaved rounds of about {args.min_run_time} s per session; ratios are medians "
                              "of same-round ratios.")
    with tempfile.TemporaryDirectory() as tmp:
        result["latency"], result["op_times"] = latency_rows(args, calibration, Path(tmp))


def main(argv=None) -> Dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", nargs="?", choices=("all", "accuracy", "latency", "report"), default="all",
                   help="accuracy / latency: measure one part into int8_<part>.json; report: write int8.md from "
                        "both; all: everything")
    p.add_argument("--epochs", type=int, default=15,
                   help="training epochs of the CIFAR-subset models (notebook 05: 15)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads for training")
    p.add_argument("--runs", default="runs/int8", help="cache folder of the trained models")
    p.add_argument("--only", nargs="*", help="train only these models and stop (e.g. to train in parallel)")
    p.add_argument("--partial", action="store_true", help="use the last epoch's checkpoint (raw weights) of an "
                                                          "unfinished run")
    p.add_argument("--calibration-images", type=int, default=512)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--min-run-time", type=float, default=0.3)
    p.add_argument("--settings", type=lambda s: tuple(int(v) for v in s.split("x")), nargs="+",
                   default=[(1, 1), (1, 2), (32, 1), (32, 2)], help="latency settings BATCHxTHREADS")
    p.add_argument("--results", default=str(RESULTS), help="folder for int8*.json and int8.md")
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    if args.only:
        train_models(args)
        return {}
    folder = Path(args.results)
    folder.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/int8.py " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    for part, run in (("accuracy", run_accuracy), ("latency", run_latency)):
        if args.part in (part, "all"):
            result: Dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_start": load(),
                            "cores": os.cpu_count(), "machine": platform.processor() or platform.machine(),
                            "cpu": cpu_words(),
                            "onnxruntime": __import__("onnxruntime").__version__, "torch": torch.__version__,
                            "calibration_images": args.calibration_images, "command": command.strip()}
            run(args, result)
            result["load_end"] = load()
            (folder / f"int8_{part}.json").write_text(json.dumps(result, indent=1))
    parts = [folder / f"int8_{k}.json" for k in ("accuracy", "latency")]
    if all(f.is_file() for f in parts):
        acc, lat = (json.loads(f.read_text()) for f in parts)
        write_markdown(acc, lat, folder / "int8.md")
        print((folder / "int8.md").read_text())
    return {}


if __name__ == "__main__":
    main()
