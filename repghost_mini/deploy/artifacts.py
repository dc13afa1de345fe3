"""The files a trained model ships as, and the one function that reads any of them.

The straight path from training to a deployable model::

    train  ->  <run>/checkpoint.pth           training form, EMA / raw weights, optimizer state, model card
    export ->  <out>/fused.pth                 the re-parameterized network (no BatchNorm), model card
               <out>/model.onnx                the same network in fp32 ONNX, model card in metadata_props

:func:`export_run` writes both files from a checkpoint (or a run folder): it re-parameterizes once (or takes the
fused model the training run already built, ``fused=``), exports, and checks that onnxruntime's outputs equal
the training-form model's on real images of the card's data set. :func:`load` rebuilds a model from any of
these files with no other argument: the model card says what it is, its input size and its normalization.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional, Union

import torch
from torch import nn

from ..core.reparam import count_batchnorms
from ..errors import UserError
from ..training.card import ModelCard
from ..training.checkpoints import read_checkpoint, save_checkpoint
from ..training.data import load_dataset, make_loaders
from ..training.registry import fuse_model
from .export import check_onnx_matches, export_onnx
from .quantize import OnnxModel

__all__ = ["export_run", "load", "FUSED_NAME", "ONNX_NAME"]

PathLike = Union[str, os.PathLike]
FUSED_NAME = "fused.pth"
ONNX_NAME = "model.onnx"


def load(path: PathLike, threads: int = 1) -> nn.Module:
    """The model saved at ``path``, rebuilt from the file alone, in eval mode, with its :class:`ModelCard` as
    ``model.card``: a training checkpoint or run folder (training form, the weights the run kept), a
    ``fused.pth`` (inference form), or a ``model.onnx`` (an :class:`repghost_mini.deploy.quantize.OnnxModel`
    run by onnxruntime on ``threads`` CPU threads). Preprocess images with ``model.card.preprocess(images)``."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        model = OnnxModel(path, threads=threads)  # refuses a card that does not describe the graph
        if model.card is None:
            raise UserError(f"{str(path)!r} holds no repghost_mini model card (it was not written by `export` / "
                            "export_run); use repghost_mini.deploy.quantize.OnnxModel(path) and preprocess the "
                            "images yourself.")
        return model.eval()
    return read_checkpoint(path).build_model()


def _check_images(card: ModelCard, count: int = 64) -> torch.Tensor:
    """The first ``count`` test images of the card's data set, preprocessed as in evaluation."""
    if not card.dataset:
        raise UserError("the model card names no data set, so there are no real images to check the export "
                        "against; pass images=.")
    bundle = load_dataset(card.dataset, test_per_class=max(1, count // card.num_classes), download=False)
    _, test = make_loaders(bundle, batch_size=count, augment=False, eval_batch_size=count)
    return next(iter(test))[0]


@torch.no_grad()
def export_run(source: PathLike, out_dir: Optional[PathLike] = None, fused: Optional[nn.Module] = None,
               images: Optional[torch.Tensor] = None, overwrite: bool = False) -> Dict[str, Path]:
    """Write ``fused.pth`` and ``model.onnx`` for the checkpoint (or run folder) ``source`` into ``out_dir``
    (default: the checkpoint's folder); returns ``{"fused": path, "onnx": path}``.

    ``fused``: the re-parameterized model of the checkpoint's kept weights when the caller already has it (the
    ``train`` command passes the one its final evaluation built), so fusion runs once on the way. ``images``: real,
    preprocessed images (N, 3, S, S) to check the export on (default: the first 64 test images of the card's data
    set); the ONNX file must give the training-form model's logits on them within float32 rounding. Models that
    cannot be re-parameterized (the Table 6 "+ReLU" variant) get ``model.onnx`` of their training form and no
    ``fused.pth``. Existing files are refused unless ``overwrite``.
    """
    ckpt = read_checkpoint(source)
    out = Path(out_dir) if out_dir is not None else ckpt.path.parent
    targets = {"fused": out / FUSED_NAME, "onnx": out / ONNX_NAME}
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not overwrite:
        raise UserError(f"{existing[0]} already exists; export never overwrites a file: choose another --out "
                        "folder or remove it.")
    if ckpt.fused:
        raise UserError(f"{str(ckpt.path)!r} is already a fused checkpoint; export the training checkpoint it was "
                        "made from.")
    card = ckpt.card  # one sentence for an older checkpoint that does not say what it is
    model = ckpt.build_model()
    why_not = card.options.why_not_fusable()
    if fused is None and why_not is None:
        fused = fuse_model(model)
    if images is None:
        images = _check_images(card)
    out.mkdir(parents=True, exist_ok=True)
    written: Dict[str, Path] = {}
    deployed, deployed_card = model, card
    if fused is not None:
        left = count_batchnorms(fused)
        if left and not card.options.model.startswith("timm:"):
            raise UserError(f"re-parameterization left {left} BatchNorm(s) in {card.options.model}; this model "
                            "cannot be fully fused.")
        fused_card = getattr(fused, "card", None)  # the train command's fused model carries its measured card
        deployed_card = fused_card if fused_card is not None and fused_card.fused else card.replace(fused=True)
        save_checkpoint(targets["fused"], fused, card.options.model, run_config=ckpt.run_config, fused=True,
                        class_names=card.class_names, image_size=card.image_size, num_classes=card.num_classes,
                        card=deployed_card, weights=card.weights, source=str(ckpt.path), overwrite=overwrite)
        written["fused"] = targets["fused"]
        deployed = fused
    export_onnx(deployed, targets["onnx"], card=deployed_card, overwrite=overwrite)
    check_onnx_matches(model, targets["onnx"], images=images)
    written["onnx"] = targets["onnx"]
    return written
