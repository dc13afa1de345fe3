r"""Table 5: ResNet-50 built from Ghost modules (Ghost-Res50, GhostNet [14]) and from RepGhost modules (RepGhost-Res50).

The paper says only "We replace the Ghost module in Ghost-Res50 with our RepGhost module to get RepGhost-Res50"
(Sec. 4.3) and gives the counts of Table 5. The construction below is derived from those counts; torchvision's
``ResNet`` (stem, four stages of 3, 4, 6, 3 bottlenecks, average pool, classifier) is the skeleton.

Which convolutions are replaced
    Every convolution inside the bottlenecks: ``conv1`` (1x1), ``conv2`` (3x3, carrying the stage's stride, as
    in torchvision's ResNet v1.5) and ``conv3`` (1x1), each with its BatchNorm (and ReLU), and the 1x1 strided
    projection of each stage's first block (``downsample``). The 7x7 stem conv and the classifier stay plain.
    A replaced conv keeps its kernel size and stride in the module's primary conv (``kernel_size``, ``stride``
    of :class:`~.modules.GhostModule` / :class:`~.modules.RepGhostModule`); the module's cheap operation is a
    3x3 depthwise conv. The modules that replace ``conv3`` and ``downsample`` have no ReLU (the block's ReLU
    comes after the residual add). Parameters, ResNet-50 = 25.6 M:

    ==========================  ==================  ===============================
     Ghost-Res50                 s = 2               s = 4
    ==========================  ==================  ===============================
     projection kept plain       15.3 M              10.2 M
     projection a Ghost module   **14.0 M**          **8.2 M**      (Table 5: 14.0, 8.2)
    ==========================  ==================  ===============================

    so GhostNet's Ghost-Res50 replaces the projections too (these counts are the ones Table 5 prints; GhostNet's
    own paper prints 13.0 M and 6.5 M for Ghost-ResNet-50, which count something else).

What $s$ means for a RepGhost module
    A Ghost module with ratio $s$ makes $C/s$ intrinsic maps with its primary conv and concatenates
    $(s-1)C/s$ cheap maps to reach $C$. A RepGhost module *adds* its cheap maps instead, so its output has as
    many channels as its primary conv: with the same "$C/s$ from the primary conv", a RepGhost module with ratio
    $s$ outputs $C/s$ channels, and every width of the network (each bottleneck's middle and output, hence the
    classifier's input) becomes $C/s$ (rounded to a multiple of 4 with :func:`~.bottlenecks.make_divisible`).
    Both the input and the output of each primary conv shrink, so its parameters and FLOPs fall by about
    $s^2$, where a Ghost module's fall by $s$: RepGhost $s=1.4$ ($1.4^2 \approx 2$) sits beside Ghost $s=2$, and
    RepGhost $s=2$ beside Ghost $s=4$, exactly the pairs of Table 5 with equal FLOPs (2.2 B, 1.2 B). The stem
    (3 -> 64) is not a Ghost module in Ghost-Res50, so it stays as it is. Parameters: RepGhost $s=2$: **7.1 M**
    (Table 5: 7.1); $s=1.4$: **13.7 M** (Table 5: 13.2, 3.9% more). No rounding of $C/1.4$ (nearest, up, down,
    multiples of 2, 4, 8 or 16) nor keeping the projections plain brings $s=1.4$ within 3% of 13.2 M; the paper
    does not say what it did differently, and the match stays within 5%.

FLOPs are multiply-adds (``repghost_mini.measure.count_macs``, conv and linear layers) at 224x224, as in Table 3:

==========================  ================  ================
 model                       ours              Table 5
==========================  ================  ================
 Ghost-Res50 (s=2)           14.0 M, 2.15 B    14.0 M, 2.2 B
 RepGhost-Res50 (s=1.4)      13.7 M, 2.21 B    13.2 M, 2.2 B
 Ghost-Res50 (s=4)           8.2 M, 1.18 B     8.2 M, 1.2 B
 RepGhost-Res50 (s=2)        7.1 M, 1.17 B     7.1 M, 1.2 B
==========================  ================  ================

Fusion: every RepGhost module becomes module e and the stem's BatchNorm is folded into its conv
(:attr:`ResNet50.conv_bn_pairs`), so :func:`~.reparam.reparameterize` leaves no BatchNorm in RepGhost-Res50.
"""
from __future__ import annotations

from typing import Callable, Dict, Sequence

import torch
from torch import Tensor, nn
from torchvision.models.resnet import Bottleneck, ResNet

from .bottlenecks import make_divisible
from .modules import GhostModule, RepGhostModule
from .reparam import randomize_bn_stats_, reparameterize

__all__ = ["ModuleBottleneck", "ResNet50", "ghost_resnet50", "repghost_resnet50", "table5_model", "TABLE5_MODELS",
           "table5_inference_models"]

#: Table 5's rows, in the paper's order: name -> (builder, s).
TABLE5_MODELS = {
    "Ghost-Res50 (s=2)": ("ghost", 2),
    "RepGhost-Res50 (s=1.4)": ("repghost", 1.4),
    "Ghost-Res50 (s=4)": ("ghost", 4),
    "RepGhost-Res50 (s=2)": ("repghost", 2),
}

#: ``make(in_channels, out_channels, kernel_size, stride, relu)`` -> a module replacing conv + BN (+ ReLU).
ModuleFactory = Callable[[int, int, int, int, bool], nn.Module]


class ModuleBottleneck(nn.Module):
    r"""ResNet's bottleneck with each conv + BN (+ ReLU) a module:
    $y = \mathrm{ReLU}(m_3(m_2(m_1(x))) + \mathrm{proj}(x))$, $\mathrm{proj}$ = identity or ``downsample``.

    Input ``(N, in_channels, H, W)`` -> ``(N, out_channels, H / stride, W / stride)``.
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, stride: int,
                 make: ModuleFactory) -> None:
        super().__init__()
        self.conv1 = make(in_channels, mid_channels, 1, 1, True)
        self.conv2 = make(mid_channels, mid_channels, 3, stride, True)
        self.conv3 = make(mid_channels, out_channels, 1, 1, False)
        needs_projection = stride != 1 or in_channels != out_channels
        self.downsample = make(in_channels, out_channels, 1, stride, False) if needs_projection else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.conv3(self.conv2(self.conv1(x))) + self.downsample(x))


class ResNet50(ResNet):
    """torchvision's ResNet-50 whose bottlenecks are :class:`ModuleBottleneck` s; the stem conv -> BN pair is named
    in :attr:`conv_bn_pairs` so that :func:`~.reparam.reparameterize` folds it too."""

    conv_bn_pairs = (("conv1", "bn1"),)

    def __init__(self, make: ModuleFactory, width: Callable[[int], int] = int, num_classes: int = 1000) -> None:
        super().__init__(Bottleneck, [3, 4, 6, 3], num_classes=num_classes)
        in_channels = self.conv1.out_channels  # the stem stays at 64 channels
        for stage_name in ("layer1", "layer2", "layer3", "layer4"):
            blocks = []
            for block in getattr(self, stage_name):
                mid, out = width(block.conv1.out_channels), width(block.conv3.out_channels)
                blocks.append(ModuleBottleneck(in_channels, mid, out, block.conv2.stride[0], make))
                in_channels = out
            setattr(self, stage_name, nn.Sequential(*blocks))
        self.fc = nn.Linear(in_channels, num_classes)


def ghost_resnet50(ratio: int = 2, num_classes: int = 1000) -> ResNet50:
    """Ghost-Res50 (Table 5, from GhostNet [14]): every bottleneck conv and projection a :class:`GhostModule` with
    ratio ``ratio`` (s = 2 or 4), its primary conv of the replaced conv's kernel and stride."""
    def make(cin: int, cout: int, kernel_size: int, stride: int, relu: bool) -> nn.Module:
        return GhostModule(cin, cout, dw_size=3, relu=relu, ratio=ratio, kernel_size=kernel_size, stride=stride)
    return ResNet50(make, num_classes=num_classes)


def repghost_resnet50(ratio: float = 2.0, num_classes: int = 1000,
                      branches: Sequence[str] = ("bn",)) -> ResNet50:
    r"""RepGhost-Res50 (Table 5): Ghost-Res50 with :class:`RepGhostModule` s (training form, ``branches`` as in
    Table 6, the paper's BN by default); every bottleneck width $C$ becomes ``make_divisible(C / ratio)``
    (s = 1.4 or 2; the module docstring derives this reading of s)."""
    if not ratio >= 1:
        raise ValueError(f"ratio s must be >= 1 (Table 5 uses 1.4 and 2), got {ratio!r}.")

    def make(cin: int, cout: int, kernel_size: int, stride: int, relu: bool) -> nn.Module:
        return RepGhostModule(cin, cout, dw_size=3, relu=relu, branches=branches, kernel_size=kernel_size,
                              stride=stride)
    return ResNet50(make, width=lambda c: make_divisible(c / ratio, 4), num_classes=num_classes)


def table5_model(name: str, num_classes: int = 1000) -> ResNet50:
    """The model of Table 5's row ``name`` (a key of :data:`TABLE5_MODELS`), training form."""
    if name not in TABLE5_MODELS:
        raise ValueError(f"Table 5 has no row {name!r}; its rows are {', '.join(TABLE5_MODELS)}.")
    kind, ratio = TABLE5_MODELS[name]
    return ghost_resnet50(ratio, num_classes) if kind == "ghost" else repghost_resnet50(ratio, num_classes)


def table5_inference_models(seed: int = 0, num_classes: int = 1000) -> Dict[str, nn.Module]:
    """Table 5's four networks as its latency column deploys them, in the paper's row order: seeded random weights
    and randomized BatchNorm statistics (:func:`~.reparam.randomize_bn_stats_`, so fusion is no near-identity),
    eval mode; the RepGhost-Res50 rows fused by :func:`~.reparam.reparameterize` (no BatchNorm left), the
    Ghost-Res50 rows as built (an exporter folds their conv-BN pairs). The global random state is left as it was."""
    models = {}
    with torch.random.fork_rng(devices=[]):
        for name, (kind, _) in TABLE5_MODELS.items():
            torch.manual_seed(seed)
            model = randomize_bn_stats_(table5_model(name, num_classes), seed=seed).eval()
            models[name] = reparameterize(model) if kind == "repghost" else model
    return models
