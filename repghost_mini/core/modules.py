r"""The five modules of Fig. 3: the evolution of the Ghost module into the RepGhost module (Sec. 3.2).

All five share one constructor vocabulary: ``(in_channels, out_channels, dw_size=3, relu=True)``.
Each starts with the "primary" 1x1 conv + BN (+ ReLU) that Fig. 3 omits; $x_1$ below is its output,
and $\mathrm{dconv}$ is a depthwise $k\times k$ conv followed by BN.

==========  ============================  ========================================================
 variant     class                         output
==========  ============================  ========================================================
 a           :class:`GhostModule`          $\mathrm{Cat}[x_1, \mathrm{ReLU}(\mathrm{dconv}(x_1))]$  (ratio $s$)
 b           :class:`GhostAddModule`       $x_1 + \mathrm{ReLU}(\mathrm{dconv}(x_1))$
 c           :class:`LateReLUModule`       $\mathrm{ReLU}(x_1 + \mathrm{dconv}(x_1))$
 d           :class:`RepGhostModule`       $\mathrm{ReLU}(\mathrm{BN}(x_1) + \mathrm{dconv}(x_1))$  (training form)
 e           :class:`RepGhostInferenceModule`  $\mathrm{ReLU}(\mathrm{conv}^{*}(x_1))$, one depthwise conv with bias
==========  ============================  ========================================================

c and d contain only linear operators between $x_1$ and the final ReLU, so :meth:`RepGhostModule.fuse`
turns them into e exactly (Eq. 2). a has a concat and b and d's "+ReLU" variant have a ReLU inside a
branch, so they cannot be fused into one conv.

a, d and e also take ``kernel_size`` and ``stride`` of the primary conv (default 1, the 1x1 conv above): a module
that replaces a strided $3\times3$ conv of ResNet-50 keeps that kernel and stride in its primary conv (Table 5,
:mod:`.resnet`).
"""
from __future__ import annotations

import math
from typing import Dict, Sequence, Tuple, Type

import torch
import torch.fx
from torch import Tensor, nn

from .fusion import bn_to_kernel, fold_bn, fold_bn_into_conv, identity_kernel, pad_kernel, sum_branches

__all__ = [
    "GhostModule",
    "GhostAddModule",
    "LateReLUModule",
    "RepGhostModule",
    "RepGhostInferenceModule",
    "REPARAM_BRANCHES",
    "MODULE_VARIANTS",
    "build_module",
    "check_input",
]

#: Re-parameterization branches of Table 6 that can be added to the depthwise conv of module d.
REPARAM_BRANCHES = ("identity", "bn", "dconv1x1")


def _check_channels(in_channels: int, out_channels: int) -> None:
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def _primary_conv(in_channels: int, out_channels: int, relu: bool, kernel_size: int = 1,
                  stride: int = 1) -> nn.Sequential:
    """The module's input conv + BN (+ ReLU), omitted in Fig. 3 and drawn in Fig. 4: 1x1 unless ``kernel_size``
    says otherwise ("same" padding, ``stride``)."""
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size!r}.")
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}.")
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True) if relu else nn.Identity(),
    )


def _depthwise(in_channels: int, out_channels: int, kernel_size: int, bias: bool = False) -> nn.Conv2d:
    """Depthwise ``k x k`` conv (one group per input channel, "same" padding); ``out_channels`` is a multiple."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, 1, kernel_size // 2, groups=in_channels, bias=bias)


def check_input(x: Tensor, in_channels: int, owner: str, what: str = "input",
                hint: str = "check in_channels or the previous layer's output.") -> None:
    """Raise one clear ``ValueError`` unless ``x`` is ``(N, in_channels, H, W)``; ``owner`` names the layer.

    Registered with :func:`torch.fx.wrap`, so ``torch.fx.symbolic_trace`` records it as one call in the graph
    (the traced model keeps the check) instead of failing on the ``if``; TorchScript compiles it as it is.
    """
    if x.dim() != 4 or x.size(1) != in_channels:
        raise ValueError(f"{owner} expects {what} of shape (N, {in_channels}, H, W), got {list(x.shape)}; {hint}")


torch.fx.wrap("check_input")


class _InputCheck(nn.Module):
    """Base: every module of Fig. 3 checks its input with :func:`check_input` (``self.owner`` = class name)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        _check_channels(in_channels, out_channels)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.owner = type(self).__name__


class GhostModule(_InputCheck):
    r"""Module a, the Ghost module of GhostNet (Fig. 3a, Eq. 1).

    A 1x1 conv makes $\lceil C_{out}/s \rceil$ "intrinsic" channels; a cheap depthwise conv makes
    $(s-1)$ times as many "ghost" channels from them; both are concatenated and cut to $C_{out}$.
    Input ``(N, in_channels, H, W)`` -> output ``(N, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, dw_size: int = 3, relu: bool = True,
                 ratio: int = 2, kernel_size: int = 1, stride: int = 1) -> None:
        super().__init__(in_channels, out_channels)
        if not isinstance(ratio, int) or ratio < 2:
            raise ValueError(f"ratio s must be an integer >= 2 (s = 2 in GhostNet), got {ratio!r}.")
        self.ratio = ratio
        init_channels = math.ceil(out_channels / ratio)
        self.primary_conv = _primary_conv(in_channels, init_channels, relu, kernel_size, stride)
        self.cheap_operation = nn.Sequential(
            _depthwise(init_channels, init_channels * (ratio - 1), dw_size),
            nn.BatchNorm2d(init_channels * (ratio - 1)),
            nn.ReLU(inplace=True) if relu else nn.Identity(),
        )

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self.in_channels, self.owner)
        x1 = self.primary_conv(x)
        x2 = self.cheap_operation(x1)
        return torch.cat([x1, x2], dim=1)[:, : self.out_channels]


class GhostAddModule(_InputCheck):
    r"""Module b (Fig. 3b): the concat of module a replaced by an add.

    The primary conv now makes all $C_{out}$ channels and the depthwise conv keeps them ($s = 2$ implicitly).
    Output: $x_1 + \mathrm{ReLU}(\mathrm{BN}(\mathrm{dw}(x_1)))$. The ReLU inside a branch makes it non-linear,
    so it can not be fused into one conv (move the ReLU after the add: module c).
    """

    def __init__(self, in_channels: int, out_channels: int, dw_size: int = 3, relu: bool = True) -> None:
        super().__init__(in_channels, out_channels)
        self.primary_conv = _primary_conv(in_channels, out_channels, relu)
        self.cheap_operation = nn.Sequential(
            _depthwise(out_channels, out_channels, dw_size),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True) if relu else nn.Identity(),
        )

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self.in_channels, self.owner)
        x1 = self.primary_conv(x)
        return x1 + self.cheap_operation(x1)


class RepGhostModule(_InputCheck):
    r"""Module d (Fig. 3d), the RepGhost module in its training form, with any branches of Table 6.

    $$y = \mathrm{ReLU}\Big(\mathrm{BN}(\mathrm{dw}_{k\times k}(x_1)) + \sum_{b \in \text{branches}} b(x_1)\Big)$$

    ``branches`` is any subset of :data:`REPARAM_BRANCHES`: ``"identity"`` ($x_1$), ``"bn"`` ($\mathrm{BN}(x_1)$,
    the paper's default), ``"dconv1x1"`` ($\mathrm{BN}(\mathrm{dw}_{1\times1}(x_1))$); ``()`` is Table 6's
    "no-reparam" (module e trained with its BN). ``relu_after_dw=True`` is Table 6's "+ReLU" row: a ReLU
    right after the depthwise conv + BN, which makes the module impossible to fuse.
    ``relu=False`` drops both ReLUs (the second module of a bottleneck is linear).

    It produces $s \cdot C_{in}$ feature maps in training (one per branch) and fuses them into $C_{in}$
    (Sec. 3.2): :meth:`fuse` returns the equivalent :class:`RepGhostInferenceModule` (module e).
    State-dict keys match the authors' code and timm (``primary_conv``, ``cheap_operation``, ``fusion_bn``).
    """

    def __init__(self, in_channels: int, out_channels: int, dw_size: int = 3, relu: bool = True,
                 branches: Sequence[str] = ("bn",), relu_after_dw: bool = False, kernel_size: int = 1,
                 stride: int = 1) -> None:
        super().__init__(in_channels, out_channels)
        if isinstance(branches, str):
            branches = (branches,)
        unknown = [b for b in branches if b not in REPARAM_BRANCHES]
        if unknown or len(set(branches)) != len(branches):
            raise ValueError(f"unknown or repeated re-parameterization branch in {tuple(branches)!r}; "
                             f"choose each at most once from {REPARAM_BRANCHES}.")
        if dw_size < 1 or dw_size % 2 == 0:
            raise ValueError(f"dw_size must be a positive odd number, got {dw_size}.")
        if relu_after_dw and not relu:
            raise ValueError("relu_after_dw=True (the '+ReLU' variant) needs relu=True: a module without ReLU "
                             "has no ReLU to move into the branch.")
        self.dw_size = dw_size
        self.branches = tuple(b for b in REPARAM_BRANCHES if b in branches)
        self.identity_branch = "identity" in self.branches  # a bool, so TorchScript can branch on it
        self.relu_after_dw = relu_after_dw
        self.primary_conv = _primary_conv(in_channels, out_channels, relu, kernel_size, stride)
        self.cheap_operation = nn.Sequential(_depthwise(out_channels, out_channels, dw_size),
                                             nn.BatchNorm2d(out_channels))
        self.cheap_relu = nn.ReLU(inplace=True) if relu_after_dw else nn.Identity()
        self.fusion_bn = nn.Sequential(nn.BatchNorm2d(out_channels)) if "bn" in self.branches else None
        self.fusion_dconv = (nn.Sequential(_depthwise(out_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
                             if "dconv1x1" in self.branches else None)
        self.relu = nn.ReLU(inplace=True) if relu else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self.in_channels, self.owner)
        x1 = self.primary_conv(x)
        y = self.cheap_relu(self.cheap_operation(x1))
        if self.identity_branch:
            y = y + x1
        if self.fusion_bn is not None:
            y = y + self.fusion_bn(x1)
        if self.fusion_dconv is not None:
            y = y + self.fusion_dconv(x1)
        return self.relu(y)

    def equivalent_kernel_bias(self) -> Tuple[Tensor, Tensor]:
        r"""The single depthwise $k\times k$ kernel and bias equal to all branches together (Eq. 2)."""
        if self.relu_after_dw:
            raise ValueError("this RepGhost module is the '+ReLU' variant (relu_after_dw=True): the ReLU between "
                             "the depthwise conv and the add is not linear, so its branches cannot be summed into "
                             "one conv (paper Table 6, last row); build it with relu_after_dw=False to fuse.")
        dw, bn = self.cheap_operation
        k = self.dw_size
        parts = [fold_bn(dw.weight, None, bn)]
        if "identity" in self.branches:
            eye = identity_kernel(self.out_channels, k, dtype=dw.weight.dtype, device=dw.weight.device)
            parts.append((eye, torch.zeros(self.out_channels, dtype=eye.dtype, device=eye.device)))
        if self.fusion_bn is not None:
            parts.append(bn_to_kernel(self.fusion_bn[0], k, dtype=dw.weight.dtype))
        if self.fusion_dconv is not None:
            kernel, bias = fold_bn(self.fusion_dconv[0].weight, None, self.fusion_dconv[1])
            parts.append((pad_kernel(kernel, k), bias))
        return sum_branches(parts)

    def fuse(self) -> "RepGhostInferenceModule":
        """Module e with exactly the same eval-mode output (BN of the primary conv folded too)."""
        if self.training:
            raise RuntimeError("fuse() uses BatchNorm running statistics: call .eval() first "
                               "(in train mode BN normalizes with batch statistics and is not a fixed linear map).")
        with torch.no_grad():
            kernel, bias = self.equivalent_kernel_bias()
            primary = fold_bn_into_conv(self.primary_conv[0], self.primary_conv[1])
        conv = self.primary_conv[0]
        fused = RepGhostInferenceModule(self.in_channels, self.out_channels, self.dw_size,
                                        relu=isinstance(self.relu, nn.ReLU), kernel_size=conv.kernel_size[0],
                                        stride=conv.stride[0])
        fused.to(device=kernel.device, dtype=kernel.dtype)
        with torch.no_grad():
            fused.primary_conv[0].weight.copy_(primary.weight)
            fused.primary_conv[0].bias.copy_(primary.bias)
            fused.cheap_operation.weight.copy_(kernel)
            fused.cheap_operation.bias.copy_(bias)
        return fused.eval()


class LateReLUModule(RepGhostModule):
    r"""Module c (Fig. 3c): module b with the ReLU moved after the add, i.e. an identity branch.

    $y = \mathrm{ReLU}(x_1 + \mathrm{BN}(\mathrm{dw}(x_1)))$ -- linear up to the final ReLU, so it fuses into e.
    """

    def __init__(self, in_channels: int, out_channels: int, dw_size: int = 3, relu: bool = True) -> None:
        super().__init__(in_channels, out_channels, dw_size, relu, branches=("identity",))


class RepGhostInferenceModule(_InputCheck):
    r"""Module e (Fig. 3e): the RepGhost module for inference, $y = \mathrm{ReLU}(\mathrm{dw}^{*}(x_1))$.

    Only plain convolutions with bias and ReLUs: the primary 1x1 conv (its BN folded in) and one depthwise
    conv (all branches of module d folded in). Usually made by :meth:`RepGhostModule.fuse`.
    """

    def __init__(self, in_channels: int, out_channels: int, dw_size: int = 3, relu: bool = True,
                 kernel_size: int = 1, stride: int = 1) -> None:
        super().__init__(in_channels, out_channels)
        self.dw_size = dw_size
        self.primary_conv = nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                                                    kernel_size // 2, bias=True),
                                          nn.ReLU(inplace=True) if relu else nn.Identity())
        self.cheap_operation = _depthwise(out_channels, out_channels, dw_size, bias=True)
        self.relu = nn.ReLU(inplace=True) if relu else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self.in_channels, self.owner)
        return self.relu(self.cheap_operation(self.primary_conv(x)))


#: Fig. 3 letter -> class, for notebooks and ablations.
MODULE_VARIANTS: Dict[str, Type[nn.Module]] = {
    "a": GhostModule,
    "b": GhostAddModule,
    "c": LateReLUModule,
    "d": RepGhostModule,
    "e": RepGhostInferenceModule,
}


def build_module(variant: str, in_channels: int, out_channels: int, **kwargs) -> nn.Module:
    """Build module ``variant`` (``"a"`` ... ``"e"`` of Fig. 3) with the shared constructor vocabulary."""
    if variant not in MODULE_VARIANTS:
        raise ValueError(f"unknown module variant {variant!r}; choose one of {sorted(MODULE_VARIANTS)} (Fig. 3).")
    return MODULE_VARIANTS[variant](in_channels, out_channels, **kwargs)
