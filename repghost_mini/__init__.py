"""repghost_mini: a small, readable implementation of RepGhost (Chen et al., 2022) for teaching.

Data flows one way: dataset -> model (training form) -> :func:`reparameterize` -> fused model -> export / latency.
The package is grouped by job, each group importing only the ones above it::

    core/      the paper: fusion algebra, the modules of Fig. 3, bottlenecks, networks, reparameterize
    measure/   paper measurements: parameter/MAC counts, concat cost, Table 2 summary, timing, compare (rankings)
    training/  data, model registry, model card, trainer, evaluation, checkpoints
    deploy/    fused weights + ONNX with their card (export_run, load), INT8, latency, detection backbone
    teaching/  diagrams, exercise checkers, the guided tour, the notebooks' run stamp
    paper.py   every number the package attributes to the paper, quoted verbatim
    cli.py     python -m repghost_mini {tour,train,export,eval,convert,quantize,bench,notebooks}

``import repghost_mini as rm`` gives the paper's concepts and the user's verbs (``rm.__all__``, pinned by a test);
everything else is one attribute further, in its group: ``rm.core.repghostnet_100``, ``rm.measure.layer_table``,
``rm.teaching.check_answer``.
"""
from . import core, deploy, measure, paper, teaching, training
from .core.bottlenecks import GhostBottleneck, RepGhostBottleneck
from .core.fusion import fold_bn, fold_bn_into_conv
from .core.modules import GhostModule, RepGhostInferenceModule, RepGhostModule
from .core.networks import GhostNet, RepGhostNet, ghostnet, repghostnet
from .core.reparam import count_batchnorms, randomize_bn_stats_, reparameterize
from .deploy.artifacts import export_run, load
from .deploy.export import export_onnx
from .deploy.latency import compare_latency, measure_latency
from .deploy.quantize import quantize_model
from .errors import UserError
from .measure.counting import count_macs, count_params
from .measure.ranking import compare
from .training.card import ModelCard, ModelOptions
from .training.checkpoints import load_checkpoint
from .training.data import load_dataset, make_loaders
from .training.evaluation import evaluate
from .training.registry import available_models, build_model, fuse_model
from .training.trainer import TrainConfig, train, train_or_load

__version__ = "0.1.0"

__all__ = [
    # the groups
    "core", "measure", "training", "deploy", "teaching", "paper",
    # the paper's concepts (Fig. 3, Fig. 4, Table 2/3, Sec. 3.2)
    "GhostModule", "RepGhostModule", "RepGhostInferenceModule", "GhostBottleneck", "RepGhostBottleneck",
    "GhostNet", "RepGhostNet", "ghostnet", "repghostnet", "fold_bn", "fold_bn_into_conv", "reparameterize",
    "count_batchnorms", "randomize_bn_stats_", "count_params", "count_macs",
    # the user's verbs: build, train, evaluate, save / load, export, measure, compare
    "build_model", "available_models", "fuse_model", "load_dataset", "make_loaders", "TrainConfig", "train",
    "train_or_load", "evaluate", "ModelCard", "ModelOptions", "load_checkpoint", "load", "export_run", "export_onnx",
    "quantize_model", "measure_latency", "compare_latency", "compare",
    "UserError", "__version__",
]
