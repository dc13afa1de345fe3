r"""Figures for the notebooks: boxes-and-arrows diagrams of the Fig. 3 modules and the NCHW/NHWC memory picture.

:func:`module_structure` reads the structure of a module *from the module itself* (which branches it has, where
its ReLUs are, whether the branches meet in a concat or an add), and :func:`draw_module` draws that structure
like Fig. 3: as in the paper the input 1x1 convolution is omitted, so the diagram starts at $x_1$, the output
of the primary conv. :func:`draw_memory_layout` draws the contiguous blocks a concatenation copies (Sec. 3.1).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple, Union

from torch import Tensor, nn

from ..core.modules import (
    MODULE_VARIANTS,
    GhostAddModule,
    GhostModule,
    RepGhostInferenceModule,
    RepGhostModule,
    build_module,
)

__all__ = ["ModuleStructure", "module_structure", "draw_module", "draw_memory_layout", "memory_order",
           "contiguous_copies", "VARIANT_TITLES"]

#: Short titles of Fig. 3's panels.
VARIANT_TITLES = {
    "a": "a) Ghost module",
    "b": "b) cat -> add",
    "c": "c) ReLU moved after add",
    "d": "d) RepGhost (training)",
    "e": "e) RepGhost (inference)",
}

_BRANCH_LABELS = {"identity": None, "bn": "BN", "dconv1x1": "1x1 dconv"}


@dataclass
class ModuleStructure:
    """What Fig. 3 shows of a module: the main branch ``dconv`` (k x k depthwise conv, + BN unless fused),
    an optional ReLU right after it, the side branches reusing $x_1$, the merge op and a ReLU after the merge."""

    dw_size: int
    dconv_has_bn: bool
    relu_after_dconv: bool
    side_branches: List[str] = field(default_factory=list)  # "identity", "bn", "dconv1x1"
    merge: Optional[str] = None  # "cat", "add" or None
    relu_after_merge: bool = False

    @property
    def fusable(self) -> bool:
        """True when everything between $x_1$ and the last ReLU is linear, i.e. it folds into one conv (Eq. 2)."""
        return self.merge != "cat" and not self.relu_after_dconv


def module_structure(module: nn.Module) -> ModuleStructure:
    """The Fig. 3 structure of a module of :data:`repghost_mini.core.MODULE_VARIANTS`, read from its layers."""
    if isinstance(module, GhostModule):  # a: x1 -> dconv -> [ReLU] -> cat(x1, .)
        dw = module.cheap_operation[0]
        return ModuleStructure(dw.kernel_size[0], True, isinstance(module.cheap_operation[2], nn.ReLU),
                               ["identity"], "cat", False)
    if isinstance(module, GhostAddModule):  # b: x1 + ReLU(dconv(x1))
        dw = module.cheap_operation[0]
        return ModuleStructure(dw.kernel_size[0], True, isinstance(module.cheap_operation[2], nn.ReLU),
                               ["identity"], "add", False)
    if isinstance(module, RepGhostModule):  # c, d: ReLU(dconv(x1) + branches(x1))
        branches = list(module.branches)
        return ModuleStructure(module.dw_size, True, isinstance(module.cheap_relu, nn.ReLU), branches,
                               "add" if branches else None, isinstance(module.relu, nn.ReLU))
    if isinstance(module, RepGhostInferenceModule):  # e: ReLU(conv*(x1))
        return ModuleStructure(module.dw_size, False, False, [], None, isinstance(module.relu, nn.ReLU))
    raise TypeError(f"module_structure knows the Fig. 3 modules {sorted(MODULE_VARIANTS)}, got "
                    f"{type(module).__name__}; build one with repghost_mini.core.build_module().")


def _box(ax, x: float, y: float, text: str, color: str, width: float = 0.9, height: float = 0.42) -> None:
    from matplotlib.patches import FancyBboxPatch
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.02,rounding_size=0.08", fc=color, ec="black", lw=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=9)


def _arrow(ax, start: Tuple[float, float], end: Tuple[float, float]) -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="-|>", lw=1.1, color="black",
                                                          shrinkA=0, shrinkB=0))


def _line(ax, *points: Tuple[float, float]) -> None:
    xs, ys = zip(*points, strict=True)
    ax.plot(xs, ys, color="black", lw=1.1)


def draw_module(variant: Union[str, nn.Module], ax=None, title: Optional[str] = None, **module_kwargs):
    """Draw module ``variant`` of Fig. 3 (a letter ``"a"``..``"e"``, or a built module) on ``ax``; returns ``ax``.

    A letter builds ``build_module(variant, 8, 8, **module_kwargs)`` (so e.g. ``draw_module("d",
    branches=("identity", "bn"))`` draws a Table 6 variant and ``relu_after_dw=True`` its "+ReLU" row). The
    drawing is derived from :func:`module_structure`: grey = linear op, orange = ReLU, blue = merge. The
    footer says whether the module folds into module e.
    """
    import matplotlib.pyplot as plt

    if isinstance(variant, str):
        if variant not in MODULE_VARIANTS:
            raise ValueError(f"unknown module variant {variant!r}; choose one of {sorted(MODULE_VARIANTS)} (Fig. 3).")
        module = build_module(variant, 8, 8, **module_kwargs)
        title = title if title is not None else VARIANT_TITLES[variant]
    elif isinstance(variant, nn.Module):
        if module_kwargs:
            raise ValueError("module_kwargs are only used when variant is a letter; build the module yourself "
                             "with those arguments instead.")
        module = variant
        title = title if title is not None else type(module).__name__
    else:
        raise TypeError(f"variant must be a letter 'a'..'e' or a Fig. 3 module, got {type(variant).__name__}.")
    s = module_structure(module)
    if ax is None:
        _, ax = plt.subplots(figsize=(2.6, 4.2))
    lin, act, merge_c = "#dddddd", "#f6b26b", "#9fc5e8"
    side = [b for b in s.side_branches]
    n_cols = 1 + len(side)
    main_x = 0.0
    side_x = [1.25 * (i + 1) for i in range(len(side))]
    y_in, y = 5.0, 4.0
    _box(ax, main_x, y_in, "$x_1$", "white", width=0.6)
    dconv_label = f"{s.dw_size}x{s.dw_size} dconv" + ("" if s.dconv_has_bn else "\n(+bias)")
    _arrow(ax, (main_x, y_in - 0.21), (main_x, y + 0.21))
    _box(ax, main_x, y, dconv_label, lin, width=1.05)
    y_main_end = y - 0.21
    if s.relu_after_dconv:
        y -= 0.9
        _arrow(ax, (main_x, y_main_end), (main_x, y + 0.21))
        _box(ax, main_x, y, "ReLU", act)
        y_main_end = y - 0.21
    y_merge = y - 1.0 if s.merge else None
    for bx, branch in zip(side_x, side, strict=True):
        _line(ax, (main_x + 0.3, y_in), (bx, y_in))
        label = _BRANCH_LABELS[branch]
        y_branch_end = y_in
        if label is not None:
            _arrow(ax, (bx, y_in), (bx, 4.0 + 0.21))
            _box(ax, bx, 4.0, label, lin, width=1.05)
            y_branch_end = 4.0 - 0.21
        if s.merge:
            _line(ax, (bx, y_branch_end), (bx, y_merge))
            _arrow(ax, (bx, y_merge), (main_x + 0.24, y_merge))
    if s.merge:
        _arrow(ax, (main_x, y_main_end), (main_x, y_merge + 0.21))
        _box(ax, main_x, y_merge, "cat" if s.merge == "cat" else "+", merge_c, width=0.48)
        y, y_end = y_merge, y_merge - 0.21
    else:
        y_end = y_main_end
    if s.relu_after_merge:
        y -= 0.9
        _arrow(ax, (main_x, y_end), (main_x, y + 0.21))
        _box(ax, main_x, y, "ReLU", act)
        y_end = y - 0.21
    y -= 0.9
    _arrow(ax, (main_x, y_end), (main_x, y + 0.21))
    _box(ax, main_x, y, "$y$", "white", width=0.6)
    ax.text(main_x + 0.55 * (n_cols - 1), y - 0.6, "fuses into e" if s.fusable else "cannot fuse",
            ha="center", va="center", fontsize=8, color="green" if s.fusable else "firebrick")
    ax.set_xlim(-0.8, side_x[-1] + 0.7 if side_x else 0.8)
    ax.set_ylim(y - 0.9, y_in + 0.5)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    return ax


def memory_order(tensor: Tensor) -> Tensor:
    """The elements of ``tensor`` in the order they sit in memory (reads its storage with unit stride), e.g.
    ``memory_order(x.contiguous(memory_format=torch.channels_last))`` walks NHWC."""
    import torch

    if not (tensor.is_contiguous() or tensor.is_contiguous(memory_format=torch.channels_last)):
        raise ValueError("memory_order needs a dense tensor: call .contiguous() (NCHW) or "
                         ".contiguous(memory_format=torch.channels_last) (NHWC) first.")
    return torch.as_strided(tensor, (tensor.numel(),), (1,), tensor.storage_offset())


def contiguous_copies(channels: Tuple[int, int], height: int, width: int, batch: int,
                      channels_last: bool) -> int:
    r"""How many contiguous blocks ``torch.cat`` of $M_1$ (N, $C_1$, H, W) and $M_2$ (N, $C_2$, H, W) along channels
    must copy: the runs of elements from the same source map in the memory order of the output (Sec. 3.1).
    $2N$ in NCHW, $2NHW$ in NHWC."""
    import torch

    c1, c2 = channels
    if min(c1, c2, height, width, batch) < 1:
        raise ValueError(f"channels, height, width and batch must be >= 1, got {channels}, {height}, {width}, "
                         f"{batch}.")
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    tag = torch.cat([torch.zeros(batch, c1, height, width), torch.ones(batch, c2, height, width)], dim=1)
    order = memory_order(tag.contiguous(memory_format=fmt))
    return int((order[1:] != order[:-1]).sum()) + 1


def draw_memory_layout(channels: Tuple[int, int] = (3, 2), height: int = 2, width: int = 2, batch: int = 2,
                       axes=None):
    r"""Sec. 3.1: the concatenation of $M_1$ (``channels[0]`` channels) and $M_2$ (``channels[1]``) in memory order,
    NCHW (top) and NHWC (bottom). Each cell is one number coloured by its source map (read from real tensors with
    :func:`memory_order`); black frames are the contiguous blocks a concatenation copies ($C_i H W$ numbers in
    NCHW, $C_i$ numbers in NHWC). An add of same-shape tensors is a single block in both layouts. Returns the axes."""
    import matplotlib.pyplot as plt
    import torch
    from matplotlib.patches import Rectangle

    c1, c2 = channels
    counts = {cl: contiguous_copies(channels, height, width, batch, cl) for cl in (False, True)}
    if axes is None:
        _, axes = plt.subplots(2, 1, figsize=(9, 2.8), constrained_layout=True)
    tag = torch.cat([torch.zeros(batch, c1, height, width), torch.ones(batch, c2, height, width)], dim=1)
    colors = ("#6fa8dc", "#f6b26b")
    for ax, channels_last in zip(axes, (False, True), strict=True):
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        order = memory_order(tag.contiguous(memory_format=fmt)).tolist()
        start = 0
        for i, src in enumerate(order):
            ax.add_patch(Rectangle((i, 0), 1, 1, fc=colors[int(src)], ec="white", lw=0.5))
            if i + 1 == len(order) or order[i + 1] != src:
                ax.add_patch(Rectangle((start, 0), i + 1 - start, 1, fill=False, ec="black", lw=1.5))
                start = i + 1
        ax.set_xlim(0, len(order))
        ax.set_ylim(-0.1, 1.1)
        ax.set_yticks([])
        ax.set_xticks([])
        layout = "NHWC (channels_last)" if channels_last else "NCHW"
        ax.set_title(f"{layout}: Cat([$M_1$, $M_2$]) in memory order, {counts[channels_last]} contiguous copies "
                     f"(blue from $M_1$, orange from $M_2$)", fontsize=9)
    return axes
