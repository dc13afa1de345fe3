r"""The guided tour: the paper's whole story in a few minutes on real CIFAR-10 images (``python -m repghost_mini tour``).

1. **Concat is not free** (Sec. 3.1, Table 1): the 32 concatenations of GhostNet 1.0x against adds of the same
   output shape (:func:`repghost_mini.concat_cost.time_concat_vs_add`).
2. **a -> e** (Sec. 3.2, Fig. 3, Eq. 2): modules c and d (every branch set of Table 6) fused into module e, with
   randomized BatchNorm statistics, and the largest output difference.
3. **Table 3**: parameters and MACs of RepGhostNet at every width against the paper.
4. **Training** (Sec. 4.1, scaled down): RepGhostNet-0.5x (small-input variant) on CIFAR-10 for a fixed time budget.
5. **Re-parameterization** (Sec. 3.2): the fused network has the same top-1 / top-5 and the same predictions.
6. **Latency** before/after fusion, measured side by side (interleaved rounds).

Everything goes into a run folder ``<out>/tour-YYYYmmdd-HHMMSS/``: ``report.md``, figures (``*.png``),
``tour.json`` with every number, and the training run's own files under ``train/``.
"""
from __future__ import annotations

import json
import math
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch
from torch import nn

__all__ = ["run_tour", "fusion_check", "table3_rows", "tour_dataset"]

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
    from ..measure.counting import PAPER_TABLE3, count_macs, count_params
    from ..core.networks import repghostnet

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
    (:func:`repghost_mini.data.load_dataset`); full CIFAR-10 is downloaded into ``./data`` (or ``data``) when it
    is not found and ``download`` is true. When nothing is found the error lists every place looked at.
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
# figures
# ---------------------------------------------------------------------------------------------------------------
def _plt():
    import matplotlib
    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg") and "inline" not in matplotlib.get_backend():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _bar_figure(path: Path, labels: Sequence[str], values: Sequence[float], ylabel: str, title: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 3.0))
    bars = ax.bar(labels, values, color=["#c0504d", "#4f81bd", "#9bbb59", "#8064a2"][: len(values)])
    for b, v in zip(bars, values):
        ax.annotate(f"{v:.3g}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                    fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _predictions_figure(path: Path, model: nn.Module, bundle, n: int = 12) -> Path:
    """The first ``n`` test images with the fused model's predicted and true labels."""
    plt = _plt()
    images = torch.stack([bundle.test[i][0] for i in range(n)]) if not hasattr(bundle.test, "images") \
        else bundle.test.images[:n].float() / 255
    labels = [int(bundle.test[i][1]) for i in range(n)]
    mean = torch.tensor(bundle.mean).view(1, 3, 1, 1)
    std = torch.tensor(bundle.std).view(1, 3, 1, 1)
    with torch.no_grad():
        device = next(model.parameters()).device
        pred = model(((images - mean) / std).to(device)).argmax(1).cpu().tolist()
    fig, axes = plt.subplots(2, math.ceil(n / 2), figsize=(1.3 * math.ceil(n / 2), 3.0))
    for ax, img, p, t in zip(axes.flat, images, pred, labels):
        ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
        ax.set_title(bundle.class_names[p], fontsize=7, color="green" if p == t else "red")
        ax.axis("off")
    fig.suptitle("fused model: predicted label (green = correct, red = wrong)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------------------------
# the tour
# ---------------------------------------------------------------------------------------------------------------
def _fmt_table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: Optional[str] = None) -> str:
    align = align or ("---|" * len(header))
    lines = ["| " + " | ".join(header) + " |", "|" + align]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def run_tour(data: Optional[PathLike] = None, out_dir: PathLike = "runs", quick: bool = False,
             train_seconds: Optional[float] = None, model: str = "repghostnet_050", seed: int = 0,
             device: str = "auto", download: bool = True, log: Callable[[str], None] = print) -> Path:
    """Run the tour (see the module docstring) and return the path of the written ``report.md``.

    ``quick`` shrinks every budget (about one minute on 2 CPU cores instead of about four): shorter timing
    runs, 3 widths for Table 3 instead of 8, ``train_seconds`` 20 instead of 120 and a quarter of the test set.
    """
    from ..deploy.latency import compare_latency
    from ..measure.concat_cost import ghostnet_concat_shapes, time_concat_vs_add
    from ..core.networks import TABLE3_WIDTHS
    from ..core.reparam import count_batchnorms, reparameterize
    from ..measure.counting import count_macs, count_params
    from ..training.trainer import SHORT_RUN_RECIPE, TrainConfig, plot_history, train

    if train_seconds is not None and not train_seconds > 0:
        raise ValueError(f"train_seconds must be positive, got {train_seconds!r}.")
    train_seconds = float(train_seconds if train_seconds is not None else (20 if quick else 120))
    t_start = time.perf_counter()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    run_dir = Path(out_dir) / f"tour-{stamp}"
    suffix = 1
    while run_dir.exists():
        run_dir, suffix = Path(out_dir) / f"tour-{stamp}-{suffix}", suffix + 1
    run_dir.mkdir(parents=True)
    results: Dict[str, Any] = dict(quick=quick, seed=seed, train_seconds=train_seconds, model=model,
                                   torch=torch.__version__, threads=torch.get_num_threads(),
                                   machine=f"{platform.machine()} {platform.processor() or ''}".strip())
    timings: Dict[str, float] = {}

    def step(name: str):
        log(f"[tour] {name} ...")
        timings[name] = time.perf_counter()

    def done(name: str):
        timings[name] = time.perf_counter() - timings[name]

    # 0. data first: fail early with one clear error when there is none
    step("data")
    dataset, bundle = tour_dataset(data, download=download, log=log)
    results["data"] = dict(name=dataset, source=bundle.source, train=len(bundle.train), test=len(bundle.test))
    log(f"[tour] data: {dataset} from {bundle.source} ({len(bundle.train)} train / {len(bundle.test)} test images)")
    done("data")

    # 1. concat vs add (Table 1)
    step("concat vs add")
    pairs = ghostnet_concat_shapes()
    concat = {}
    for layout, channels_last in (("NCHW", False), ("NHWC", True)):
        concat[layout] = time_concat_vs_add(pairs, batch_size=1, channels_last=channels_last,
                                            min_run_time=0.1 if quick else 0.4)
    results["concat_vs_add"] = dict(pairs=len(pairs), **concat)
    _plot_concat(run_dir / "concat_vs_add.png", concat, len(pairs))
    done("concat vs add")

    # 2. a -> e fusion check
    step("a->e fusion check")
    fusion = fusion_check(seed=seed)
    results["fusion"] = fusion
    worst = max(r["max_abs_diff"] for r in fusion)
    if not (worst < 1e-9 and all(r["is_module_e"] and r["batchnorms_fused"] == 0 for r in fusion)):
        raise RuntimeError(f"fusion check failed: max |difference| {worst:.3g} (expected < 1e-9 in float64); "
                           "the re-parameterization code is broken.")
    done("a->e fusion check")

    # 3. Table 3
    step("Table 3 counts")
    widths = (0.5, 1.0, 1.5) if quick else TABLE3_WIDTHS
    table3 = table3_rows(widths)
    results["table3"] = table3
    done("Table 3 counts")

    # 4. training
    step(f"training {model} for {train_seconds:.0f} s")
    results["recipe"] = dict(SHORT_RUN_RECIPE)
    config = TrainConfig(model=model, small_input=True, dataset=dataset, data_path=None if data is None else str(data),
                         seed=seed, device=device, time_budget=train_seconds, epochs=None, ema_decay=None,
                         **SHORT_RUN_RECIPE,
                         eval_every=0 if quick else 1, out_dir=str(run_dir / "train"), progress=False)
    result = train(config, bundle=bundle)
    trained = result.model.eval()
    history = result.history
    curves = run_dir / "curves.png"
    plot_history(history, curves)  # drawn off-screen and saved; no pyplot figure to close
    done(f"training {model} for {train_seconds:.0f} s")

    # 5. re-parameterization: equal accuracy
    step("re-parameterization")
    final = result.final
    fused = reparameterize(trained.cpu().eval())
    strip = lambda d: {k: v for k, v in d.items() if k != "predictions"}  # noqa: E731
    results["reparam"] = dict(train_form=strip(final["train_form"]), fused=strip(final["fused"]),
                              agreement=final["agreement"],
                              max_logit_diff=final["max_logit_diff"],
                              batchnorms=(count_batchnorms(trained), count_batchnorms(fused)),
                              params=(count_params(trained), count_params(fused)),
                              macs_32=(count_macs(trained, (1, 3, 32, 32)), count_macs(fused, (1, 3, 32, 32))),
                              epochs=len(history))
    _predictions_figure(run_dir / "predictions.png", fused, bundle)
    done("re-parameterization")

    # 6. latency before/after
    step("latency")
    trained_cpu = trained.cpu().eval()
    latency = {"32x32": compare_latency({"training form": trained_cpu, "fused": fused}, (1, 3, 32, 32),
                                        rounds=3 if quick else 5, min_run_time=0.1 if quick else 0.3)}
    if not quick:
        from ..core.networks import repghostnet
        big = repghostnet(1.0).eval()
        latency["224x224 (RepGhostNet 1.0x)"] = compare_latency(
            {"training form": big, "fused": reparameterize(big)}, (1, 3, 224, 224), rounds=5, min_run_time=0.3)
    results["latency"] = latency
    _plot_latency(run_dir / "latency.png", latency)
    done("latency")

    results["seconds"] = dict(timings, total=time.perf_counter() - t_start)
    (run_dir / "tour.json").write_text(json.dumps(results, indent=2, default=str))
    report = run_dir / "report.md"
    report.write_text(_report_markdown(results, history))
    log(f"[tour] done in {results['seconds']['total']:.0f} s")
    return report


def _plot_concat(path: Path, concat: Dict[str, Dict[str, float]], n: int) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 3.0))
    layouts = list(concat)
    xs = range(len(layouts))
    ax.bar([x - 0.2 for x in xs], [concat[l]["cat"] for l in layouts], 0.4, label="torch.cat", color="#c0504d")
    ax.bar([x + 0.2 for x in xs], [concat[l]["add"] for l in layouts], 0.4, label="add (same output shape)",
           color="#4f81bd")
    ax.set_xticks(list(xs), layouts)
    ax.set_ylabel("ms for all operators")
    ax.set_title(f"GhostNet 1.0x: {n} concatenations vs adds (batch 1)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _plot_latency(path: Path, latency: Dict[str, Dict[str, float]]) -> Path:
    plt = _plt()
    fig, axes = plt.subplots(1, len(latency), figsize=(3.6 * len(latency), 3.0), squeeze=False)
    for ax, (setting, ms) in zip(axes[0], latency.items()):
        bars = ax.bar(list(ms), list(ms.values()), color=["#c0504d", "#4f81bd"])
        for b, v in zip(bars, ms.values()):
            ax.annotate(f"{v:.3g}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                        fontsize=8)
        ax.set_title(f"latency, batch 1, {setting}", fontsize=9)
        ax.set_ylabel("ms")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _report_markdown(r: Dict[str, Any], history: List[Dict[str, Any]]) -> str:
    c = r["concat_vs_add"]
    rp = r["reparam"]
    tf, fu = rp["train_form"], rp["fused"]
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
        "## 1. Concatenation is not free (Sec. 3.1, Table 1)",
        "",
        f"The {c['pairs']} concatenations of GhostNet 1.0x at 224x224 (shapes collected with forward hooks), "
        "timed against element-wise adds producing the same output shape, batch 1:",
        "",
        _fmt_table(["layout", "cat (ms)", "add (ms)", "cat / add"],
                   [[lay, f"{c[lay]['cat']:.3f}", f"{c[lay]['add']:.3f}", f"{c[lay]['cat'] / c[lay]['add']:.2f}x"]
                    for lay in ("NCHW", "NHWC")], "---|---:|---:|---:|"),
        "",
        "Both have zero parameters and zero FLOPs, so any time they take is memory traffic. On this machine a "
        f"concatenation took {c['NCHW']['cat'] / c['NCHW']['add']:.2f}x the time of the add in NCHW and "
        f"{c['NHWC']['cat'] / c['NHWC']['add']:.2f}x in NHWC (channels_last), where it copies one small block "
        "per pixel instead of one large block per image. The paper measured on a phone (ARM, NHWC); an add also "
        "reads two full-size inputs, so on a desktop CPU in NCHW the concat can be the cheaper of the two.",
        "",
        "![concat vs add](concat_vs_add.png)",
        "",
        "## 2. Modules c and d fuse exactly into module e (Sec. 3.2, Fig. 3, Eq. 2)",
        "",
        "Each module: 16 channels, input (2, 16, 14, 14) in float64, BatchNorm statistics randomized before "
        "fusing (default statistics would hide errors).",
        "",
        _fmt_table(["module", "params", "params fused", "BNs left", "max abs output", "max abs difference"],
                   [[f["module"], f["params"], f["params_fused"], f["batchnorms_fused"],
                     f"{f['max_abs_output']:.3g}", f"{f['max_abs_diff']:.1e}"] for f in r["fusion"]],
                   "---|---:|---:|---:|---:|---:|"),
        "",
        "Module a (concat) and b (ReLU inside a branch) are not linear between the primary conv and the output, "
        "so they have no such fused form.",
        "",
        "## 3. Table 3: parameters and MACs (224x224)",
        "",
        _fmt_table(["RepGhostNet", "params (M)", "paper", "MACs (M)", "paper"],
                   [[f"{t['width']}x", f"{t['params_m']:.2f}", t["paper_params_m"], f"{t['macs_m']:.1f}",
                     t["paper_macs_m"]] for t in r["table3"]], "---|---:|---:|---:|---:|"),
        "",
        f"## 4. Training {r['model']} (small-input variant) on {r['data']['name']}",
        "",
        f"Paper recipe scaled down (SGD momentum 0.9, cosine schedule with linear warm-up following the elapsed "
        f"time, label smoothing, random erasing; batch {r['recipe']['batch_size']} and weight decay "
        f"{r['recipe']['weight_decay']:g} instead of the paper's 1024 and 1e-5, "
        f"which suit 300 ImageNet epochs, not minutes), stopped after {r['train_seconds']:.0f} s of training steps "
        f"({rp['epochs']} epochs, the last possibly partial). EMA of the weights is off here: over a few hundred "
        "steps an EMA still remembers the random initialisation (`python -m repghost_mini train` uses it). "
        + ("Quick mode: the test set is only evaluated at the end." if r["quick"] else ""),
        "",
        _fmt_table(["epoch", "train loss", "train acc (%)", "test top-1 (%)", "test top-5 (%)"],
                   [[h.get("epoch"), _num(h.get("train_loss")), _num(h.get("train_acc")), _num(h.get("test_top1")),
                     _num(h.get("test_top5"))] for h in history], "---:|---:|---:|---:|---:|"),
        "",
        "![training curves](curves.png)",
        "",
        "## 5. Re-parameterization: the same network, faster",
        "",
        _fmt_table(["form", "top-1 (%)", "top-5 (%)", "BatchNorms", "params", "MACs at 32x32"],
                   [["training", f"{tf['top1']:.2f}", f"{tf['top5']:.2f}", rp["batchnorms"][0], rp["params"][0],
                     rp["macs_32"][0]],
                    ["fused", f"{fu['top1']:.2f}", f"{fu['top5']:.2f}", rp["batchnorms"][1], rp["params"][1],
                     rp["macs_32"][1]]], "---|---:|---:|---:|---:|---:|"),
        "",
        f"Top-1 predictions agree on {100 * rp['agreement']:.2f}% of the {r['data']['test']} test images; largest "
        f"logit difference {rp['max_logit_diff']:.2e} (float32 rounding).",
        "",
        "![predictions](predictions.png)",
        "",
        "## 6. Latency before and after re-parameterization",
        "",
        _fmt_table(["input", "training form (ms)", "fused (ms)", "speed-up"],
                   [[k, f"{v['training form']:.2f}", f"{v['fused']:.2f}", f"{v['training form'] / v['fused']:.2f}x"]
                    for k, v in r["latency"].items()], "---|---:|---:|---:|"),
        "",
        "Median of interleaved rounds (torch.utils.benchmark), batch 1, CPU. The paper measures on a phone "
        "(Table 3); on a desktop CPU at 32x32 the per-operator overhead dominates, so the gain is smaller than the "
        "BatchNorm count alone suggests.",
        "",
        "## Time spent",
        "",
        _fmt_table(["step", "seconds"], [[k, f"{v:.1f}"] for k, v in r["seconds"].items()], "---|---:|"),
        "",
    ]
    return "\n".join(lines)


def _num(x: Any) -> str:
    return "" if x is None else f"{x:.4g}" if isinstance(x, float) else str(x)
