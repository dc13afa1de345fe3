"""Evaluation: top-1 / top-5 of a model, and of its training form against its re-parameterized form (Sec. 3.2)."""
from __future__ import annotations

import contextlib
from typing import Any, Dict, List, Optional, Union

import torch
from torch import Tensor, nn

from ..errors import require_finite
from ..modes import eval_mode
from .registry import fuse_model

__all__ = ["evaluate", "evaluate_reparameterized"]


@contextlib.contextmanager
def _borrowed(models: Dict[str, nn.Module], device: torch.device):
    """The models in eval mode (:func:`repghost_mini.modes.eval_mode`) on ``device`` for the ``with`` block;
    afterwards each is back in the mode and on the device it came in with (evaluation leaves the caller's model as
    it found it)."""
    homes = [(m, p.device) for m in models.values() for p in [next(m.parameters(), None)] if p is not None]
    with contextlib.ExitStack() as modes:
        for m in models.values():
            modes.enter_context(eval_mode(m))
        try:
            for m in models.values():
                m.to(device)
            yield
        finally:
            for m, home in homes:
                m.to(home)


@torch.no_grad()
def _run_eval(models: Dict[str, nn.Module], loader, device: torch.device, amp: bool = False,
              channels_last: bool = False) -> Dict[str, Any]:
    """Every model of ``models`` on the same batches of ``loader`` (in eval mode on ``device``; each model is
    given back in its own mode and on its own device): accuracy, loss, predictions (and, for two models, the
    share of equal top-1 predictions and the largest logit difference)."""
    with _borrowed(models, device):
        return _eval_batches(models, loader, device, amp, channels_last)


def _eval_batches(models: Dict[str, nn.Module], loader, device: torch.device, amp: bool,
                  channels_last: bool) -> Dict[str, Any]:
    stats: Dict[str, Dict[str, float]] = {k: {"top1": 0.0, "top5": 0.0, "loss": 0.0} for k in models}
    preds: Dict[str, List[Tensor]] = {k: [] for k in models}
    max_diff, n = 0.0, 0
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(0)
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        outs = {}
        for name, m in models.items():
            with torch.autocast(device.type, enabled=amp):
                out = m(x).float()
            require_finite(out, f"the output of {name!r}" if len(models) > 1 else "the model's output")
            outs[name] = out
            k = min(5, out.shape[1])
            top = out.topk(k, 1).indices
            stats[name]["top1"] += (top[:, 0] == y).sum().item()
            stats[name]["top5"] += (top == y[:, None]).any(1).sum().item()
            stats[name]["loss"] += nn.functional.cross_entropy(out, y, reduction="sum").item()
            preds[name].append(top[:, 0].cpu())
        if len(outs) == 2:
            a, b = outs.values()
            max_diff = max(max_diff, (a - b).abs().max().item())
        n += y.shape[0]
    result: Dict[str, Any] = {}
    for name, s in stats.items():
        result[name] = {"top1": 100 * s["top1"] / max(n, 1), "top5": 100 * s["top5"] / max(n, 1),
                        "loss": s["loss"] / max(n, 1), "n": n, "predictions": torch.cat(preds[name]) if n else None}
    if len(models) == 2:
        a, b = (result[k]["predictions"] for k in models)
        result["agreement"] = (a == b).float().mean().item() if n else 1.0
        result["max_logit_diff"] = max_diff
    return result


def evaluate(model: nn.Module, loader, device: Optional[Union[str, torch.device]] = None,
             amp: bool = False) -> Dict[str, Any]:
    """Top-1 / top-5 accuracy (%) and mean cross-entropy of ``model`` on ``loader``.

    Returns ``{"top1", "top5", "loss", "n", "predictions"}`` (predictions: top-1 class per image, CPU tensor).
    ``device`` defaults to the one the model's parameters are on (the CPU for a model without parameters, such as
    :class:`repghost_mini.deploy.OnnxModel` or :class:`repghost_mini.deploy.ExecutorchModel`).
    """
    param = next(model.parameters(), None)
    device = torch.device(device) if device is not None else param.device if param is not None else torch.device("cpu")
    return _run_eval({"model": model}, loader, device, amp)["model"]


def evaluate_reparameterized(model: nn.Module, loader, device: Optional[Union[str, torch.device]] = None,
                             atol: float = 1e-3, fused_model: Optional[nn.Module] = None) -> Dict[str, Any]:
    """Evaluate the training-form ``model`` and its re-parameterized copy on the same batches (paper Sec. 3.2).

    Returns ``{"train_form": {...}, "fused": {...}, "agreement": share of images with the same top-1 class,
    "max_logit_diff": float, "agree": bool}``. ``agree`` holds when every top-1 prediction is the same or the
    logits match to ``atol`` (a near-tie flipped by float rounding is then not a disagreement). ``fused_model``:
    the already re-parameterized copy, if the caller has one (otherwise it is made here).
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    fused = fused_model
    if fused is None:
        with _borrowed({"model": model}, device):  # fused from the eval-mode statistics; the caller's mode kept
            fused = fuse_model(model)
    res = _run_eval({"train_form": model, "fused": fused}, loader, device)
    out = {"train_form": res["train_form"], "fused": res["fused"], "agreement": res["agreement"],
           "max_logit_diff": res["max_logit_diff"]}
    out["agree"] = bool(res["agreement"] == 1.0 or res["max_logit_diff"] <= atol)
    return out
