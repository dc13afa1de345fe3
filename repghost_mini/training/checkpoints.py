"""Loading RepGhostNet / GhostNet weights saved by the authors' repository, by timm, or by us.

Accepted files (read with ``torch.load(..., weights_only=True)``): a plain ``state_dict``, or a checkpoint dict
holding ``state_dict_ema`` and/or ``state_dict`` (EMA weights preferred, as the paper reports EMA accuracy),
with or without the ``module.`` prefix that DistributedDataParallel adds. Our module names follow the
authors' code and timm, so their training-form weights map one to one. Loading is strict: a file that does
not fit gives one error naming the missing / unexpected / mis-shaped keys, never a partial load.
A training-form checkpoint can be loaded into a fused (re-parameterized) model: it is loaded into a
training-form twin built from ``model.config``, fused, and copied over.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Mapping, Union

import torch
from torch import nn

from ..core.reparam import count_batchnorms, reparameterize

__all__ = ["read_state_dict", "load_checkpoint", "save_atomic"]

Source = Union[str, os.PathLike, Mapping[str, Any]]


def save_atomic(obj: Any, path: Union[str, os.PathLike]) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def read_state_dict(source: Source, prefer_ema: bool = True) -> Dict[str, torch.Tensor]:
    """The tensor state dict inside ``source`` (a path or an already loaded dict), ``module.`` prefix removed."""
    if isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"checkpoint file {os.fspath(source)!r} does not exist; check the path.")
        try:
            source = torch.load(source, map_location="cpu", weights_only=True)
        except Exception as err:  # pickle errors carry long messages; give one sentence
            raise ValueError(f"could not read {os.fspath(source)!r} as a PyTorch checkpoint with weights_only=True "
                             f"({type(err).__name__}); is it a .pth/.pt file of tensors?") from None
    if not isinstance(source, Mapping):
        raise ValueError(f"expected a state_dict or a checkpoint dict, got {type(source).__name__}.")
    keys = ("state_dict_ema", "state_dict") if prefer_ema else ("state_dict", "state_dict_ema")
    for key in keys + ("model",):
        if isinstance(source.get(key), Mapping):
            source = source[key]
            break
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in source.items()}
    non_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if non_tensors:
        raise ValueError(f"the checkpoint holds no state_dict: entries {non_tensors[:3]} are not tensors "
                         "(expected a plain state_dict or a dict with 'state_dict' / 'state_dict_ema').")
    return state


def _strict_load(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape (file vs model)", shapes)):
            if items:
                more = f" and {len(items) - 5} more" if len(items) > 5 else ""
                parts.append(f"{label}: {', '.join(items[:5])}{more}")
        raise ValueError(f"checkpoint does not fit {type(model).__name__} (width/num_classes/variant must match; "
                         f"nothing was loaded) - " + "; ".join(parts) + ".")
    model.load_state_dict(state, strict=True)


def load_checkpoint(model: nn.Module, source: Source, prefer_ema: bool = True) -> nn.Module:
    """Load weights from ``source`` into ``model`` (training form or fused) in place and return it.

    Example: ``load_checkpoint(repghostnet_100(), "repghostnet_1_0x.pth.tar")`` or, for the fast form,
    ``load_checkpoint(reparameterize(repghostnet_100().eval()), path)``.
    """
    state = read_state_dict(source, prefer_ema)
    model_is_fused = count_batchnorms(model) == 0
    file_is_training_form = any(k.endswith("running_var") for k in state)
    if model_is_fused and file_is_training_form:
        config = getattr(model, "config", None)
        if config is None:
            raise ValueError("this fused model has no .config to rebuild its training form from; load the checkpoint "
                             "into the training-form model, then call reparameterize().")
        twin = type(model)(**config).to(next(model.parameters()).dtype)
        _strict_load(twin, state)
        state = reparameterize(twin.eval(), inplace=True).state_dict()
    _strict_load(model, state)
    return model
