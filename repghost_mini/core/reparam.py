"""Whole-network structural re-parameterization: training form -> inference form (Sec. 3.2, Fig. 4c).

:func:`reparameterize` turns every RepGhost module (c or d of Fig. 3) into module e and folds every other
BatchNorm that follows a conv (stem, primary convs, downsample, shortcut block, head) into that conv, so
the result holds no ``nn.BatchNorm2d`` at all. A folded BatchNorm is replaced by ``nn.Identity`` so the
module layout (and most state-dict keys) stays recognisable.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .fusion import fold_bn_into_conv
from .modules import RepGhostModule

__all__ = ["reparameterize", "fold_conv_bn_pairs", "count_batchnorms", "randomize_bn_stats_"]


def count_batchnorms(model: nn.Module) -> int:
    """Number of ``BatchNorm`` layers (1d/2d/3d, SyncBatchNorm) in ``model``."""
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@torch.no_grad()
def randomize_bn_stats_(model: nn.Module, seed: int = 0) -> nn.Module:
    """In place: set every BatchNorm's running mean/var, gamma and beta to random values far from the defaults.

    Default BN (mean 0, var 1, gamma 1, beta 0) is almost an identity and hides fusion bugs (RepVGG's
    ``verify.py`` does the same). Returns ``model``.
    """
    g = torch.Generator().manual_seed(seed)

    def rand(lo: float, hi: float, like: torch.Tensor) -> torch.Tensor:
        return (torch.rand(like.shape, generator=g, dtype=torch.float64) * (hi - lo) + lo).to(like)

    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.running_mean is not None:
                m.running_mean.copy_(rand(-1.0, 1.0, m.running_mean))
                m.running_var.copy_(rand(0.25, 4.0, m.running_var))
            if m.weight is not None:
                m.weight.copy_(rand(0.25, 2.0, m.weight))
                m.bias.copy_(rand(-1.0, 1.0, m.bias))
    return model


def _pairs(module: nn.Module):
    """(conv name, BN name) pairs of ``module`` whose data flows conv -> BN directly."""
    if isinstance(module, nn.Sequential):
        names = list(module._modules)
        for a, b in zip(names, names[1:], strict=False):
            yield a, b
    yield from getattr(module, "conv_bn_pairs", ())


def fold_conv_bn_pairs(model: nn.Module) -> nn.Module:
    """In place: fold each BN that directly follows a conv into it (inside ``nn.Sequential`` containers and
    the ``conv_bn_pairs`` our classes declare). Returns ``model``."""
    for module in list(model.modules()):
        for conv_name, bn_name in list(_pairs(module)):
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, conv_name, fold_bn_into_conv(conv, bn))
                setattr(module, bn_name, nn.Identity())
    return model


def _replace_repghost_modules(model: nn.Module) -> None:
    for name, child in list(model.named_children()):
        if isinstance(child, RepGhostModule):
            setattr(model, name, child.fuse())
        else:
            _replace_repghost_modules(child)


def _check_bn_statistics(model: nn.Module) -> None:
    r"""Refuse BatchNorms whose fold would give NaN/inf weights: non-finite statistics or affine parameters, or a
    negative running variance ($\sqrt{\sigma^2+\epsilon}$ of a negative number)."""
    for name, m in model.named_modules():
        if not isinstance(m, nn.modules.batchnorm._BatchNorm) or m.running_var is None:
            continue
        tensors = {"running_mean": m.running_mean, "running_var": m.running_var, "weight": m.weight, "bias": m.bias}
        bad = [k for k, t in tensors.items() if t is not None and not bool(torch.isfinite(t).all())]
        if not bad and bool((m.running_var + m.eps <= 0).any()):
            bad = ["running_var (negative)"]
        if bad:
            raise ValueError(f"BatchNorm {name or '<model>'!r} has non-finite or invalid {bad[0]}: folding it would "
                             "give NaN/inf weights (did training diverge, or is the checkpoint damaged?); retrain "
                             "or load other weights.")


def reparameterize(model: nn.Module, inplace: bool = False) -> nn.Module:
    """The inference network: RepGhost modules -> module e, every conv->BN pair folded; same eval outputs.

    ``model`` must be in eval mode (fusion uses BN running statistics). A deep copy is converted unless
    ``inplace=True``. Converting an already converted model changes nothing. Works on any module tree that
    contains our blocks; a BatchNorm that does not directly follow a conv in a ``nn.Sequential`` (or one of
    our blocks) is left as it is. A model card attached as ``model.card`` is marked ``fused``. Raises ``ValueError``
    for the "+ReLU" variant, which cannot be fused.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"reparameterize expects a torch.nn.Module, got {type(model).__name__}.")
    training = [name or "<model>" for name, m in model.named_modules() if m.training]
    if training:
        raise RuntimeError(f"reparameterize needs the model in eval mode (BN running statistics), but "
                           f"{training[0]!r} is in training mode: call model.eval() first.")
    unfusable = [name or "<model>" for name, m in model.named_modules()
                 if isinstance(m, RepGhostModule) and m.relu_after_dw]
    if unfusable:
        raise ValueError(f"{unfusable[0]!r} is a '+ReLU' RepGhost module (relu_after_dw=True): the ReLU between the "
                         "depthwise conv and the add is not linear, so it cannot be re-parameterized (paper "
                         "Table 6, last row); train with relu_after_dw=False to get a fusable model.")
    _check_bn_statistics(model)
    if not inplace:
        model = copy.deepcopy(model)
    card = getattr(model, "card", None)
    if card is not None and hasattr(card, "replace"):  # a model card (repghost_mini.ModelCard) now describes e
        model.card = card.replace(fused=True)
    _replace_repghost_modules(model)
    return fold_conv_bn_pairs(model).eval()  # new layers start in train mode; the whole model was in eval
