"""The one model registry: every model the package can build, by name (training, CLI, latency, tour, benchmarks).

=====================================  ==============================================================================
 name                                   model
=====================================  ==============================================================================
 ``repghostnet_050`` ... ``_200``       RepGhostNet at the widths of Table 3 (training form); ``repghostnet`` takes
                                        ``width=`` (default 1.0)
 ``ghostnet_050/100/130``               GhostNet, the baseline of Table 3; ``ghostnet`` takes ``width=``
 ``repghostnet_050_noreparam`` ...      Table 6 (RepGhostNet 0.5x): the re-parameterization branch sets --
                                        ``_noreparam`` (no branch), ``_identity``, ``_dconv1x1``, ``_identity_bn``,
                                        ``_bn_dconv1x1``, ``_identity_dconv1x1``, ``_identity_bn_dconv1x1``, and
                                        ``_relu`` ("+ReLU" after the depthwise conv: cannot be fused)
 ``repghostnet_XXX_noshortcut``         Table 7: identity shortcuts removed (widths 0.5, 1.0, 1.5, 2.0)
 ``<any of the above>_fused``           the same network after :func:`repghost_mini.reparameterize` (inference form)
 ``timm_repghostnet_050/100/130``       timm's model (random weights), ``_reparam``: after timm's own
                                        ``reparameterize_model``
 ``timm_mobileone_s0_reparam``          timm's MobileOne-S0, re-parameterized (Table 3's MobileOne row, Fig. 1)
 ``timm:<name>``                        any timm model by its timm name (not listed; built on demand)
=====================================  ==============================================================================

Options go the same way to every model: ``build_model(name, num_classes, small_input=..., dropout=...,
branches=..., shortcut=..., relu_after_dw=..., width=...)``; a name's own variant (``_noshortcut``, a Table 6
branch set) is the default an explicit option overrides. :func:`build_named_model` is the zero-argument form
used for latency: ImageNet head, seeded random weights, eval mode, and for ``_fused`` names BatchNorm statistics
randomized before fusion (so the fused weights are no near-identity special case).
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import nn

from ..core import networks
from ..core.modules import REPARAM_BRANCHES
from ..core.reparam import randomize_bn_stats_, reparameterize
from ..errors import UserError

__all__ = ["ModelEntry", "MODEL_REGISTRY", "available_models", "model_entry", "build_model", "build_named_model",
           "fuse_model"]

_WIDTH_SUFFIX = {0.5: "050", 0.58: "058", 0.8: "080", 1.0: "100", 1.11: "111", 1.3: "130", 1.5: "150", 2.0: "200"}
_GHOSTNET_WIDTHS = (0.5, 1.0, 1.3)
_TABLE7_WIDTHS = (0.5, 1.0, 1.5, 2.0)
_TIMM_WIDTHS = (0.5, 1.0, 1.3)


@dataclass(frozen=True)
class ModelEntry:
    """How to build one named model: the network family, its width, its variant options and whether it is fused.

    Calling the entry (``MODEL_REGISTRY[name]()``) is :func:`build_named_model`; :meth:`build` is the
    general form that :func:`build_model` uses.
    """

    name: str
    family: str  # "repghostnet", "ghostnet" or "timm"
    width: Optional[float] = None
    variant: Mapping[str, Any] = field(default_factory=dict)
    fused: bool = False
    timm_name: Optional[str] = None
    description: str = ""

    def build(self, num_classes: int = 1000, **options: Any) -> nn.Module:
        """The network with ``num_classes`` outputs; ``options`` (small_input, dropout, branches, shortcut,
        relu_after_dw, width, in_chans, ...) override the entry's own variant. Fused names give the inference form."""
        if self.family == "timm":
            return _build_timm(self.timm_name or "", num_classes, self.fused, **options)
        kwargs = {**({"width": self.width} if self.width is not None else {}), **self.variant}
        kwargs.update({k: v for k, v in options.items() if v is not None})
        if self.family == "ghostnet" and {"branches", "relu_after_dw"} & set(kwargs):
            raise UserError(f"{self.name} is a GhostNet: branches and relu_after_dw are RepGhostNet options "
                            "(Table 6); drop them or pick a repghostnet_* model.")
        factory = networks.repghostnet if self.family == "repghostnet" else networks.ghostnet
        model = factory(num_classes=num_classes, **kwargs)
        return fuse_model(model.eval()) if self.fused else model

    def __call__(self) -> nn.Module:
        return build_named_model(self.name)


def _build_timm(timm_name: str, num_classes: int, reparam: bool, dropout: Optional[float] = None,
                small_input: Optional[bool] = None, **kwargs: Any) -> nn.Module:
    """A timm model (random weights); ``small_input`` has no timm counterpart and is ignored."""
    try:
        import timm
    except ImportError:
        raise ImportError("timm models need the timm package: `pip install timm` (or `pip install -e .[dev]`).") \
            from None
    if dropout is not None:
        kwargs["drop_rate"] = dropout
    model = timm.create_model(timm_name, pretrained=False, num_classes=num_classes, **kwargs)
    return fuse_model(model.eval()) if reparam else model


def fuse_model(model: nn.Module) -> nn.Module:
    """Inference-form deep copy of an eval-mode model: every model this package builds (networks, their
    ``features_only`` :class:`repghost_mini.core.FeatureNet`, single blocks) through
    :func:`repghost_mini.reparameterize`, which leaves no BatchNorm behind a conv; a timm model through timm's own
    ``reparameterize_model`` (which keeps the BatchNorms that follow convs). Raises ``ValueError`` naming what cannot
    be fused (the Table 6 "+ReLU" variant). A model card (``model.card``) is copied with ``fused=True``."""
    if type(model).__module__.split(".")[0] != "timm":
        fused = reparameterize(model)
    else:
        from timm.utils.model import reparameterize_model

        fused = reparameterize_model(copy.deepcopy(model))
    if getattr(model, "card", None) is not None:  # the copy's model card now describes the fused form
        fused.card = model.card.replace(fused=True)
    return fused


def _branch_suffix(branches: Tuple[str, ...]) -> str:
    return "_".join(branches) if branches else "noreparam"


def _registry() -> Dict[str, ModelEntry]:
    entries: List[ModelEntry] = [
        ModelEntry("repghostnet", "repghostnet", description="RepGhostNet, any width= (default 1.0)"),
        ModelEntry("ghostnet", "ghostnet", description="GhostNet, any width= (default 1.0)")]
    for width, suffix in _WIDTH_SUFFIX.items():
        entries.append(ModelEntry(f"repghostnet_{suffix}", "repghostnet", width, description=f"RepGhostNet {width}x"))
    for width in _GHOSTNET_WIDTHS:
        entries.append(ModelEntry(f"ghostnet_{_WIDTH_SUFFIX[width]}", "ghostnet", width,
                                  description=f"GhostNet {width}x"))
    for r in range(len(REPARAM_BRANCHES) + 1):  # Table 6: every branch set on RepGhostNet 0.5x
        for branches in itertools.combinations(REPARAM_BRANCHES, r):
            if branches != ("bn",):  # the paper's choice is the plain name
                entries.append(ModelEntry(f"repghostnet_050_{_branch_suffix(branches)}", "repghostnet", 0.5,
                                          {"branches": branches}, description=f"Table 6: branches {branches}"))
    entries.append(ModelEntry("repghostnet_050_relu", "repghostnet", 0.5, {"relu_after_dw": True},
                              description="Table 6 '+ReLU' (cannot be fused)"))
    for width in _TABLE7_WIDTHS:
        entries.append(ModelEntry(f"repghostnet_{_WIDTH_SUFFIX[width]}_noshortcut", "repghostnet", width,
                                  {"shortcut": False}, description=f"Table 7: RepGhostNet {width}x without shortcut"))
    fusable = [e for e in entries if e.family == "repghostnet" and not e.variant.get("relu_after_dw")]
    entries += [ModelEntry(e.name + "_fused", e.family, e.width, e.variant, True, description=e.description +
                           ", re-parameterized") for e in fusable]
    for width in _TIMM_WIDTHS:
        timm_name = f"repghostnet_{_WIDTH_SUFFIX[width]}"
        entries.append(ModelEntry(f"timm_{timm_name}", "timm", timm_name=timm_name, description=f"timm's {timm_name}"))
        entries.append(ModelEntry(f"timm_{timm_name}_reparam", "timm", fused=True, timm_name=timm_name,
                                  description=f"timm's {timm_name} after timm's reparameterize_model"))
    entries.append(ModelEntry("timm_mobileone_s0_reparam", "timm", fused=True, timm_name="mobileone_s0",
                              description="timm's MobileOne-S0 after reparameterize_model (Table 3, Fig. 1)"))
    return {e.name: e for e in entries}


#: name -> :class:`ModelEntry` (calling an entry builds the model as :func:`build_named_model` does).
MODEL_REGISTRY: Dict[str, ModelEntry] = _registry()


def available_models() -> List[str]:
    """Every registered name, sorted (``timm:<name>`` is accepted too but not listed)."""
    return sorted(MODEL_REGISTRY)


def _check_timm_name(timm_name: str) -> None:
    """One sentence for a name timm does not know (checked only when timm is installed; building says if not)."""
    try:
        import timm
    except ImportError:
        return
    if not timm.is_model(timm_name):
        raise UserError(f"timm has no model {timm_name!r}; see timm.list_models() for the names.")


def model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name`` (``"timm:<name>"`` gives a new one); one sentence for an unknown name."""
    if isinstance(name, str) and name.startswith("timm:") and len(name) > 5:
        _check_timm_name(name[5:])
        return ModelEntry(name, "timm", timm_name=name[5:], description=f"timm's {name[5:]}")
    if name not in MODEL_REGISTRY:
        raise UserError(f"unknown model name {name!r}; choose one of: {', '.join(available_models())} "
                         "or 'timm:<name>'.")
    return MODEL_REGISTRY[name]


def build_model(name: str, num_classes: int = 1000, small_input: bool = False, dropout: float = 0.2,
                **options: Any) -> nn.Module:
    """A model by registry name (see the module docstring) or ``"timm:<name>"``, in training form unless the name
    ends in ``_fused``. ``small_input`` (default off, as in
    :func:`repghost_mini.repghostnet`: the paper's stride-32 ImageNet stem; on: the stride-1 stem for 32-64 px
    images), ``dropout`` and ``options`` (branches,
    shortcut, relu_after_dw, width, ...) reach every model the same way."""
    options = {k: v for k, v in options.items() if v is not None}
    return model_entry(name).build(num_classes, small_input=small_input, dropout=dropout, **options)


def build_named_model(name: str) -> nn.Module:
    """An eval-mode network by name with seeded random weights (fine for latency, not for accuracy): ImageNet
    head and stem; ``_fused`` names are fused after their BatchNorm statistics are randomized. The global random
    state is the same afterwards (the seeding happens inside ``torch.random.fork_rng``)."""
    entry = model_entry(name)
    with torch.random.fork_rng(devices=[]):  # seeded weights (fusion builds layers too); the caller's random
        torch.manual_seed(0)                 # stream is left as it was
        if entry.family == "timm":
            return entry.build().eval()
        model = replace(entry, fused=False).build(small_input=False).eval()
        if entry.fused:
            model = fuse_model(randomize_bn_stats_(model, seed=0))
        return model.eval()

