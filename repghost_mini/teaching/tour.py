r"""The guided tour: the paper's whole story in a few minutes on real CIFAR-10 images
(``python -m repghost_mini tour``).

1. **Concat vs add** (Sec. 3.1, Table 1): the 32 concatenations of GhostNet 1.0x against the add of the same
   operands and an add of the output's shape (:func:`repghost_mini.measure.concat_cost.time_concat_vs_add`); the
   report's heading says which was cheaper *in this run*.
2. **a -> e** (Sec. 3.2, Fig. 3, Eq. 2): modules c and d (every branch set of Table 6) fused into module e, with
   randomized BatchNorm statistics, and the largest output difference.
3. **Table 3**: parameters and MACs of RepGhostNet at every width against the paper.
4. **Training** (Sec. 4.1, scaled down): RepGhostNet-0.5x (small-input variant) on CIFAR-10 for a fixed time budget,
   with 1 thread when a short probe shows that more threads do not speed up a training step (busy cores). The
   tour prints ``RESULT tour test top-1: X%``; a model that did not learn is reported as such, not presented.
5. **Re-parameterization** (Sec. 3.2): the fused network has the same top-1 / top-5 and the same predictions.
6. **Latency** before/after fusion, measured side by side (interleaved rounds).

Everything goes into a run folder ``<out>/tour-YYYYmmdd-HHMMSS/``: ``report.md``, figures (``*.png``),
``tour.json`` with every number, and the training run's own files under ``train/``.
"""
from __future__ import annotations

import json
import math
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch
from torch import nn

from ..measure.tables import markdown_table

__all__ = ["run_tour", "fusion_check", "table3_rows", "tour_dataset", "choose_threads", "step_times_ms"]

PathLike = Union[str, Path]


# ---------------------------------------------------------------------------------------------------------------
# steps (each returns plain data; run_tour turns them into the report)
# ---------------------------------------------------------------------------------------------------------------
@torch.no_grad()
def fusion_check(channels: int = 16, size: int = 14, seed: int = 0) -> List[Dict[str, Any]]:
    r"""Fuse modules c and d (each branch set of Table 6) into module e and compare outputs (Sec. 3.2, Eq. 2).

    Each module maps ``(2, channels, size, size)`` to the same shape; BatchNorm statistics are randomized first
    (:func:`repghost_mini.randomize_bn_stats_`) so a wrong fusion cannot hide behind identity-like BNs. Runs in
    float64, so the difference is pure rounding (about $10^{-15}$). Returns one row per module with
    ``max_abs_diff``, parameter counts before/after and whether a BatchNorm is left after fusion.
    """
    from ..core.modules import LateReLUModule, RepGhostInferenceModule, RepGhostModule
    from ..core.reparam import count_batchnorms, randomize_bn_stats_
    from ..measure.counting import count_params

    variants = [("c", "LateReLUModule", LateReLUModule(channels, channels))]
    for branches in (("bn",), ("identity",), ("dconv1x1",), ("identity", "bn", "dconv1x1"), ()):
        label = "+".join(branches) or "none"
        variants.append((f"d [{label}]", "RepGhostModule", RepGhostModule(channels, channels, branches=branches)))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, channels, size, size, generator=g, dtype=torch.float64)
    rows = []
    for i, (name, cls, module) in enumerate(variants):
        module = randomize_bn_stats_(module.double(), seed=seed + i).eval()
        fused = module.fuse()
        y, y_fused = module(x), fused(x)
        rows.append(dict(module=name, cls=cls, fused_cls=type(fused).__name__,
                         is_module_e=isinstance(fused, RepGhostInferenceModule),
                         params=count_params(module), params_fused=count_params(fused),
                         batchnorms_fused=count_batchnorms(fused),
                         max_abs_diff=float((y - y_fused).abs().max()), max_abs_output=float(y.abs().max())))
    return rows


def table3_rows(widths: Sequence[float]) -> List[Dict[str, Any]]:
    """Parameters (M) and MACs (M, 224x224) of RepGhostNet at ``widths`` next to ``PAPER_TABLE3``."""
    from ..core.networks import repghostnet
    from ..measure.counting import PAPER_TABLE3, count_macs, count_params

    rows = []
    for w in widths:
        model = repghostnet(w)
        paper_params, paper_macs = PAPER_TABLE3[("repghostnet", w)]
        rows.append(dict(width=w, params_m=count_params(model) / 1e6, macs_m=count_macs(model) / 1e6,
                         paper_params_m=paper_params, paper_macs_m=paper_macs))
    return rows


#: Images per class (train, test) the tour keeps from full CIFAR-10, to stay within its time budget.
FULL_CIFAR_LIMITS = (1000, 100)


def tour_dataset(data: Optional[PathLike] = None, download: bool = True, log: Callable[[str], None] = print):
    """``(dataset name, bundle)`` for the tour: the exact CIFAR-10 subset when present, else full CIFAR-10
    (its first :data:`FULL_CIFAR_LIMITS` images per class).

    Looked for in ``data`` (if given, only there), ``$REPGHOST_MINI_DATA`` and ``./data``
    (:func:`repghost_mini.training.data.load_dataset`); full CIFAR-10 is downloaded into ``./data`` (or ``data``) when
    it is not found and ``download`` is true. When nothing is found the error lists every place looked at.
    """
    from ..training.data import load_dataset

    try:
        return "cifar10-subset", load_dataset("cifar10-subset", data, download=False)
    except FileNotFoundError:
        log("[tour] the exact CIFAR-10 subset (cifar10_subset.npz) is not there; looking for full CIFAR-10 and "
            f"using its first {FULL_CIFAR_LIMITS[0]} training / {FULL_CIFAR_LIMITS[1]} test images per class")
    return "cifar10", load_dataset("cifar10", data, download=download, train_per_class=FULL_CIFAR_LIMITS[0],
                                   test_per_class=FULL_CIFAR_LIMITS[1])


# ---------------------------------------------------------------------------------------------------------------
# figures (drawn off-screen on a bare matplotlib Figure: the tour never switches the global backend)
# ---------------------------------------------------------------------------------------------------------------
def _figure(**kw):
    from matplotlib.figure import Figure

    return Figure(**kw)


def _predictions_figure(path: Path, model: nn.Module, bundle, n: int = 12) -> Path:
    """The first ``n`` test images with the fused model's predicted and true labels."""
    images = torch.stack([bundle.test[i][0] for i in range(n)]) if not hasattr(bundle.test, "images") \
        else bundle.test.images[:n].float() / 255
    labels = [int(bundle.test[i][1]) for i in range(n)]
    mean = torch.tensor(bundle.mean).view(1, 3, 1, 1)
    std = torch.tensor(bundle.std).view(1, 3, 1, 1)
    with torch.no_grad():
        device = next(model.parameters()).device
        pred = model(((images - mean) / std).to(device)).argmax(1).cpu().tolist()
    fig = _figure(figsize=(1.3 * math.ceil(n / 2), 3.0))
    axes = fig.subplots(2, math.ceil(n / 2))
    for ax, img, p, t in zip(axes.flat, images, pred, labels, strict=False):
        ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
        ax.set_title(bundle.class_names[p], fontsize=7, color="green" if p == t else "red")
        ax.axis("off")
    fig.suptitle("fused model: predicted label (green = correct, red = wrong)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def _plot_concat(path: Path, concat: Dict[str, Dict[str, float]], n: int) -> Path:
    fig = _figure(figsize=(5.2, 3.0))
    ax = fig.subplots()
    layouts = list(concat)
    xs = range(len(layouts))
    for k, (op, label, color) in enumerate((("cat", "torch.cat", "#c0504d"),
                                            ("add_operands", "add(x1, x2)", "#4f81bd"),
                                            ("add_output", "add, output shape", "#9bbb59"))):
        ax.bar([x + (k - 1) * 0.27 for x in xs], [concat[lay][op] for lay in layouts], 0.27, label=label,
               color=color)
    ax.set_xticks(list(xs), layouts)
    ax.set_ylabel("ms for all operators")
    ax.set_title(f"GhostNet 1.0x: {n} concatenations vs adds (batch 1)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def _plot_latency(path: Path, latency: Dict[str, Dict[str, float]]) -> Path:
    fig = _figure(figsize=(3.6 * len(latency), 3.0))
    axes = fig.subplots(1, len(latency), squeeze=False)
    for ax, (setting, ms) in zip(axes[0], latency.items(), strict=True):
        bars = ax.bar(list(ms), list(ms.values()), color=["#c0504d", "#4f81bd"])
        for b, v in zip(bars, ms.values(), strict=True):
            ax.annotate(f"{v:.3g}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                        fontsize=8)
        ax.set_title(f"latency, batch 1, {setting}", fontsize=9)
        ax.set_ylabel("ms")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


# ---------------------------------------------------------------------------------------------------------------
# busy cores: do more threads make a training step faster?
# ---------------------------------------------------------------------------------------------------------------
#: A step with all threads must take at most this share of the 1-thread step, else the cores count as busy.
OVERSUBSCRIBED_RATIO = 0.85


def step_times_ms(model_name: str = "repghostnet_050", thread_counts: Sequence[int] = (2, 1), rounds: int = 3,
                  batch_size: int = 32) -> Dict[int, float]:
    """Fastest time (ms) of one SGD training step (forward, backward, update) of ``model_name`` on a random
    CIFAR-sized batch, per thread count; the counts are interleaved in ``rounds`` rounds after one warm-up step
    each, so load from other processes hits them alike. torch's thread setting is restored afterwards."""
    from ..training.registry import build_model

    model = build_model(model_name, 10, small_input=True).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(batch_size, 3, 32, 32, generator=g), torch.randint(0, 10, (batch_size,), generator=g)
    old = torch.get_num_threads()
    times: Dict[int, List[float]] = {t: [] for t in thread_counts}
    try:
        for i in range(rounds + 1):  # round 0 warms up the allocator and oneDNN for each thread count
            for t in thread_counts:
                torch.set_num_threads(t)
                t0 = time.perf_counter()
                opt.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
                if i:
                    times[t].append((time.perf_counter() - t0) * 1e3)
    finally:
        torch.set_num_threads(old)
    return {t: min(v) for t, v in times.items()}


def choose_threads(model_name: str, log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Probe a training step with all of torch's threads against 1 thread (:func:`step_times_ms`; one round, three
    more when the first is not clear-cut). When the extra
    threads do not make the step at least ``1 / OVERSUBSCRIBED_RATIO`` faster, the cores are busy with other work
    (spinning threads then wait for each other), and training uses 1 thread. Returns what was measured and
    chosen: ``{"threads", "step_ms": {n: ms}, "oversubscribed", "load_average"}``."""
    n = torch.get_num_threads()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if n == 1:
        return dict(threads=1, step_ms={}, oversubscribed=False, load_average=load)
    step_ms = step_times_ms(model_name, (n, 1), rounds=1)
    if 0.6 < step_ms[n] / step_ms[1] < 1.5:  # not clear-cut after one round: measure more carefully
        step_ms = step_times_ms(model_name, (n, 1), rounds=3)
    busy = step_ms[n] > OVERSUBSCRIBED_RATIO * step_ms[1]
    if busy:
        log(f"[tour] a training step takes {step_ms[n]:.0f} ms with {n} threads and {step_ms[1]:.0f} ms with 1"
            + (f" (load average {load:.1f} on {os.cpu_count()} cores)" if load is not None else "")
            + ": the cores are oversubscribed, so the tour trains with 1 thread (choose with --threads)")
    return dict(threads=1 if busy else n, step_ms=step_ms, oversubscribed=busy, load_average=load)


# ---------------------------------------------------------------------------------------------------------------
# the tour
# ---------------------------------------------------------------------------------------------------------------
class _Clock:
    """Seconds per named step, logged as each step starts."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log, self.seconds, self.t0 = log, {}, time.perf_counter()

    def start(self, name: str) -> None:
        self.log(f"[tour] {name} ...")
        self.seconds[name] = time.perf_counter()

    def stop(self, name: str) -> None:
        self.seconds[name] = time.perf_counter() - self.seconds[name]

    def total(self) -> Dict[str, float]:
        return dict(self.seconds, total=time.perf_counter() - self.t0)


def _new_run_dir(out_dir: PathLike) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    run_dir, suffix = Path(out_dir) / f"tour-{stamp}", 1
    while run_dir.exists():
        run_dir, suffix = Path(out_dir) / f"tour-{stamp}-{suffix}", suffix + 1
    run_dir.mkdir(parents=True)
    return run_dir


def _measure_concat(quick: bool, run_dir: Path) -> Dict[str, Any]:
    from ..measure.concat_cost import ghostnet_concat_shapes, time_concat_vs_add

    pairs = ghostnet_concat_shapes()
    concat = {layout: time_concat_vs_add(pairs, batch_size=1, channels_last=cl, min_run_time=0.1 if quick else 0.4,
                                         threads=1)
              for layout, cl in (("NCHW", False), ("NHWC", True))}
    _plot_concat(run_dir / "concat_vs_add.png", concat, len(pairs))
    return dict(pairs=len(pairs), **concat)


def _check_fusion(seed: int) -> List[Dict[str, Any]]:
    fusion = fusion_check(seed=seed)
    worst = max(r["max_abs_diff"] for r in fusion)
    if not (worst < 1e-9 and all(r["is_module_e"] and r["batchnorms_fused"] == 0 for r in fusion)):
        raise RuntimeError(f"fusion check failed: max |difference| {worst:.3g} (expected < 1e-9 in float64); "
                           "the re-parameterization code is broken.")
    return fusion


def _train_and_fuse(model: str, dataset: str, bundle, data, seed: int, device: str, train_seconds: float,
                    threads: int, quick: bool, run_dir: Path, results: Dict[str, Any]):
    """Train for ``train_seconds``, record the fused model's accuracy; returns (trained, fused, history)."""
    from ..core.reparam import count_batchnorms
    from ..measure.counting import count_macs, count_params
    from ..training.trainer import SHORT_RUN_RECIPE, TrainConfig, plot_history, train

    # notebook 05's short-run settings: dropout, random erasing and the EMA only slow down a run of a few minutes
    results["recipe"] = dict(SHORT_RUN_RECIPE, dropout=0.0, random_erasing=0.0, ema_decay=None)
    config = TrainConfig(model=model, small_input=True, dataset=dataset, data_path=None if data is None else str(data),
                         seed=seed, device=device, time_budget=train_seconds, epochs=None,
                         threads=threads, **results["recipe"], eval_every=0 if quick else 1,
                         out_dir=str(run_dir / "train"), progress=False)
    result = train(config, bundle=bundle)
    trained, fused, final = result.model.eval(), result.fused.eval(), result.final
    plot_history(result.history, run_dir / "curves.png")  # drawn off-screen and saved
    strip = lambda d: {k: v for k, v in d.items() if k != "predictions"}  # noqa: E731
    chance = 100 / bundle.num_classes
    results["reparam"] = dict(train_form=strip(final["train_form"]), fused=strip(final["fused"]),
                              agreement=final["agreement"], max_logit_diff=final["max_logit_diff"],
                              batchnorms=(count_batchnorms(trained), count_batchnorms(fused)),
                              params=(count_params(trained), count_params(fused)),
                              macs_32=(count_macs(trained, (1, 3, 32, 32)), count_macs(fused, (1, 3, 32, 32))),
                              epochs=len(result.history), steps=result.history[-1].get("steps"),
                              chance=chance, learned=final["fused"]["top1"] >= 2 * chance)
    if results["reparam"]["learned"]:
        _predictions_figure(run_dir / "predictions.png", fused, bundle)
    return trained, fused, result.history


def _measure_latency(trained: nn.Module, fused: nn.Module, quick: bool, run_dir: Path) -> Dict[str, Dict[str, float]]:
    from ..core.reparam import reparameterize
    from ..deploy.latency import compare_latency

    latency = {"32x32": compare_latency({"training form": trained.cpu().eval(), "fused": fused.cpu().eval()},
                                        (1, 3, 32, 32), threads=1, rounds=3 if quick else 5,
                                        min_run_time=0.1 if quick else 0.3)}
    if not quick:
        from ..core.networks import repghostnet
        big = repghostnet(1.0).eval()
        latency["224x224 (RepGhostNet 1.0x)"] = compare_latency(
            {"training form": big, "fused": reparameterize(big)}, (1, 3, 224, 224), threads=1, rounds=5,
            min_run_time=0.3)
    _plot_latency(run_dir / "latency.png", latency)
    return latency


def run_tour(data: Optional[PathLike] = None, out_dir: PathLike = "runs", quick: bool = False,
             train_seconds: Optional[float] = None, model: str = "repghostnet_050", seed: int = 0,
             device: str = "auto", download: bool = True, threads: Optional[int] = None,
             log: Callable[[str], None] = print) -> Path:
    """Run the tour (see the module docstring) and return the path of the written ``report.md``.

    ``quick`` shrinks every budget (about two minutes on 2 CPU cores instead of about five): shorter timing runs,
    3 widths for Table 3 instead of 8, ``train_seconds`` 60 instead of 120, no per-epoch evaluation.
    ``threads``: CPU threads for training; ``None`` probes whether more than one thread helps (see
    :func:`choose_threads`). Logs ``RESULT tour test top-1: X%`` at the end.
    """
    from ..core.networks import TABLE3_WIDTHS

    if train_seconds is not None and not train_seconds > 0:
        raise ValueError(f"train_seconds must be positive, got {train_seconds!r}.")
    train_seconds = float(train_seconds if train_seconds is not None else (60 if quick else 120))
    clock, run_dir = _Clock(log), _new_run_dir(out_dir)
    results: Dict[str, Any] = dict(quick=quick, seed=seed, train_seconds=train_seconds, model=model,
                                   torch=torch.__version__, threads=torch.get_num_threads(),
                                   machine=f"{platform.machine()} {platform.processor() or ''}".strip())
    clock.start("data")  # first: fail early with one clear error when there is none
    dataset, bundle = tour_dataset(data, download=download, log=log)
    results["data"] = dict(name=dataset, source=bundle.source, train=len(bundle.train), test=len(bundle.test))
    log(f"[tour] data: {dataset} from {bundle.source} ({len(bundle.train)} train / {len(bundle.test)} test images)")
    clock.stop("data")
    clock.start("concat vs add")
    results["concat_vs_add"] = _measure_concat(quick, run_dir)
    clock.stop("concat vs add")
    clock.start("a->e fusion check")
    results["fusion"] = _check_fusion(seed)
    clock.stop("a->e fusion check")
    clock.start("Table 3 counts")
    results["table3"] = table3_rows((0.5, 1.0, 1.5) if quick else TABLE3_WIDTHS)
    clock.stop("Table 3 counts")
    clock.start("threads")
    results["thread_choice"] = (dict(threads=threads, step_ms={}, oversubscribed=None, load_average=None)
                                if threads else choose_threads(model, log))
    clock.stop("threads")
    name = f"training {model} for {train_seconds:.0f} s"
    clock.start(name)
    trained, fused, history = _train_and_fuse(model, dataset, bundle, data, seed, device, train_seconds,
                                              results["thread_choice"]["threads"], quick, run_dir, results)
    clock.stop(name)
    clock.start("latency")
    results["latency"] = _measure_latency(trained, fused, quick, run_dir)
    clock.stop("latency")
    results["seconds"] = clock.total()
    (run_dir / "tour.json").write_text(json.dumps(results, indent=2, default=str))
    report = run_dir / "report.md"
    report.write_text(_report_markdown(results, history))
    log(f"[tour] done in {results['seconds']['total']:.0f} s")
    log(f"RESULT tour test top-1: {results['reparam']['fused']['top1']:.1f}%")
    return report


# ---------------------------------------------------------------------------------------------------------------
# the report: one function per section, each heading says what this run measured
# ---------------------------------------------------------------------------------------------------------------
def _concat_section(r: Dict[str, Any]) -> List[str]:
    from ..measure.concat_cost import BYTES_MODEL

    c = r["concat_vs_add"]
    ratio = {lay: c[lay]["cat"] / c[lay]["add_operands"] for lay in ("NCHW", "NHWC")}
    if min(ratio.values()) > 1:
        heading = "cat cost more than add in both layouts here"
    elif max(ratio.values()) < 1:
        heading = "cat was cheaper than add in both layouts here"
    else:
        heading = f"cat / add = {ratio['NCHW']:.2f}x in NCHW and {ratio['NHWC']:.2f}x in NHWC here"
    bytes_op = BYTES_MODEL["cat"] / BYTES_MODEL["add_operands"]
    bytes_out = BYTES_MODEL["cat"] / BYTES_MODEL["add_output"]
    return [
        f"## 1. Concatenation vs add (Sec. 3.1, Table 1): {heading}",
        "",
        f"The {c['pairs']} concatenations of GhostNet 1.0x at 224x224 (shapes collected with forward hooks), batch 1, "
        "1 thread like the paper, "
        "timed against the add of the same two operands, `add(x1, x2)` (the paper's wording), and against an add "
        "of two tensors of the concatenated output's shape. A purely bandwidth-bound machine would give cat/add = "
        f"{bytes_op:.2f} and {bytes_out:.2f} (numbers moved: cat 2S, add(x1, x2) 1.5S, output-shape add 3S).",
        "",
        markdown_table(columns=["layout", "cat (ms)", "add(x1, x2) (ms)", "output-shape add (ms)", "cat / add(x1, x2)",
                                "cat / output-shape add"],
                       rows=[[lay, f"{c[lay]['cat']:.3f}", f"{c[lay]['add_operands']:.3f}",
                              f"{c[lay]['add_output']:.3f}", f"{ratio[lay]:.2f}x",
                              f"{c[lay]['cat'] / c[lay]['add_output']:.2f}x"]
                             for lay in ("NCHW", "NHWC")],
                       align="---|---:|---:|---:|---:|---:|"),
        "",
        "Both operators have zero parameters and zero FLOPs, so their time is memory traffic. In NHWC "
        "(channels_last) a concatenation copies one small block per pixel instead of one large block per image; "
        "the paper measured on a phone (ARM, MNN) where that costs about 2x an add.",
        "",
        "![concat vs add](concat_vs_add.png)",
        "",
    ]


def _fusion_and_table3_sections(r: Dict[str, Any]) -> List[str]:
    worst = max(f["max_abs_diff"] for f in r["fusion"])
    return [
        f"## 2. Modules c and d fused into module e (Sec. 3.2, Fig. 3, Eq. 2): largest difference {worst:.1e}",
        "",
        "Each module: 16 channels, input (2, 16, 14, 14) in float64, BatchNorm statistics randomized before "
        "fusing (default statistics would hide errors).",
        "",
        markdown_table(columns=["module", "params", "params fused", "BNs left", "max abs output", "max abs difference"],
                       rows=[[f["module"], f["params"], f["params_fused"], f["batchnorms_fused"],
                     f"{f['max_abs_output']:.3g}", f"{f['max_abs_diff']:.1e}"] for f in r["fusion"]],
                       align="---|---:|---:|---:|---:|---:|"),
        "",
        "Module a (concat) and b (ReLU inside a branch) are not linear between the primary conv and the output, "
        "so they have no such fused form.",
        "",
        "## 3. Table 3: parameters and MACs (224x224)",
        "",
        markdown_table(columns=["RepGhostNet", "params (M)", "paper", "MACs (M)", "paper"],
                       rows=[[f"{t['width']}x", f"{t['params_m']:.2f}", t["paper_params_m"], f"{t['macs_m']:.1f}",
                     t["paper_macs_m"]] for t in r["table3"]],
                       align="---|---:|---:|---:|---:|"),
        "",
    ]


def _training_section(r: Dict[str, Any], history: List[Dict[str, Any]]) -> List[str]:
    rp, tc = r["reparam"], r["thread_choice"]
    top1 = rp["fused"]["top1"]
    verdict = (f"test top-1 {top1:.1f}%" if rp["learned"] else
               f"did not learn in this budget (test top-1 {top1:.1f}%, chance {rp['chance']:.0f}%)")
    threads = (f"Trained with {tc['threads']} CPU thread(s)" + (
        f": a probe step took {tc['step_ms'].get(r['threads'], 0):.0f} ms with {r['threads']} threads and "
        f"{tc['step_ms'].get(1, 0):.0f} ms with 1, so the cores were oversubscribed and training used 1 thread "
        "(override with --threads)" if tc.get("oversubscribed") else "") + ".")
    return [
        f"## 4. Training {r['model']} (small-input variant) on {r['data']['name']}: {verdict}",
        "",
        f"Paper recipe scaled down (SGD momentum 0.9, cosine schedule with linear warm-up following the elapsed "
        f"time, label smoothing; batch {r['recipe']['batch_size']} and weight decay "
        f"{r['recipe']['weight_decay']:g} instead of the paper's 1024 and 1e-5, which suit 300 ImageNet epochs, not "
        f"minutes; dropout and random erasing off, as in notebook 05: they only slow down a run this short), "
        f"stopped after {r['train_seconds']:.0f} s of training steps ({rp['epochs']} epoch(s), the last "
        f"possibly partial; {rp['steps']} SGD steps). {threads} EMA of the weights is off here: over a few hundred "
        "steps an EMA still remembers the random initialisation (`python -m repghost_mini train` uses it). "
        + ("Quick mode: the test set is only evaluated at the end. " if r["quick"] else "")
        + ("" if rp["learned"] else "With so few steps the network has not learned yet; run the tour without "
           "--quick or with a larger --train-seconds to get a model worth looking at."),
        "",
        markdown_table(columns=["epoch", "train loss", "train acc (%)", "test top-1 (%)", "test top-5 (%)"],
                       rows=[[h.get("epoch"), _num(h.get("train_loss")), _num(h.get("train_acc")),
                              _num(h.get("test_top1")),
                     _num(h.get("test_top5"))] for h in history],
                       align="---:|---:|---:|---:|---:|"),
        "",
        "![training curves](curves.png)",
        "",
    ]


def _reparam_and_latency_sections(r: Dict[str, Any]) -> List[str]:
    rp, lat = r["reparam"], r["latency"]
    tf, fu = rp["train_form"], rp["fused"]
    speed = lat["32x32"]["training form"] / lat["32x32"]["fused"]
    faster = f"{speed:.2f}x faster at 32x32 here" if speed > 1 else f"not faster at 32x32 here ({speed:.2f}x)"
    same = "the same predictions" if rp["agreement"] == 1 else f"{100 * rp['agreement']:.2f}% equal predictions"
    return [
        f"## 5. Re-parameterization: {same}, {rp['batchnorms'][0]} -> {rp['batchnorms'][1]} BatchNorms",
        "",
        markdown_table(columns=["form", "top-1 (%)", "top-5 (%)", "BatchNorms", "params", "MACs at 32x32"],
                       rows=[["training", f"{tf['top1']:.2f}", f"{tf['top5']:.2f}", rp["batchnorms"][0],
                              rp["params"][0],
                     rp["macs_32"][0]],
                    ["fused", f"{fu['top1']:.2f}", f"{fu['top5']:.2f}", rp["batchnorms"][1], rp["params"][1],
                     rp["macs_32"][1]]],
                       align="---|---:|---:|---:|---:|---:|"),
        "",
        f"Top-1 predictions agree on {100 * rp['agreement']:.2f}% of the {r['data']['test']} test images; largest "
        f"logit difference {rp['max_logit_diff']:.2e} (float32 rounding).",
        "",
        "![predictions](predictions.png)" if rp["learned"] else "(No predictions figure: the model did not learn.)",
        "",
        f"## 6. Latency before and after re-parameterization: {faster}",
        "",
        markdown_table(columns=["input", "training form (ms)", "fused (ms)", "speed-up"],
                       rows=[[k, f"{v['training form']:.2f}", f"{v['fused']:.2f}",
                              f"{v['training form'] / v['fused']:.2f}x"]
                    for k, v in lat.items()],
                       align="---|---:|---:|---:|"),
        "",
        "Median of interleaved rounds (torch.utils.benchmark), batch 1, 1 CPU thread. The paper measures on a phone "
        "(Table 3); on a desktop CPU at 32x32 the per-operator overhead dominates.",
        "",
    ]


def _report_markdown(r: Dict[str, Any], history: List[Dict[str, Any]]) -> str:
    lines = [
        "# RepGhost tour report",
        "",
        f"Generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by `python -m repghost_mini tour"
        f"{' --quick' if r['quick'] else ''}` in {r['seconds']['total']:.0f} s "
        f"(torch {r['torch']}, {r['threads']} CPU threads, {r['machine']}). Every number below was measured in "
        "this run; timings on a shared machine are noisy, so compare numbers side by side, not across runs.",
        "",
        f"Data: **{r['data']['name']}** from `{r['data']['source']}` ({r['data']['train']} training / "
        f"{r['data']['test']} test images).",
        "",
        f"**RESULT tour test top-1: {r['reparam']['fused']['top1']:.1f}%**",
        "",
    ]
    lines += _concat_section(r) + _fusion_and_table3_sections(r) + _training_section(r, history)
    lines += _reparam_and_latency_sections(r)
    lines += ["## Time spent", "",
              markdown_table(columns=["step", "seconds"],
                             rows=[[k, f"{v:.1f}"] for k, v in r["seconds"].items()],
                             align="---|---:|"), ""]
    return "\n".join(lines)


def _num(x: Any) -> str:
    return "" if x is None else f"{x:.4g}" if isinstance(x, float) else str(x)
