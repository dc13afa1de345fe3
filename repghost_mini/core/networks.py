r"""RepGhostNet (paper Sec. 3.3, Table 2) and GhostNet, at every width of Table 3.

Both networks share one skeleton: a 3x3 stem conv (16 channels, stride 2), five groups of bottlenecks
(stride 2 in the last bottleneck of each group but the last), a 1x1 conv to 960 channels, global average
pooling, a 1x1 conv to 1280 channels, dropout and the classifier. A width multiplier $\alpha$ scales every
channel count (rounded to a multiple of 4) except the 1280 of the head.

Module names follow the authors' code and timm (``conv_stem``, ``bn1``, ``blocks.i.j.ghost1`` ...), so their
checkpoints load directly (see :mod:`repghost_mini.training.checkpoints`).

**Small-input variant** (``small_input=True``), for 32x32 (CIFAR-10) and 64x64 (Tiny-ImageNet) images:
the stem conv uses stride 1, so the total stride is 16 instead of 32. A 32x32 image then reaches the last
stage as 2x2 instead of 1x1 (where the 5x5 depthwise convs would see a single pixel surrounded by zero
padding), and the first bottleneck runs at full resolution. Only the stem changes: the blocks, channels, SE
placement and parameter count are those of Table 2. Why not stride 8 (also keeping the first stride-2
bottleneck at stride 1, as CIFAR versions of ResNet/MobileNetV2 do)? That costs 3x the MACs of this variant
and, on a 5-minute CPU budget, gives fewer epochs and lower accuracy (``benchmarks/results/cifar_recipe_search.md``).
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple, Type, Union

import torch.fx
import torch.nn.functional as F
from torch import Tensor, nn

from .bottlenecks import GhostBottleneck, RepGhostBottleneck, make_divisible
from .modules import check_input

__all__ = [
    "REPGHOSTNET_CFG", "GHOSTNET_CFG", "TABLE3_WIDTHS", "ConvBnAct", "RepGhostNet", "GhostNet", "FeatureNet",
    "repghostnet", "ghostnet",
    "repghostnet_050", "repghostnet_058", "repghostnet_080", "repghostnet_100", "repghostnet_111",
    "repghostnet_130", "repghostnet_150", "repghostnet_200", "ghostnet_050", "ghostnet_100", "ghostnet_130",
]

Row = Tuple[int, int, int, float, int]  # dw kernel k, #mid, #out, SE ratio, stride

#: Table 2, grouped by stage as in the authors' code: (k, #mid, #out, SE, stride) per bottleneck.
REPGHOSTNET_CFG: List[List[Row]] = [
    [(3, 8, 16, 0, 1)],
    [(3, 24, 24, 0, 2)],
    [(3, 36, 24, 0, 1)],
    [(5, 36, 40, 0.25, 2)],
    [(5, 60, 40, 0.25, 1)],
    [(3, 120, 80, 0, 2)],
    [(3, 100, 80, 0, 1), (3, 120, 80, 0, 1), (3, 120, 80, 0, 1), (3, 240, 112, 0.25, 1), (3, 336, 112, 0.25, 1)],
    [(5, 336, 160, 0.25, 2)],
    [(5, 480, 160, 0, 1), (5, 480, 160, 0.25, 1), (5, 480, 160, 0, 1), (5, 480, 160, 0.25, 1)],
]

#: GhostNet's table (Han et al. 2020, Table 1): #mid is the full expansion size, twice RepGhostNet's.
GHOSTNET_CFG: List[List[Row]] = [
    [(3, 16, 16, 0, 1)],
    [(3, 48, 24, 0, 2)],
    [(3, 72, 24, 0, 1)],
    [(5, 72, 40, 0.25, 2)],
    [(5, 120, 40, 0.25, 1)],
    [(3, 240, 80, 0, 2)],
    [(3, 200, 80, 0, 1), (3, 184, 80, 0, 1), (3, 184, 80, 0, 1), (3, 480, 112, 0.25, 1), (3, 672, 112, 0.25, 1)],
    [(5, 672, 160, 0.25, 2)],
    [(5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1), (5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1)],
]

#: The widths of RepGhostNet in Table 3 (0.8x and 2.0x are in the authors' release and Table 7).
TABLE3_WIDTHS: Tuple[float, ...] = (0.5, 0.58, 0.8, 1.0, 1.11, 1.3, 1.5, 2.0)


class ConvBnAct(nn.Module):
    """1x1 conv + BN + ReLU (the "Conv1x1, 960" row of Table 2)."""

    conv_bn_pairs = (("conv", "bn1"),)

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, 1, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act1 = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act1(self.bn1(self.conv(x)))


def _stem_and_stages(cfg: Sequence[Sequence[Row]], block: Type[nn.Module], width: float, in_chans: int,
                     small_input: bool, head_expansion: int,
                     **block_kwargs) -> Tuple[nn.Conv2d, nn.BatchNorm2d, nn.Sequential, List[Dict]]:
    """The stem conv + BN, the stages (one ``nn.Sequential`` per group, then the 1x1 conv to 960) and the
    feature points: for each reduction (total stride), the last stage that outputs it (timm's dict keys)."""
    stem = make_divisible(16 * width, 4)
    reduction = 1 if small_input else 2
    stages: List[nn.Module] = []
    info: List[Dict] = []
    prev = stem
    for group in cfg:
        layers = []
        for k, mid, out, se, stride in group:
            out_ch, mid_ch = make_divisible(out * width, 4), make_divisible(mid * width, 4)
            layers.append(block(prev, mid_ch, out_ch, k, stride, se_ratio=se, **block_kwargs))
            prev = out_ch
        reduction *= group[0][4]
        stages.append(nn.Sequential(*layers))
        info.append(dict(num_chs=prev, reduction=reduction, module=f"blocks.{len(stages) - 1}"))
    last = make_divisible(cfg[-1][-1][1] * width * head_expansion, 4)
    stages.append(nn.Sequential(ConvBnAct(prev, last)))
    info.append(dict(num_chs=last, reduction=reduction, module=f"blocks.{len(stages) - 1}"))
    # keep the last stage of each reduction: ends of "stages" in the detection sense (C2..C5 of ResNet)
    points = [d for d, nxt in zip(info, info[1:] + [None], strict=True)
              if nxt is None or nxt["reduction"] != d["reduction"]]
    conv_stem = nn.Conv2d(in_chans, stem, 3, 1 if small_input else 2, 1, bias=False)
    return conv_stem, nn.BatchNorm2d(stem), nn.Sequential(*stages), points


def _check_network_args(width: float, num_classes: int, dropout: float) -> None:
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width < float("inf"):
        raise ValueError(f"width must be a positive number, finite (Table 3 uses {TABLE3_WIDTHS}), got {width!r}.")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")


def check_images(x: Tensor, in_chans: int, owner: str) -> None:
    """:func:`~repghost_mini.core.modules.check_input` at a network's entry, with a hint about image channels."""
    check_input(x, in_chans, owner, "images", "convert grayscale to RGB or set in_chans.")


torch.fx.wrap("check_images")  # traced as one call, like check_input


class _GhostNetSkeleton(nn.Module):
    """Stem -> bottleneck groups -> 1x1 conv -> pool -> 1x1 conv head -> dropout -> classifier.

    ``feature_info``: one dict per reduction 2, 4, 8, 16, 32 (1 ... 16 with ``small_input``) with the
    channels (``num_chs``), the total stride (``reduction``) and the stage that outputs it (``module``),
    in timm's format; ``features_only=True`` in :func:`repghostnet` / :func:`ghostnet` returns those maps.
    """

    conv_bn_pairs = (("conv_stem", "bn1"),)
    #: Final 1x1 conv channels = last #mid * this (RepGhostNet doubles its thinner #mid back to 960).
    head_expansion = 1

    def __init__(self, cfg: Sequence[Sequence[Row]], block: Type[nn.Module], width: float, num_classes: int,
                 in_chans: int, dropout: float, small_input: bool, **block_kwargs) -> None:
        super().__init__()
        _check_network_args(width, num_classes, dropout)
        self.in_chans, self.num_classes, self.dropout, self.width = in_chans, num_classes, dropout, width
        self.owner = type(self).__name__
        self.conv_stem, self.bn1, self.blocks, self.feature_info = _stem_and_stages(
            cfg, block, width, in_chans, small_input, self.head_expansion, **block_kwargs)
        self.act1 = nn.ReLU(inplace=True)
        self.num_features = self.feature_info[-1]["num_chs"]
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_head = nn.Conv2d(self.num_features, 1280, 1, 1, 0, bias=True)
        self.act2 = nn.ReLU(inplace=True)
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Linear(1280, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, in_chans, H, W)`` -> ``(N, 960*width, H/32, W/32)`` (``H/16`` with ``small_input``)."""
        check_images(x, self.in_chans, self.owner)
        return self.blocks(self.act1(self.bn1(self.conv_stem(x))))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Feature map from :meth:`forward_features` -> ``(N, num_classes)`` logits (``(N, 1280)`` if
        ``pre_logits``): pool, 1x1 conv to 1280 + ReLU, dropout, classifier (timm's split)."""
        x = self.flatten(self.act2(self.conv_head(self.global_pool(x))))
        if self.dropout > 0:
            x = F.dropout(x, p=self.dropout, training=self.training)
        return x if pre_logits else self.classifier(x)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_chans, H, W)`` images -> ``(N, num_classes)`` logits."""
        return self.forward_head(self.forward_features(x))


class FeatureNet(nn.Module):
    """The multi-scale feature maps of a RepGhostNet / GhostNet: ``features_only=True`` (timm's naming).

    Keeps the network's stem and the stages up to the deepest requested output (same module names, so a
    classifier checkpoint loads with ``strict=False``: only the head's keys are unused) and returns a list of
    maps, one per entry of ``out_indices`` into the network's ``feature_info`` (index ``i`` has reduction
    ``2 ** (i + 1)``, half that with ``small_input``). ``feature_info`` here lists the returned maps only.
    Unlike timm, which taps the first block of each resolution, each map is the *last* stage at its
    resolution (as ResNet's C2-C5), so the stride-32 map is the 1x1 conv to 960 channels.
    """

    conv_bn_pairs = (("conv_stem", "bn1"),)

    def __init__(self, net: _GhostNetSkeleton, out_indices: Sequence[int] = (1, 2, 3, 4)) -> None:
        super().__init__()
        n = len(net.feature_info)
        out_indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        if not out_indices or any(not isinstance(i, int) or not 0 <= i < n for i in out_indices) \
                or sorted(set(out_indices)) != out_indices:
            raise ValueError(f"out_indices must be increasing distinct indices into the {n} feature levels "
                             f"(0 ... {n - 1}: reductions {[d['reduction'] for d in net.feature_info]}), "
                             f"got {out_indices!r}.")
        self.in_chans, self.owner = net.in_chans, type(self).__name__
        self.out_indices = tuple(out_indices)
        self.feature_info = [dict(net.feature_info[i], index=i) for i in out_indices]
        self.out_stages = [int(d["module"].split(".")[1]) for d in self.feature_info]
        self.conv_stem, self.bn1, self.act1 = net.conv_stem, net.bn1, net.act1
        self.blocks = nn.Sequential(*list(net.blocks)[: self.out_stages[-1] + 1])
        self.config: Dict = dict(getattr(net, "config", {}), features_only=True, out_indices=self.out_indices)

    def channels(self) -> List[int]:
        """Channels of each returned map (timm's ``feature_info.channels()``)."""
        return [d["num_chs"] for d in self.feature_info]

    def reduction(self) -> List[int]:
        """Total stride of each returned map (timm's ``feature_info.reduction()``)."""
        return [d["reduction"] for d in self.feature_info]

    def forward(self, x: Tensor) -> List[Tensor]:
        """``(N, in_chans, H, W)`` -> list of ``(N, channels()[i], H / reduction()[i], W / reduction()[i])``."""
        check_images(x, self.in_chans, self.owner)
        x = self.act1(self.bn1(self.conv_stem(x)))
        out: List[Tensor] = []
        for i, stage in enumerate(self.blocks):
            x = stage(x)
            if i in self.out_stages:
                out.append(x)
        return out


class RepGhostNet(_GhostNetSkeleton):
    """RepGhostNet of Table 2 in training form; :func:`repghost_mini.reparameterize` makes the fast one.

    ``branches`` (Table 6), ``relu_after_dw`` ("+ReLU" of Table 6) and ``shortcut`` (Table 7) select the
    ablation variants; the defaults are the paper's model.
    """

    head_expansion = 2

    def __init__(self, width: float = 1.0, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.2,
                 small_input: bool = False, branches: Sequence[str] = ("bn",), relu_after_dw: bool = False,
                 shortcut: bool = True, cfg: Sequence[Sequence[Row]] = REPGHOSTNET_CFG) -> None:
        super().__init__(cfg, RepGhostBottleneck, width, num_classes, in_chans, dropout, small_input,
                         branches=tuple(branches), relu_after_dw=relu_after_dw, shortcut=shortcut)
        self.config: Dict = dict(width=width, num_classes=num_classes, in_chans=in_chans, dropout=dropout,
                                 small_input=small_input, branches=tuple(branches), relu_after_dw=relu_after_dw,
                                 shortcut=shortcut)


class GhostNet(_GhostNetSkeleton):
    """GhostNet (Han et al. 2020), the baseline of Table 3, built from Ghost bottlenecks."""

    def __init__(self, width: float = 1.0, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.2,
                 small_input: bool = False, shortcut: bool = True,
                 cfg: Sequence[Sequence[Row]] = GHOSTNET_CFG) -> None:
        super().__init__(cfg, GhostBottleneck, width, num_classes, in_chans, dropout, small_input,
                         shortcut=shortcut)
        self.config: Dict = dict(width=width, num_classes=num_classes, in_chans=in_chans, dropout=dropout,
                                 small_input=small_input, shortcut=shortcut)


def repghostnet(width: float = 1.0, num_classes: int = 1000, features_only: bool = False,
                out_indices: Sequence[int] = (1, 2, 3, 4), **variant) -> Union[RepGhostNet, FeatureNet]:
    """RepGhostNet ``width``x (training form). ``variant``: in_chans, dropout, small_input, branches,
    relu_after_dw, shortcut -- see :class:`RepGhostNet`. ``features_only=True``: a :class:`FeatureNet`
    returning the maps at ``out_indices`` (default: reductions 4, 8, 16, 32)."""
    net = RepGhostNet(width, num_classes, **variant)
    return FeatureNet(net, out_indices) if features_only else net


def ghostnet(width: float = 1.0, num_classes: int = 1000, features_only: bool = False,
             out_indices: Sequence[int] = (1, 2, 3, 4), **variant) -> Union[GhostNet, FeatureNet]:
    """GhostNet ``width``x. ``variant``: in_chans, dropout, small_input, shortcut; ``features_only`` and
    ``out_indices`` as in :func:`repghostnet`."""
    net = GhostNet(width, num_classes, **variant)
    return FeatureNet(net, out_indices) if features_only else net


def repghostnet_050(**kw) -> RepGhostNet:
    """RepGhostNet 0.5x (Table 3: 2.3M params, 43M MACs)."""
    return repghostnet(0.5, **kw)


def repghostnet_058(**kw) -> RepGhostNet:
    """RepGhostNet 0.58x (Table 3: 2.5M params, 60M MACs)."""
    return repghostnet(0.58, **kw)


def repghostnet_080(**kw) -> RepGhostNet:
    """RepGhostNet 0.8x (authors' release: 3.3M params, 96M MACs)."""
    return repghostnet(0.8, **kw)


def repghostnet_100(**kw) -> RepGhostNet:
    """RepGhostNet 1.0x (Table 3: 4.1M params, 142M MACs)."""
    return repghostnet(1.0, **kw)


def repghostnet_111(**kw) -> RepGhostNet:
    """RepGhostNet 1.11x (Table 3: 4.5M params, 170M MACs)."""
    return repghostnet(1.11, **kw)


def repghostnet_130(**kw) -> RepGhostNet:
    """RepGhostNet 1.3x (Table 3: 5.5M params, 231M MACs)."""
    return repghostnet(1.3, **kw)


def repghostnet_150(**kw) -> RepGhostNet:
    """RepGhostNet 1.5x (Table 3: 6.6M params, 301M MACs)."""
    return repghostnet(1.5, **kw)


def repghostnet_200(**kw) -> RepGhostNet:
    """RepGhostNet 2.0x (authors' release: 9.8M params, 516M MACs)."""
    return repghostnet(2.0, **kw)


def ghostnet_050(**kw) -> GhostNet:
    """GhostNet 0.5x (Table 3: 2.6M params, 42M MACs)."""
    return ghostnet(0.5, **kw)


def ghostnet_100(**kw) -> GhostNet:
    """GhostNet 1.0x (Table 3: 5.2M params, 141M MACs)."""
    return ghostnet(1.0, **kw)


def ghostnet_130(**kw) -> GhostNet:
    """GhostNet 1.3x (Table 3: 7.3M params, 226M MACs)."""
    return ghostnet(1.3, **kw)
