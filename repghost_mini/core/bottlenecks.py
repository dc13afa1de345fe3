r"""Ghost bottleneck (GhostNet) and RepGhost bottleneck (paper Sec. 3.3, Fig. 4).

Both keep the same input and output channels, so they are drop-in replacements in Table 2. Inside,
the RepGhost bottleneck differs in channels (Fig. 4b, red):

* "thinner" middle: its first module outputs ``mid_channels`` = Table 2's #mid, half of GhostNet's
  $C_{mid}$, so the stride-2 depthwise conv (DS) and the SE block run on fewer channels;
* "thicker" second depthwise conv: the second module's depthwise conv runs on all $C_{out}$ channels
  instead of $C_{out}/2$ (there is no concat to make the other half).

At inference a RepGhost bottleneck is a shortcut plus a single chain 1x1 conv -> dw conv -> ReLU (Fig. 4c).
"""
from __future__ import annotations

from typing import Optional, Sequence

from torch import Tensor, nn

from .modules import GhostModule, RepGhostModule

__all__ = ["make_divisible", "SqueezeExcite", "GhostBottleneck", "RepGhostBottleneck"]


def make_divisible(value: float, divisor: int = 4, min_value: Optional[int] = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` without going below 90% of it (MobileNet rule)."""
    min_value = min_value or divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


class SqueezeExcite(nn.Module):
    r"""SE block [21] as in GhostNet: $x \cdot \mathrm{hsigmoid}(W_2\,\mathrm{ReLU}(W_1\,\bar{x}))$, reduction 4."""

    def __init__(self, channels: int, se_ratio: float = 0.25, divisor: int = 4) -> None:
        super().__init__()
        reduced = make_divisible(channels * se_ratio, divisor)
        self.conv_reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.conv_expand = nn.Conv2d(reduced, channels, 1, bias=True)
        self.gate = nn.Hardsigmoid()  # relu6(x + 3) / 6, as in GhostNet

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.conv_expand(self.act(self.conv_reduce(s))))


def _shortcut_block(in_channels: int, out_channels: int, dw_size: int, stride: int) -> nn.Sequential:
    """SBlock of Fig. 4: depthwise conv (with the stride) + BN, then 1x1 conv + BN."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, dw_size, stride, (dw_size - 1) // 2, groups=in_channels, bias=False),
        nn.BatchNorm2d(in_channels),
        nn.Conv2d(in_channels, out_channels, 1, 1, 0, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class _Bottleneck(nn.Module):
    """Shared skeleton: module1 -> [DS: stride-2 dw conv + BN] -> [SE] -> module2, plus the shortcut."""

    #: (conv, BN) attribute pairs that reparameterize() folds; Sequentials are handled generically.
    conv_bn_pairs = (("conv_dw", "bn_dw"),)

    def _build_tail(self, in_channels: int, mid_channels: int, out_channels: int, dw_size: int, stride: int,
                    se_ratio: float) -> None:
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}.")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        if stride > 1:
            self.conv_dw = nn.Conv2d(mid_channels, mid_channels, dw_size, stride, (dw_size - 1) // 2,
                                     groups=mid_channels, bias=False)
            self.bn_dw = nn.BatchNorm2d(mid_channels)
        else:
            self.conv_dw = None
            self.bn_dw = None
        self.se = SqueezeExcite(mid_channels, se_ratio) if se_ratio and se_ratio > 0 else None

    def _build_shortcut(self, in_channels: int, out_channels: int, dw_size: int, stride: int,
                        shortcut: bool) -> None:
        self.has_identity_shortcut = in_channels == out_channels and stride == 1
        if self.has_identity_shortcut:
            # Table 7 removes only identity shortcuts; shortcut blocks that downsample stay.
            self.shortcut = nn.Identity() if shortcut else None
        else:
            self.shortcut = _shortcut_block(in_channels, out_channels, dw_size, stride)

    def forward(self, x: Tensor) -> Tensor:
        y = self.ghost1(x)
        if self.conv_dw is not None:
            y = self.bn_dw(self.conv_dw(y))
        if self.se is not None:
            y = self.se(y)
        y = self.ghost2(y)
        if self.shortcut is not None:
            y = y + self.shortcut(x)
        return y


class GhostBottleneck(_Bottleneck):
    """Ghost bottleneck of GhostNet (Fig. 4a). ``mid_channels`` is GhostNet's expansion size."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, dw_size: int = 3,
                 stride: int = 1, se_ratio: float = 0.0, shortcut: bool = True) -> None:
        super().__init__()
        self.ghost1 = GhostModule(in_channels, mid_channels, relu=True)
        self._build_tail(in_channels, mid_channels, out_channels, dw_size, stride, se_ratio)
        self.ghost2 = GhostModule(mid_channels, out_channels, relu=False)
        self._build_shortcut(in_channels, out_channels, dw_size, stride, shortcut)


class RepGhostBottleneck(_Bottleneck):
    """RepGhost bottleneck (Fig. 4b). ``mid_channels`` is Table 2's #mid ("thinner" than GhostNet's).

    ``branches`` configures both RepGhost modules and ``relu_after_dw`` the first, the one with ReLU (Table 6);
    ``shortcut=False`` drops the identity shortcut (Table 7) and keeps the downsampling shortcut block.
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, dw_size: int = 3,
                 stride: int = 1, se_ratio: float = 0.0, shortcut: bool = True,
                 branches: Sequence[str] = ("bn",), relu_after_dw: bool = False) -> None:
        super().__init__()
        self.ghost1 = RepGhostModule(in_channels, mid_channels, relu=True, branches=branches,
                                     relu_after_dw=relu_after_dw)
        self._build_tail(in_channels, mid_channels, out_channels, dw_size, stride, se_ratio)
        self.ghost2 = RepGhostModule(mid_channels, out_channels, relu=False, branches=branches)
        self._build_shortcut(in_channels, out_channels, dw_size, stride, shortcut)
