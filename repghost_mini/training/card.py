"""The model card: what a saved model is, so nothing downstream guesses (timm's ``pretrained_cfg``, fastai's export).

Two small dataclasses:

* :class:`ModelOptions` -- the one declaration of what builds a network (registry name and the options every
  model takes the same way). :class:`repghost_mini.TrainConfig` is built from it, the ``train`` command's flags
  are derived from its fields, and the card holds it.
* :class:`ModelCard` -- the options plus what a user of the weights needs: number of classes, input size,
  normalization (mean / std), class names, data set, the measured top-1 and on which split, which weights were
  kept and how they were chosen, the recipe, the library version, and whether the weights are the fused form.

A card travels inside every checkpoint this package writes (key ``"card"``) and in every ONNX file that
:func:`repghost_mini.deploy.artifacts.export_run` writes (``metadata_props["repghost_mini_card"]``, JSON), so
:func:`repghost_mini.load` rebuilds any of them from the file alone, and :meth:`ModelCard.preprocess` turns
images into the tensors the model was trained on.
"""
from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from torch import nn

from ..errors import UserError
from .data import eval_transforms
from .registry import build_model, model_entry

__all__ = ["ModelOptions", "ModelCard", "CARD_KEY", "library_version"]

#: Key of the card in an ONNX file's ``metadata_props``.
CARD_KEY = "repghost_mini_card"


def library_version() -> str:
    """The installed version of repghost_mini (``"unknown"`` when it runs from a folder that was not installed)."""
    try:
        return importlib.metadata.version("repghost_mini")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class ModelOptions:
    """How to build a network: ``model`` is a registry name (:func:`repghost_mini.available_models` or
    ``"timm:<name>"``); ``small_input`` (the stride-1 stem for 32-64 px images; ``None``: decided by the data,
    on for images of at most 64 px, see :meth:`for_images`), ``dropout``, ``branches`` (Table 6), ``shortcut``
    (Table 7) and ``relu_after_dw`` (Table 6 "+ReLU") reach every model the same way (``None``: the model's own
    default); ``model_kwargs`` holds any other builder argument (``width`` of
    ``"repghostnet"``, timm options) and may not repeat one of the named options."""

    model: str = "repghostnet_050"
    small_input: Optional[bool] = None
    dropout: float = 0.2
    branches: Optional[Tuple[str, ...]] = None
    shortcut: Optional[bool] = None
    relu_after_dw: Optional[bool] = None
    model_kwargs: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def names(cls) -> Tuple[str, ...]:
        """The option names, in declaration order (the fields a training run may never change)."""
        return tuple(f.name for f in dataclasses.fields(ModelOptions))

    def model_options(self) -> ModelOptions:
        """These options alone (also when called on a :class:`repghost_mini.TrainConfig` built from them)."""
        return ModelOptions(**{name: getattr(self, name) for name in ModelOptions.names()})

    def build_kwargs(self) -> Dict[str, Any]:
        """The keyword arguments of :func:`repghost_mini.build_model` (besides name and ``num_classes``)."""
        named = {"small_input": self.small_input, "dropout": self.dropout, "branches": self.branches,
                 "shortcut": self.shortcut, "relu_after_dw": self.relu_after_dw}
        twice = sorted(k for k in self.model_kwargs if named.get(k) is not None)
        if twice:
            raise UserError(f"model_kwargs repeats the option(s) {twice}; give each option once (as its own "
                            "setting, not inside model_kwargs).")
        return {**{k: v for k, v in named.items() if v is not None}, **self.model_kwargs}

    def for_images(self, image_size: int) -> ModelOptions:
        """These options with ``small_input`` decided for images of ``image_size`` px when it is ``None`` (on up to
        64 px: CIFAR-10, Tiny-ImageNet; off above, the paper's ImageNet stem)."""
        options = self.model_options()
        if options.small_input is None:
            options.small_input = image_size <= 64
        return options

    def build(self, num_classes: int) -> nn.Module:
        """The network in training form, with ``num_classes`` outputs (``small_input=None`` builds the paper's
        ImageNet stem; :meth:`for_images` decides it for a data set first)."""
        return build_model(self.model, num_classes, **self.build_kwargs())

    def why_not_fusable(self) -> Optional[str]:
        """``None`` when the network these options build can be re-parameterized, else why not -- known from the
        options alone, before anything is built: the Table 6 "+ReLU" variant has a ReLU between the depthwise
        conv and the add, which is not linear."""
        entry = model_entry(self.model)
        relu = self.build_kwargs().get("relu_after_dw", entry.variant.get("relu_after_dw", False))
        if relu:
            return ("the '+ReLU' variant (relu_after_dw=True) has a ReLU between the depthwise conv and the add, "
                    "which is not linear, so it cannot be re-parameterized (paper Table 6, last row)")
        return None


@dataclass
class ModelCard:
    """Everything a user of saved weights needs besides the weights (see the module docstring).

    ``image_size``: the side of the square input the model was trained on; ``mean`` / ``std``: per-channel
    normalization of images scaled to [0, 1]; ``top1`` (percent) measured on ``top1_split`` (e.g.
    ``"cifar10-subset test split, 1017 images"``); ``weights``: ``"ema"`` or ``"raw"``, chosen as
    ``selected_on`` says; ``recipe``: the training settings that decide the result (run-time settings left out).
    """

    options: ModelOptions
    num_classes: int
    image_size: int
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    class_names: Optional[List[str]] = None
    dataset: Optional[str] = None
    fused: bool = False
    top1: Optional[float] = None
    top1_split: Optional[str] = None
    weights: str = "raw"
    selected_on: Optional[str] = None
    recipe: Optional[Dict[str, Any]] = None
    library_version: Optional[str] = None
    in_chans: int = 3

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        """The card stored by :meth:`to_dict`; one sentence naming what is missing when it is not a card."""
        if not isinstance(data, Mapping):
            raise UserError(f"a model card is a dict, got {type(data).__name__}.")
        missing = [k for k in ("options", "num_classes", "image_size", "mean", "std") if k not in data]
        if missing or not isinstance(data["options"], Mapping):
            raise UserError(f"the model card lacks {missing or ['options']}; the file was not written by "
                            "repghost_mini (or is damaged): export it again.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known) + sorted(f"options.{k}" for k in set(data["options"]) -
                                                     set(ModelOptions.names()))
        if unknown:
            raise UserError(f"the model card has unknown fields {unknown[:3]}; the file was not written by this "
                            "version of repghost_mini (or is damaged): export it again.")
        problem = _card_problem(data)
        if problem:
            raise UserError(f"the model card's {problem}; the file is damaged or was edited: export it again.")
        values = dict(data)
        opts = dict(data["options"])
        if opts.get("branches") is not None:
            opts["branches"] = tuple(opts["branches"])
        values["options"] = ModelOptions(**opts)
        values["mean"], values["std"] = tuple(data["mean"]), tuple(data["std"])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError:
            raise UserError("the model card is not valid JSON; the file is damaged: export it again.") from None

    def replace(self, **changes: Any) -> ModelCard:
        return dataclasses.replace(self, **changes)

    @property
    def input_size(self) -> Tuple[int, int, int, int]:
        """``(1, in_chans, image_size, image_size)``: the input shape of one image."""
        return (1, self.in_chans, self.image_size, self.image_size)

    def preprocess(self, images: Sequence[Any]):
        """A float batch ``(N, 3, image_size, image_size)`` from PIL images (any mode: RGBA, grayscale, palette are
        converted to RGB) or uint8 tensors ``(3, H, W)``: resized (shorter side) and centre-cropped to
        ``image_size``, scaled to [0, 1], normalized with the card's mean / std -- what the model saw in
        evaluation."""
        import torch

        transform = eval_transforms(self.image_size, self.mean, self.std)
        return torch.stack([transform(_rgb(image)) for image in images])

    def check_data(self, data: Any) -> None:
        """Refuse, in one sentence, data the model was not trained on: ``data`` (a
        :class:`repghost_mini.training.DataBundle`) must have the card's input size, number of classes, class names
        (when both record them) and normalization; the remedy is the data set the card names."""
        remedy = (f"evaluate it on {self.dataset!r} (--dataset {self.dataset}), the data set its card names"
                  if self.dataset and self.dataset != data.name else
                  "give the images it was trained on (--data, the folder or file it was trained from)")
        problems = []  # (what differs, what to do)
        if data.image_size != self.image_size:
            problems.append((f"the model takes {self.image_size}x{self.image_size} images but {data.name!r} has "
                             f"{data.image_size}x{data.image_size}", remedy))
        if data.num_classes != self.num_classes:
            problems.append((f"the model has {self.num_classes} classes but {data.name!r} has {data.num_classes}",
                             remedy))
        elif self.class_names and list(data.class_names) != list(self.class_names):
            i = next(i for i, (a, b) in enumerate(zip(self.class_names, data.class_names, strict=True)) if a != b)
            shown = ", ".join(self.class_names[:10]) + (", ..." if len(self.class_names) > 10 else "")
            problems.append((f"class {i} of the model is {self.class_names[i]!r} but of {data.name!r} "
                             f"{data.class_names[i]!r}", f"name the class folders as the model's classes ({shown}), "
                                                         "in that order"))
        if not _close(data.mean, self.mean) or not _close(data.std, self.std):
            problems.append((f"{data.name!r} is normalized with mean {tuple(data.mean)} / std {tuple(data.std)} but "
                             f"the model with {self.mean} / {self.std}", remedy))
        if problems:
            raise UserError("; ".join(problems[0]) + ".")

    def check_graph(self, name: str, input_shape: Sequence[Any], num_classes: Any) -> None:
        """Refuse a file (named ``name``) whose card and graph disagree, a card edited or copied from another
        file: the card must state the graph's number of outputs, input channels and input size (dimensions that
        are not numbers, such as a symbolic batch, are not compared)."""
        four = len(input_shape) == 4
        graph = {"classes": num_classes, "input channels": input_shape[1] if four else None,
                 "input size": input_shape[-1] if four else None}
        stated = {"classes": self.num_classes, "input channels": self.in_chans, "input size": self.image_size}
        for what, value in graph.items():
            if isinstance(value, int) and value != stated[what]:
                raise UserError(f"{name}'s model card says {stated[what]} {what} but its graph has {value}: the "
                                "card does not describe this graph (edited or damaged file); export the model "
                                "again.")

    def summary(self) -> str:
        """One line: model, form, input, classes, accuracy."""
        form = "fused" if self.fused else "training form"
        acc = f", top-1 {self.top1:.2f}% on {self.top1_split}" if self.top1 is not None else ""
        return (f"{self.options.model} ({form}), {self.image_size}x{self.image_size} input, {self.num_classes} "
                f"classes{f' of {self.dataset}' if self.dataset else ''}{acc}")


def _close(a: Sequence[float], b: Sequence[float]) -> bool:
    return len(a) == len(b) and all(abs(float(x) - float(y)) <= 1e-6 for x, y in zip(a, b, strict=True))


def _is_int(value: Any, low: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _optional(check: Any) -> Any:
    return lambda value: value is None or check(value)


def _card_problem(data: Mapping[str, Any]) -> Optional[str]:
    """What is wrong with a stored card's fields (type and range of each), or ``None``: a file can come from
    anyone, so nothing is built from a field before it is checked."""
    names = lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v)  # noqa: E731
    channels = data.get("in_chans", 3)
    checks = {
        "num_classes": (_is_int, "a whole number >= 1"),
        "image_size": (_is_int, "a whole number >= 1"),
        "in_chans": (_is_int, "a whole number >= 1"),
        "mean": (lambda v: isinstance(v, (list, tuple)) and len(v) == channels and all(map(_is_number, v)),
                 "one finite number per input channel"),
        "std": (lambda v: isinstance(v, (list, tuple)) and len(v) == channels
                and all(_is_number(x) and x > 0 for x in v), "one positive number per input channel"),
        "class_names": (_optional(lambda v: names(v) and len(v) == data.get("num_classes")),
                        "a list of one name per class"),
        "dataset": (_optional(lambda v: isinstance(v, str)), "a name"),
        "fused": (lambda v: isinstance(v, bool), "True or False"),
        "top1": (_optional(lambda v: _is_number(v) and 0 <= v <= 100), "a percentage"),
        "weights": (lambda v: v in ("raw", "ema"), "'raw' or 'ema'"),
        "options.model": (lambda v: isinstance(v, str), "a model name"),
        "options.small_input": (_optional(lambda v: isinstance(v, bool)), "True, False or None"),
        "options.dropout": (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
        "options.branches": (_optional(names), "a list of branch names"),
        "options.shortcut": (_optional(lambda v: isinstance(v, bool)), "True, False or None"),
        "options.relu_after_dw": (_optional(lambda v: isinstance(v, bool)), "True, False or None"),
        "options.model_kwargs": (lambda v: isinstance(v, Mapping), "a dict"),
    }
    for key, (check, what) in checks.items():
        where = data["options"] if key.startswith("options.") else data
        name = key.split(".")[-1]
        if name in where and not check(where[name]):
            return f"{key} must be {what}, got {where[name]!r}"
    return None


def _rgb(image: Any) -> Any:
    """A PIL image converted to RGB, or a ``(3, H, W)`` / ``(1, H, W)`` tensor as it is; one sentence otherwise."""
    if hasattr(image, "convert"):
        return image.convert("RGB")
    shape = tuple(getattr(image, "shape", ()))
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise UserError(f"preprocess takes PIL images or image tensors of shape (3, H, W), got shape {shape}; "
                        "drop an alpha channel (image[:3]) or pass PIL images.")
    return image
