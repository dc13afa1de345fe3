"""Checkpoints: the one file format we write, the one reader, and loading the authors' / timm's weights.

**Our format** (:func:`save_checkpoint` writes it, :func:`read_checkpoint` reads it; ``torch.load(...,
weights_only=True)``, atomic writes). One flat dict:

* ``format`` (``"repghost_mini-checkpoint-v2"``), ``model`` (registry name, see
  :mod:`repghost_mini.training.registry`), ``model_config`` (the network's own ``.config``: width, num_classes,
  small_input, branches, shortcut, relu_after_dw, dropout, in_chans -- everything to rebuild the exact model),
  ``fused`` (inference form or not), ``num_classes``, ``class_names``, ``image_size``;
* ``config``: the run's settings (:class:`repghost_mini.TrainConfig` as a dict) or ``None``;
* ``state_dict`` and, when the run kept an EMA, ``state_dict_ema``;
* for a training run, what resuming needs: ``epoch, step, tick, elapsed, history, optimizer, scheduler, scaler,
  rng, ema_n_averaged``.

Files from before this format (training checkpoints without ``format`` or with ``repghost_mini-train-v1``,
``convert`` outputs, the reference-weights payload) are read by the same reader.

**Foreign weights** (:func:`load_checkpoint`, :func:`read_state_dict`): a plain ``state_dict``, or a dict holding
``state_dict_ema`` and/or ``state_dict`` (EMA preferred, as the paper reports EMA accuracy), with or without the
``module.`` prefix of DistributedDataParallel. Our module names follow the authors' code and timm, so their
training-form weights map one to one. Loading is strict: a file that does not fit gives one error naming the
missing / unexpected / mis-shaped keys, never a partial load. A training-form checkpoint can be loaded into a
fused model: it is loaded into a training-form twin built from ``model.config``, fused, and copied over.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import torch
from torch import nn

from ..core.reparam import count_batchnorms, reparameterize
from ..errors import UserError
from ..files import atomic_output
from .card import ModelCard, ModelOptions, _is_int
from .data import NORMALIZATION
from .registry import build_model, fuse_model

__all__ = ["read_state_dict", "load_checkpoint", "save_atomic", "save_checkpoint", "read_checkpoint", "Checkpoint",
           "CHECKPOINT_FORMAT", "load_reference_model", "REFERENCE_MODELS"]

Source = Union[str, os.PathLike, Mapping[str, Any]]
CHECKPOINT_FORMAT = "repghost_mini-checkpoint-v2"
#: Reference models shipped as package data (``repghost_mini/weights/``), by :func:`load_reference_model` name.
REFERENCE_MODELS: Dict[str, str] = {"cifar10": "cifar10_repghostnet_080.pth"}
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"


def save_atomic(obj: Any, path: Union[str, os.PathLike], overwrite: bool = True) -> Path:
    """``torch.save`` through :func:`repghost_mini.files.atomic_output` (temporary file, then rename): a
    crash never leaves half a file, a full disk leaves the previous file, the mode is the usual one (0o666 minus
    the umask); ``overwrite=False`` refuses an existing file (:func:`repghost_mini.files.atomic_output`)."""
    buffer = io.BytesIO()  # serialize first: a full disk then fails in a plain write, as one OSError sentence,
    torch.save(obj, buffer)  # not inside torch's zip writer ("inline_container.cc ... unexpected pos")
    with atomic_output(path, overwrite) as tmp:
        tmp.write_bytes(buffer.getbuffer())
    return Path(path)


def _load_file(path: Union[str, os.PathLike]) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with one sentence for a missing or unreadable file."""
    if not os.path.isfile(path):
        what = ("is a folder, not a file" if os.path.isdir(path) else
                "is not a regular file (a device, pipe or socket)" if os.path.exists(path) else "does not exist")
        raise FileNotFoundError(f"checkpoint file {os.fspath(path)!r} {what}; check the path.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle errors carry long messages; give one sentence
        raise UserError(f"could not read {os.fspath(path)!r} as a PyTorch checkpoint with weights_only=True "
                        f"({type(err).__name__}); is it a .pth/.pt file of tensors?") from None


# ---------------------------------------------------------------------------------------------------------------
# our format: one writer, one reader
# ---------------------------------------------------------------------------------------------------------------
def save_checkpoint(path: Union[str, os.PathLike], model: nn.Module, model_name: str,
                    run_config: Optional[Mapping[str, Any]] = None, fused: Optional[bool] = None,
                    class_names: Optional[List[str]] = None, image_size: Optional[int] = None,
                    ema_model: Optional[nn.Module] = None, dtype: Optional[torch.dtype] = None,
                    num_classes: Optional[int] = None, card: Optional[ModelCard] = None, overwrite: bool = True,
                    **extra: Any) -> Path:
    """Write ``model`` (and ``ema_model``'s weights) in our checkpoint format, atomically; returns the path.

    ``model_name`` is the registry name the model was built from; ``fused`` defaults to "holds no BatchNorm";
    ``dtype`` stores floating-point weights in that type (e.g. ``torch.float16`` for shipped weights);
    ``card`` (:class:`repghost_mini.ModelCard`) is stored under ``"card"``; ``extra`` holds the training state
    (epoch, optimizer, ...) or notes (source file). ``overwrite=False``: refuse to replace an existing file.
    """
    def weights(m: Optional[nn.Module]) -> Optional[Dict[str, torch.Tensor]]:
        if m is None:
            return None
        sd = m.state_dict()
        return {k: v.to(dtype) if dtype is not None and v.is_floating_point() else v for k, v in sd.items()}

    config = getattr(model, "config", None)
    if num_classes is None:
        num_classes = config.get("num_classes") if config else getattr(model, "num_classes", None)
    ckpt = {"format": CHECKPOINT_FORMAT, "model": model_name, "model_config": dict(config) if config else None,
            "fused": count_batchnorms(model) == 0 if fused is None else bool(fused),
            "num_classes": None if num_classes is None else int(num_classes),
            "config": dict(run_config) if run_config is not None else None, "class_names": class_names,
            "image_size": image_size, "state_dict": weights(model), "state_dict_ema": weights(ema_model),
            "card": card.to_dict() if card is not None else None, **extra}
    return save_atomic(ckpt, path, overwrite)


@dataclass
class Checkpoint:
    """A checkpoint file read by :func:`read_checkpoint`: what the model is, how it was trained, its weights."""

    path: Path
    model_name: str
    model_options: Dict[str, Any]  # keyword arguments of build_model that rebuild the exact network
    fused: bool
    num_classes: int
    run_config: Optional[Dict[str, Any]]
    class_names: Optional[List[str]]
    image_size: Optional[int]
    raw: Dict[str, Any]  # the whole dict as stored (training state for resuming)

    @property
    def has_ema(self) -> bool:
        return isinstance(self.raw.get("state_dict_ema"), Mapping)

    @property
    def kept_weights(self) -> str:
        """``"ema"`` or ``"raw"``: the weights the run kept (the better of the two on its held-out slice); a file
        with one set of weights (a fused checkpoint) says which it holds."""
        stored = self.raw.get("weights")
        if self.has_ema:
            return "raw" if stored == "raw" else "ema"
        return "ema" if stored == "ema" else "raw"

    @property
    def card(self) -> ModelCard:
        """The model card stored with the weights; for a checkpoint written before cards existed, the one its
        fields imply (normalization from its data set's name; one sentence when its input size is unknown)."""
        if isinstance(self.raw.get("card"), Mapping):
            return ModelCard.from_dict(self.raw["card"]).replace(fused=self.fused)
        run = self.run_config or {}
        dataset = run.get("dataset")
        if self.image_size is None:
            raise UserError(f"{str(self.path)!r} is an older checkpoint that does not record its input size; "
                            "retrain it, or load it with repghost_mini.load_checkpoint(model, path) into a model "
                            "you build and export with an explicit input_size.")
        family = "imagenet" if dataset and ("imagenet" in dataset or dataset == "imagefolder") else "cifar10"
        mean, std = NORMALIZATION[family]
        options = {k: v for k, v in self.model_options.items() if k in ModelOptions.names()}
        extra = {k: v for k, v in self.model_options.items() if k not in ModelOptions.names()}
        if options.get("branches") is not None:
            options["branches"] = tuple(options["branches"])
        return ModelCard(ModelOptions(model=self.model_name, **options, model_kwargs=extra), self.num_classes,
                         int(self.image_size), mean, std, self.class_names, dataset, self.fused,
                         weights=self.kept_weights)

    def state_dict(self, use_ema: Optional[bool] = None) -> Dict[str, torch.Tensor]:
        """The stored weights: the EMA weights when present and ``use_ema``, else the raw ones; ``None``: the
        weights the run kept (:attr:`kept_weights`)."""
        if use_ema is None:
            use_ema = self.kept_weights == "ema"
        return dict(self.raw["state_dict_ema"] if use_ema and self.has_ema else self.raw["state_dict"])

    def build_model(self, use_ema: Optional[bool] = None) -> nn.Module:
        """The stored network rebuilt (training or fused form, as saved) with its weights, eval mode, CPU, float32;
        ``model.weights`` says which weights it holds (``"ema"`` / ``"raw"``; ``use_ema`` as in :meth:`state_dict`)."""
        try:
            model = build_model(self.model_name, self.num_classes, **self.model_options)
        except UserError:
            raise
        except (TypeError, ValueError, KeyError) as err:  # settings of the wrong type or range in the file
            raise UserError(f"{str(self.path)!r} is damaged or was edited: its model settings do not build "
                            f"{self.model_name} ({type(err).__name__}: {str(err)[:120]}); write it again.") from None
        if self.fused:
            model = fuse_model(model.eval())
        _strict_load(model, {k: v.float() if v.is_floating_point() else v
                             for k, v in self.state_dict(use_ema).items()})
        ema = self.kept_weights == "ema" if use_ema is None else bool(use_ema) and self.has_ema
        model.weights = "ema" if ema else "raw"
        if self.image_size is not None or isinstance(self.raw.get("card"), Mapping):
            card = self.card
            model.card = card if card.weights == model.weights else card.replace(weights=model.weights, top1=None,
                                                                                 top1_split=None)
        return model.eval()


def _model_options(ckpt: Mapping[str, Any]) -> Dict[str, Any]:
    """build_model keywords from a checkpoint of this format or an earlier one: the run's model options, then the
    network's own ``model_config`` on top (builder arguments it does not record, like a custom ``cfg``, stay)."""
    run = ckpt.get("config") or {}
    if run:
        options = {key: run[key] for key in ("small_input", "dropout", "branches", "shortcut", "relu_after_dw")
                   if run.get(key) is not None}
        options.update(run.get("model_kwargs") or {})
    else:  # the first reference-weights payload
        options = {"small_input": bool(ckpt.get("small_input", True))}
    if isinstance(ckpt.get("model_config"), Mapping):
        options.update({k: v for k, v in ckpt["model_config"].items() if k != "num_classes"})
    return options


def read_checkpoint(path: Union[str, os.PathLike]) -> Checkpoint:
    """Read one of our checkpoints (a run folder is taken as its ``checkpoint.pth``); one sentence when the file
    is not ours (for the authors' / timm's weights use :func:`load_checkpoint`)."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pth"
    ckpt = _load_file(path)
    run = ckpt.get("config") if isinstance(ckpt, Mapping) and isinstance(ckpt.get("config"), Mapping) else None
    name = ckpt.get("model") if isinstance(ckpt, Mapping) else None
    name = name if isinstance(name, str) else (run or {}).get("model")
    if not isinstance(name, str) or ckpt.get("num_classes") is None or not isinstance(ckpt.get("state_dict"), Mapping):
        raise UserError(f"{str(path)!r} is not a repghost_mini checkpoint (no model name, num_classes and "
                        "state_dict); for the authors' or timm's weights use repghost_mini.load_checkpoint(model, "
                        "path).")
    problem = _checkpoint_problem(ckpt)
    if problem:
        raise UserError(f"{str(path)!r} is damaged or was edited: its {problem}; use the file as train / export "
                        "wrote it, or write it again.")
    fused = ckpt["fused"] if "fused" in ckpt else not any(k.endswith("running_var") for k in ckpt["state_dict"])
    checkpoint = Checkpoint(path, name, _model_options(ckpt), bool(fused), ckpt["num_classes"], run,
                            ckpt.get("class_names"), ckpt.get("image_size"), dict(ckpt))
    if isinstance(ckpt.get("card"), Mapping):
        card = checkpoint.card  # validated field by field
        stored = {"num_classes": checkpoint.num_classes, "image_size": checkpoint.image_size}
        differ = [k for k, v in stored.items() if v is not None and getattr(card, k) != v]
        if differ:
            raise UserError(f"{str(path)!r} is damaged or was edited: its card says {differ[0]} "
                            f"{getattr(card, differ[0])} but the file {stored[differ[0]]}; write it again.")
    return checkpoint


def _checkpoint_problem(ckpt: Mapping[str, Any]) -> Optional[str]:
    """What is wrong with the fields a checkpoint is rebuilt from (type and range), or ``None``."""
    whole = _is_int  # a whole number >= 1, as the card's fields are checked
    names = ckpt.get("class_names")
    checks = [
        (whole(ckpt["num_classes"]), f"num_classes is {ckpt['num_classes']!r}, not a whole number >= 1"),
        (ckpt.get("image_size") is None or whole(ckpt["image_size"]),
         f"image_size is {ckpt.get('image_size')!r}, not a whole number >= 1"),
        (names is None or (isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names)
                           and len(names) == ckpt["num_classes"]),
         "class_names is not a list of one name per class"),
        (isinstance(ckpt.get("fused", False), bool), f"'fused' is {ckpt.get('fused')!r}, not True or False"),
        (all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in ckpt["state_dict"].items()),
         "state_dict holds entries that are not named tensors"),
        (all(ckpt.get(k) is None or isinstance(ckpt[k], Mapping) for k in ("config", "model_config", "card",
                                                                          "state_dict_ema")),
         "config, model_config, card or state_dict_ema is not a dict"),
    ]
    return next((message for ok, message in checks if not ok), None)


def load_reference_model(name: str = "cifar10") -> nn.Module:
    """A reference model shipped with the package, fused by :func:`repghost_mini.reparameterize` on loading, in eval
    mode, with ``.class_names``, ``.card`` and ``.info`` (what its training run recorded: ``test_top1`` on the full
    test set, ``train_minutes``, ``device``, ``history`` (one row per epoch), ``commands`` (the ``train`` command
    lines that made it)). ``"cifar10"`` is RepGhostNet-0.8x (small input) trained by the ``train`` command on
    CIFAR-10 and written by ``benchmarks/cifar_reference.py`` (training form, float16; the fused form is made here,
    not stored)."""
    if name not in REFERENCE_MODELS:
        raise UserError(f"unknown reference model {name!r}; choose one of {sorted(REFERENCE_MODELS)}.")
    path = WEIGHTS_DIR / REFERENCE_MODELS[name]
    if not path.is_file():
        raise FileNotFoundError(f"the reference model {name!r} is not installed ({path} is missing); write it "
                                "from a finished `train` run with `python benchmarks/cifar_reference.py RUN_FOLDER`.")
    ckpt = read_checkpoint(path)
    model = reparameterize(ckpt.build_model())  # marks its card fused; a fused file stays as it is
    model.class_names = ckpt.class_names
    model.info = {key: ckpt.raw[key] for key in ("test_top1", "train_minutes", "device", "history", "commands")
                  if key in ckpt.raw}
    return model.eval()


# ---------------------------------------------------------------------------------------------------------------
# anybody's weights into a model you built
# ---------------------------------------------------------------------------------------------------------------
def read_state_dict(source: Source, prefer_ema: bool = True) -> Dict[str, torch.Tensor]:
    """The tensor state dict inside ``source`` (a path or an already loaded dict), ``module.`` prefix removed."""
    if isinstance(source, (str, os.PathLike)):
        source = _load_file(source)
    if not isinstance(source, Mapping):
        raise UserError(f"expected a state_dict or a checkpoint dict, got {type(source).__name__}.")
    keys = ("state_dict_ema", "state_dict") if prefer_ema else ("state_dict", "state_dict_ema")
    for key in keys + ("model",):
        if isinstance(source.get(key), Mapping):
            source = source[key]
            break
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in source.items()}
    non_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if non_tensors:
        raise UserError(f"the checkpoint holds no state_dict: entries {non_tensors[:3]} are not tensors "
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
        raise UserError(f"checkpoint does not fit {type(model).__name__} (width/num_classes/variant must match; "
                        f"nothing was loaded) - " + "; ".join(parts) + ".")
    model.load_state_dict(state, strict=True)


def _check_same_config(model: nn.Module, source: Mapping[str, Any]) -> None:
    """For our own checkpoints: the model must be built like the stored one (same shapes can still differ in
    stride, shortcut or ReLU placement, which no key check sees)."""
    stored, built = source.get("model_config"), getattr(model, "config", None)
    if not isinstance(stored, Mapping) or not isinstance(built, Mapping):
        return
    differ = [f"{k}={stored[k]!r} in the file, {built[k]!r} in the model" for k in sorted(stored)
              if k in built and k != "dropout" and _norm(stored[k]) != _norm(built[k])]
    if differ:
        raise UserError("the checkpoint was saved from a differently built model (" + "; ".join(differ) +
                        "); build the model with the same options or use repghost_mini.training.load_trained(path).")


def _norm(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def load_checkpoint(model: nn.Module, source: Source, prefer_ema: bool = True) -> nn.Module:
    """Load weights from ``source`` into ``model`` (training form or fused) in place and return it.

    Example: ``load_checkpoint(repghostnet_100(), "repghostnet_1_0x.pth.tar")`` or, for the fast form,
    ``load_checkpoint(reparameterize(repghostnet_100().eval()), path)``. Our own checkpoints also have their
    stored model options checked against ``model.config``.
    """
    if isinstance(source, (str, os.PathLike)):
        source = _load_file(source)
    if isinstance(source, Mapping):
        _check_same_config(model, source)
        if source.get("weights") == "raw":
            prefer_ema = False  # our run kept its raw weights (they beat the EMA): load what the run reported
    state = read_state_dict(source, prefer_ema)
    model_is_fused = count_batchnorms(model) == 0
    file_is_training_form = any(k.endswith("running_var") for k in state)
    if model_is_fused and file_is_training_form:
        config = getattr(model, "config", None)
        if config is None:
            raise UserError("this fused model has no .config to rebuild its training form from; load the "
                            "checkpoint into the training-form model, then call reparameterize().")
        twin = type(model)(**config).to(next(model.parameters()).dtype)
        _strict_load(twin, state)
        state = reparameterize(twin.eval(), inplace=True).state_dict()
    _strict_load(model, state)
    return model
