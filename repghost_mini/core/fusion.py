r"""Fusion algebra for structural re-parameterization (paper Sec. 3.1, Eq. 2; Sec. 3.2 "Fast Inference").

Every function works on plain tensors, is differentiable (pure torch ops, no numpy), and keeps the
dtype and device of its inputs. Kernels use PyTorch's layout ``(C_out, C_in / groups, k, k)``.

BatchNorm in eval mode is an affine map per channel $c$:

$$\mathrm{BN}(z)_c = \gamma_c \frac{z_c - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}} + \beta_c .$$

If $z = W * x + b$ is a convolution, then $\mathrm{BN}(z) = W' * x + b'$ with

$$W'_c = \frac{\gamma_c}{\sqrt{\sigma_c^2+\epsilon}} W_c, \qquad
  b'_c = \beta_c + \frac{\gamma_c}{\sqrt{\sigma_c^2+\epsilon}} (b_c - \mu_c).$$

An identity map on $C$ channels is a depthwise convolution whose $k\times k$ kernel is one-hot at its
centre, so an identity or BN-only branch is also "a conv". Convolutions with the same input, stride and
(padded) kernel size add: $W_1 * x + b_1 + W_2 * x + b_2 = (W_1 + W_2) * x + (b_1 + b_2)$.
"""
from __future__ import annotations

from typing import Iterable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

KernelBias = Tuple[Tensor, Tensor]

__all__ = [
    "fold_bn",
    "fold_bn_into_conv",
    "identity_kernel",
    "bn_to_kernel",
    "pad_kernel",
    "sum_branches",
    "conv_from_kernel",
]


def fold_bn(kernel: Tensor, bias: Optional[Tensor], bn: nn.BatchNorm2d) -> KernelBias:
    r"""Fold an eval-mode BatchNorm that follows a conv into the conv's kernel and bias.

    kernel: ``(C_out, C_in/groups, k, k)``; bias: ``(C_out,)`` or ``None``; ``bn.num_features == C_out``.
    Returns ``(W', b')`` of the same shapes, dtype and device as ``kernel`` (formula in the module doc).
    Any ``groups`` works because the scale is per output channel.
    """
    if bn.num_features != kernel.shape[0]:
        raise ValueError(
            f"BatchNorm has {bn.num_features} channels but the kernel has {kernel.shape[0]} output "
            "channels; fold a BatchNorm only into the conv that produces its input."
        )
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("BatchNorm tracks no running statistics (track_running_stats=False), so it has no "
                         "fixed affine map to fold; build it with track_running_stats=True.")
    var = bn.running_var.to(kernel) + bn.eps
    stats = torch.cat([bn.running_mean.to(kernel), var])
    if not bool(torch.isfinite(stats).all()) or not bool((var > 0).all()):
        raise ValueError("BatchNorm running statistics hold NaN/inf or a negative variance (running_var + eps <= 0), "
                         "so folding would write NaN weights; the training run that produced them diverged: "
                         "load a healthy checkpoint or re-estimate the statistics in train mode.")
    mean = bn.running_mean.to(kernel)
    std = var.sqrt()
    gamma = bn.weight.to(kernel) if bn.weight is not None else torch.ones_like(mean)
    beta = bn.bias.to(kernel) if bn.bias is not None else torch.zeros_like(mean)
    scale = gamma / std
    b = bias.to(kernel) if bias is not None else torch.zeros_like(mean)
    return kernel * scale.reshape(-1, 1, 1, 1), beta + scale * (b - mean)


def identity_kernel(channels: int, kernel_size: int = 3, *, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> Tensor:
    """Depthwise kernel ``(C, 1, k, k)`` that reproduces its input: a 1 at the centre of each channel.

    ``kernel_size`` must be odd so that the centre (and "same" padding ``k // 2``) exists.
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd number for an identity kernel, got {kernel_size}.")
    kernel = torch.zeros(channels, 1, kernel_size, kernel_size, dtype=dtype, device=device)
    kernel[:, 0, kernel_size // 2, kernel_size // 2] = 1
    return kernel


def bn_to_kernel(bn: nn.BatchNorm2d, kernel_size: int = 3, *, dtype: Optional[torch.dtype] = None) -> KernelBias:
    """A BN-only branch ``x -> BN(x)`` as a depthwise ``(C, 1, k, k)`` kernel and bias: identity, then fold."""
    ref = bn.running_mean if bn.running_mean is not None else bn.weight
    kernel = identity_kernel(bn.num_features, kernel_size, dtype=dtype or ref.dtype, device=ref.device)
    return fold_bn(kernel, None, bn)


def pad_kernel(kernel: Tensor, kernel_size: int) -> Tensor:
    """Zero-pad a ``(.., .., k0, k0)`` kernel to ``kernel_size`` around its centre (e.g. 1x1 -> 3x3).

    With padding ``k // 2`` the padded conv gives exactly the same output as the small one.
    """
    k0 = kernel.shape[-1]
    if kernel.shape[-2] != k0 or k0 > kernel_size or (kernel_size - k0) % 2:
        raise ValueError(f"cannot centre a {tuple(kernel.shape[-2:])} kernel inside {kernel_size}x{kernel_size}: "
                         "both must be square and differ by an even number.")
    p = (kernel_size - k0) // 2
    return F.pad(kernel, [p, p, p, p])


def sum_branches(branches: Iterable[KernelBias]) -> KernelBias:
    """Add parallel linear branches (same input, stride, kernel size) into one kernel and bias."""
    branches = list(branches)
    if not branches:
        raise ValueError("sum_branches needs at least one (kernel, bias) pair.")
    shapes = {tuple(k.shape) for k, _ in branches}
    if len(shapes) != 1:
        raise ValueError(f"branches must have equal kernel shapes before adding, got {sorted(shapes)}; "
                         "pad smaller kernels with pad_kernel first.")
    kernel = torch.stack([k for k, _ in branches]).sum(0)
    bias = torch.stack([b for _, b in branches]).sum(0)
    return kernel, bias


def conv_from_kernel(conv: nn.Conv2d, kernel: Tensor, bias: Tensor) -> nn.Conv2d:
    """A new ``nn.Conv2d`` with ``conv``'s geometry (stride, padding, groups...) and the given kernel/bias."""
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode,
                      device=kernel.device, dtype=kernel.dtype)
    with torch.no_grad():
        fused.weight.copy_(kernel)
        fused.bias.copy_(bias)
    return fused


def fold_bn_into_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """Module form of :func:`fold_bn`: ``conv`` followed by eval-mode ``bn`` as one biased ``nn.Conv2d``."""
    kernel, bias = fold_bn(conv.weight.detach(), None if conv.bias is None else conv.bias.detach(), bn)
    return conv_from_kernel(conv, kernel, bias)
