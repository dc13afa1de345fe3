"""Fig. 1 in full: the paper's ImageNet top-1 (Table 3) against latency measured here, for every Table 3 model
that this package or timm builds, and how well the latency *ranking* here matches the paper's phone column.

The paper's Fig. 1 plots top-1 against its MNN latency on an ARM phone. Latency needs no trained weights, so every
model below is built with random weights (:func:`repghost_mini.training.build_named_model`) and timed on this
machine (e.g. with :func:`repghost_mini.deploy.benchmark_models`); :func:`figure1_comparison` sets the result
beside Table 3 and computes Spearman's rank correlation between the two latency columns.

Not timed here: MobileNetV2 0.6x, MobileNeXt, ProxylessNAS (:data:`NOT_BUILT` says why for each). ShuffleNetV2 has
no latency in Table 3, so it cannot enter the ranking.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..paper import QUOTES, table3

__all__ = ["FIGURE1_MODELS", "NOT_BUILT", "Figure1Row", "Figure1", "rank_correlation", "figure1_comparison",
           "plot_figure1"]

#: Table 3 row (the arguments of :func:`repghost_mini.paper.table3`) -> the registry name of the model timed here
#: (inference form: RepGhostNets fused, MobileOne re-parameterized by timm).
FIGURE1_MODELS: Dict[Tuple[str, float], str] = {
    **{("repghostnet", w): f"repghostnet_{s}_fused" for w, s in ((0.5, "050"), (0.58, "058"), (1.0, "100"),
                                                                 (1.11, "111"), (1.3, "130"), (1.5, "150"))},
    **{("ghostnet", w): f"ghostnet_{s}" for w, s in ((0.5, "050"), (1.0, "100"), (1.3, "130"))},
    ("mobilenetv3_small", 0.75): "timm:mobilenetv3_small_075",
    ("mobilenetv3_small", 1.0): "timm:mobilenetv3_small_100",
    ("mobilenetv3_large", 0.75): "timm:mobilenetv3_large_075",
    ("mobilenetv3_large", 1.0): "timm:mobilenetv3_large_100",
    ("mobilenetv2", 0.35): "timm:mobilenetv2_035",
    ("mobilenetv2", 1.0): "timm:mobilenetv2_100",
    ("mobileone_s0", 1.0): "timm_mobileone_s0_reparam",
    ("efficientnet_b0", 1.0): "timm:efficientnet_b0",
}

#: Table 3 rows with a latency that are not timed here, and why.
NOT_BUILT: Dict[Tuple[str, float], str] = {
    ("mobilenetv2", 0.6): "timm has no 0.6x MobileNetV2 preset (torchvision's MobileNetV2(width_mult=0.6) would "
                          "build it; the registry builds timm models only)",
    ("mobilenext", 0.35): "MobileNeXt is in neither timm nor torchvision",
    ("mobilenext", 0.75): "MobileNeXt is in neither timm nor torchvision",
    ("mobilenext", 1.0): "MobileNeXt is in neither timm nor torchvision",
    ("proxylessnas", 1.0): "ProxylessNAS is in neither timm nor torchvision",
}


def label(row: Tuple[str, float]) -> str:
    """The model's name as Table 3 prints it, e.g. ``"MobileNetV3 Small 0.75×"`` (read from its quote)."""
    words = QUOTES[f"table3.{row[0]}_{row[1]:g}x"].text.split()[:-5]
    return " ".join(w for w in words if not (w.startswith("[") and w.endswith("]")))


def rank_correlation(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation of two equally long sequences (ties get their average rank): 1 when both
    order the items the same way, -1 when one reverses the other."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 3:
        raise ValueError(f"rank_correlation needs two sequences of the same length >= 3, got {a.shape} and {b.shape}.")
    ra, rb = _ranks(a), _ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        raise ValueError("rank_correlation is undefined when all values of one sequence are equal.")
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties averaged."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


@dataclass(frozen=True)
class Figure1Row:
    """One model of Fig. 1: Table 3's numbers and the latency measured here, with both latency ranks."""

    label: str
    name: str
    top1: float
    paper_ms: float
    here_ms: float
    paper_rank: float
    here_rank: float


@dataclass(frozen=True)
class Figure1:
    """:func:`figure1_comparison`'s result: one row per model (in Table 3's latency order), Spearman's rank
    correlation ``rho`` over them, and ``movers``: the rows whose rank here differs from the paper's by at least
    ``min_move`` places, the largest move first."""

    rows: List[Figure1Row]
    rho: float
    movers: List[Figure1Row]


def figure1_comparison(latency_ms: Mapping[str, float], min_move: int = 2) -> Figure1:
    """Set latencies measured here (registry name -> ms, e.g. the mean over interleaved rounds) beside Table 3.

    Every model of :data:`FIGURE1_MODELS` that ``latency_ms`` holds enters (at least three are needed)."""
    rows = []
    for row, name in FIGURE1_MODELS.items():
        if name in latency_ms:
            paper = table3(*row)
            rows.append((label(row), name, paper["top1"], paper["latency_ms"], float(latency_ms[name])))
    if len(rows) < 3:
        raise ValueError(f"figure1_comparison needs latencies of at least 3 models of FIGURE1_MODELS, got {len(rows)}; "
                         "time them first (their registry names are the values of FIGURE1_MODELS).")
    paper_ranks = _ranks(np.array([r[3] for r in rows]))
    here_ranks = _ranks(np.array([r[4] for r in rows]))
    full = sorted((Figure1Row(*r, paper_rank=float(p), here_rank=float(h)) for r, p, h in
                   zip(rows, paper_ranks, here_ranks, strict=True)), key=lambda r: r.paper_rank)
    movers = sorted((r for r in full if abs(r.here_rank - r.paper_rank) >= min_move),
                    key=lambda r: -abs(r.here_rank - r.paper_rank))
    rho = rank_correlation([r.paper_ms for r in full], [r.here_ms for r in full])
    return Figure1(full, rho, movers)


def _family(text: str) -> str:
    for family in ("RepGhostNet", "GhostNet", "MobileNetV3", "MobileNetV2"):
        if text.startswith(family):
            return family
    return "other"


def plot_figure1(result: Figure1, here_label: str = "latency measured here (ms)", axes: Optional[Sequence] = None):
    """Two panels with the same y axis (Table 3's top-1): x = the paper's phone latency, and x = the latency
    measured here; one marker style per family, every point labelled. Returns the figure."""
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), dpi=100, sharey=True)
    fig = axes[0].figure
    styles = {"RepGhostNet": "o-", "GhostNet": "s--", "MobileNetV3": "^:", "MobileNetV2": "v:", "other": "D"}
    for ax, attr, xlabel in ((axes[0], "paper_ms", "the paper: MNN on an ARM phone, 1 thread (ms)"),
                             (axes[1], "here_ms", here_label)):
        for family, style in styles.items():
            members = sorted((r for r in result.rows if _family(r.label) == family), key=lambda r: getattr(r, attr))
            if not members:
                continue
            xs, ys = [getattr(r, attr) for r in members], [r.top1 for r in members]
            if family == "other":  # unrelated models: points, no line
                ax.plot(xs, ys, style, linestyle="none", label="MobileOne-S0, EfficientNet-B0")
            else:
                ax.plot(xs, ys, style, label=family)
            for r, x, y in zip(members, xs, ys, strict=True):
                ax.annotate(r.label.replace("MobileNetV3 ", "").replace("×", "x"), (x, y), textcoords="offset points",
                            xytext=(4, -9), fontsize=6.5)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("ImageNet top-1 (%), the paper's Table 3")
    axes[0].set_title("the paper's Fig. 1 (Table 3's numbers)", fontsize=10)
    axes[1].set_title(f"same top-1, latency here (Spearman's rho {result.rho:.2f}, {len(result.rows)} models)",
                      fontsize=10)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig
