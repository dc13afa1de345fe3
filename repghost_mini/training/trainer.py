r"""Training RepGhostNet with the paper's recipe, scaled down (paper Sec. 4.1, "Implementation Details").

The paper: SGD with momentum 0.9, base learning rate 0.6 for batch 1024, cosine annealing over 300 epochs with
5 warm-up epochs, weight decay $10^{-5}$, dropout 0.2 before the classifier, EMA of the weights (decay 0.9999),
crop + flip + random erasing ($p=0.2$). Here the same pieces come from well-kept libraries:

* schedule: ``torch.optim.lr_scheduler`` -- ``LinearLR`` warm-up, then ``CosineAnnealingLR``:
  $$\eta_t = \tfrac12\,\eta_{\max}\,\bigl(1 + \cos(\pi\, t / T)\bigr)$$
  over the steps of the run, or -- with a time budget and no epoch count -- over the elapsed fraction of the
  budget, so the learning rate reaches zero exactly when the time is up;
* EMA: ``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn``
  ($\bar\theta \leftarrow d\,\bar\theta + (1-d)\,\theta$), averaging BatchNorm buffers too (``use_buffers=True``).
  Default decay **0.98**, not the paper's 0.9999: an EMA averages over roughly the last $1/(1-d)$ steps, 10,000
  for 0.9999 -- more than a whole short run (about 2,000 steps in 5 CPU minutes), so it would still hold mostly
  the random start; 0.98 averages the last ~50 steps (under one epoch of the CIFAR-10 subset at batch 64), the
  setting the accuracy benchmarks were measured with. Long runs: raise it (``ema_decay=0.999``);
* AMP on CUDA; channels_last on CUDA *and* CPU (oneDNN's convolutions are faster in NHWC; measure it on your
  machine with ``benchmarks/train_throughput.py``; ``channels_last=False`` switches it off);
  DistributedDataParallel under ``torchrun``.

Evaluation reports top-1/top-5 of the training-form network *and* of its re-parameterized (fused) form
(:func:`repghost_mini.reparameterize`), and checks that both predict the same classes.
"""
from __future__ import annotations

import copy
import csv
import dataclasses
import json
import math
import numbers
import os
import random
import time
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.distributed as dist
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from ..errors import UserError
from ..files import LOCK_NAME, RunLock, atomic_output, write_json_atomic
from .card import ModelCard, ModelOptions, library_version
from .checkpoints import read_checkpoint, save_checkpoint
from .data import DataBundle, eval_loader, holdout_split, load_dataset, make_loaders
from .evaluation import _run_eval, evaluate, evaluate_reparameterized
from .registry import fuse_model

__all__ = ["TrainConfig", "DataOptions", "OptimOptions", "ScheduleOptions", "RunOptions", "TrainResult",
           "train", "train_many", "load_trained", "train_or_load", "plot_history", "select_device",
           "CHECKPOINT_NAME", "SHORT_RUN_RECIPE", "config_differences", "RUNTIME_FIELDS", "NETWORK_FIELDS"]

CHECKPOINT_NAME = "checkpoint.pth"
#: Settings that replace the paper's batch 1024 / weight decay 1e-5 (made for 1.28 M images x 300 epochs) in runs
#: of a few CPU minutes on a few thousand images: twice the SGD steps of batch 128, and stronger decay. Measured in
#: benchmarks/results/cifar_recipe_search.md; used by the tour and the accuracy benchmark.
SHORT_RUN_RECIPE: Dict[str, Any] = {"batch_size": 64, "weight_decay": 5e-4}
_TIME_TICKS = 1000  # resolution of the schedule when it follows elapsed time


@dataclass
class DataOptions:
    """The data a run trains on: ``dataset`` (:data:`repghost_mini.training.data.DATASET_NAMES`) found in
    ``data_path`` (else ``$REPGHOST_MINI_DATA`` / the repository's ``data/``), optionally only the first
    ``train_per_class`` / ``test_per_class`` images of every class; ``augment`` (crop + flip) and
    ``random_erasing`` (its probability). ``holdout``: the share of the training split held out (stratified, never
    trained on) to choose between the EMA and the raw weights, used only when the run keeps an EMA, so that the
    test split is measured once and chooses nothing."""

    dataset: str = "cifar10-subset"
    data_path: Optional[str] = None
    train_per_class: Optional[int] = None
    test_per_class: Optional[int] = None
    augment: bool = True
    random_erasing: float = 0.2
    holdout: float = 0.1


@dataclass
class OptimOptions:
    """The optimizer and the numerics of a step: SGD (``lr`` for ``batch_size``, ``momentum``, ``weight_decay``),
    ``label_smoothing``, the EMA decay (``None``: no EMA), and ``amp`` / ``channels_last`` / ``sync_bn``
    (``None``: on where they pay, see the module notes)."""

    batch_size: int = 128
    lr: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 1e-5
    label_smoothing: float = 0.1
    ema_decay: Optional[float] = 0.98
    amp: Optional[bool] = None
    channels_last: Optional[bool] = None
    sync_bn: bool = False


@dataclass
class ScheduleOptions:
    """How long and in which order: ``epochs`` and/or ``time_budget`` (seconds of training), the warm-up share of
    the cosine schedule, and the ``seed`` of weights, data order and augmentation."""

    epochs: Optional[int] = 30
    time_budget: Optional[float] = None
    warmup: float = 0.05
    seed: int = 0


@dataclass
class RunOptions:
    """How a run is carried out, not what it computes: these may differ when resuming and are not compared when a
    finished run is matched (:func:`train_or_load`). ``compile``: run the training step through ``torch.compile``
    (same results up to float rounding; the first steps pay the compilation); ``None``: on with CUDA, off on the
    CPU, where it has not yet been measured as a win on every CPU kind (``benchmarks/train_throughput.py``)."""

    device: str = "auto"
    workers: Optional[int] = None
    threads: Optional[int] = None
    out_dir: Optional[str] = None
    resume: Union[bool, str] = False
    allow_changes: bool = False
    overwrite: bool = False
    progress: bool = True
    checkpoint: bool = True
    stop_after: Optional[int] = None
    eval_every: int = 1
    compile: Optional[bool] = None


#: TrainConfig fields that change how a run is carried out, not what it computes (:class:`RunOptions`).
RUNTIME_FIELDS = frozenset(f.name for f in fields(RunOptions))
#: Fields that fix the network (its weights' meaning and shapes) and its data: never changeable on resume.
NETWORK_FIELDS = ModelOptions.names() + ("dataset", "data_path", "holdout")
Network = Union[nn.Module, Callable[[int], nn.Module]]


@dataclass
class TrainConfig(RunOptions, ScheduleOptions, OptimOptions, DataOptions, ModelOptions):
    """Everything a run needs, one flat set of settings made of five small groups (:class:`ModelOptions`,
    :class:`DataOptions`, :class:`OptimOptions`, :class:`ScheduleOptions`, :class:`RunOptions`); every field has
    a default (``TrainConfig(epochs=5, lr=0.3)``).

    ``epochs`` and ``time_budget`` (seconds of training, evaluation excluded) can both be given: the run stops at
    whichever comes first. ``stop_after`` ends this call after that many epochs although the schedule spans
    ``epochs`` (continue later with ``resume=True``: a run in chunks, or a test of resuming). With
    ``epochs=None`` the cosine schedule follows the elapsed share of ``time_budget`` (such runs are not
    bit-reproducible, since how far they get depends on the machine). ``ema_decay`` 0.98: see the module notes.

    ``resume`` refuses a checkpoint made with other settings, naming them; ``allow_changes=True`` continues its
    weights with the new settings and restarts the learning-rate schedule (cosine, no warm-up) over the remaining
    epochs, recorded in ``final.json`` under ``changes``. The network and its data (``NETWORK_FIELDS``) can never
    change. A run folder that already holds a run is refused unless ``resume`` or ``overwrite=True`` (used by
    :func:`train_or_load`, whose folder is its cache).
    """

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        """Raise :class:`repghost_mini.errors.UserError` (a ``ValueError``) with one sentence for a setting that
        cannot work: a value of the wrong type (``epochs='2'``, ``batch_size=2.5``), a number that is not finite,
        or one out of its range -- before any work starts."""
        for f in fields(self):
            value = getattr(self, f.name)
            problem = _type_problem(value, _FIELD_TYPES[f.name])
            if problem:
                raise UserError(f"{f.name} must be {problem}, got {value!r}.")
            if isinstance(value, (str, os.PathLike)) and not _utf8(os.fspath(value)):
                raise UserError(f"{f.name} {os.fspath(value)!r} is not valid UTF-8 (the ONNX and MNN writers cannot "
                                "open such a path); rename it with UTF-8 characters.")
        problems = [
            (self.epochs is None and self.time_budget is None,
             "give epochs, time_budget (seconds) or both; with neither the run would never stop."),
            (self.epochs is not None and self.epochs < 1, f"epochs must be >= 1, got {self.epochs}."),
            (self.time_budget is not None and self.time_budget <= 0,
             f"time_budget must be a positive number of seconds, got {self.time_budget}."),
            (self.lr <= 0 or self.batch_size < 1,
             f"lr must be > 0 and batch_size >= 1 (got lr={self.lr}, batch_size={self.batch_size})."),
            (not 0 <= self.warmup < 1, f"warmup is a fraction of the schedule in [0, 1), got {self.warmup}."),
            (isinstance(self.eval_every, bool) or not isinstance(self.eval_every, int) or self.eval_every < 0,
             f"eval_every must be a whole number of epochs >= 0 (0: only at the end), got {self.eval_every!r}."),
            (self.stop_after is not None and self.stop_after < 1,
             f"stop_after must be >= 1 epoch or None, got {self.stop_after}."),
            (self.ema_decay is not None and not 0 < self.ema_decay < 1,
             f"ema_decay must be in (0, 1) or None, got {self.ema_decay}."),
            (not 0 <= self.label_smoothing < 1 or not 0 <= self.random_erasing <= 1 or not 0 <= self.dropout < 1,
             "label_smoothing and dropout must be in [0, 1) and random_erasing in [0, 1]."),
            (not 0 < self.holdout <= 0.5, f"holdout is a share of the training split in (0, 0.5], got {self.holdout}."),
            (not 0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}."),
            (self.weight_decay < 0, f"weight_decay must be >= 0, got {self.weight_decay}."),
            (self.workers is not None and self.workers < 0,
             f"workers must be a number of data-loading processes >= 0, got {self.workers}."),
            (self.threads is not None and self.threads < 1, f"threads must be >= 1, got {self.threads}."),
            (not 0 <= self.seed < 2 ** 63, f"seed must be a whole number in [0, 2**63), got {self.seed}."),
            (any(n is not None and n < 1 for n in (self.train_per_class, self.test_per_class)),
             "train_per_class and test_per_class must be >= 1 image per class (or None for all)."),
        ]
        for failed, message in problems:
            if failed:
                raise UserError(message)


def _utf8(text: Any) -> bool:
    try:
        str(text).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _type_problem(value: Any, hint: Any) -> Optional[str]:
    """``None`` when ``value`` fits the type hint of a TrainConfig field, else what the field must be (the
    numbers must also be finite): ``int`` takes whole numbers (not ``True``), ``float`` any finite real number."""
    if typing.get_origin(hint) is Union:
        options = [h for h in typing.get_args(hint) if h is not type(None)]
        if value is None and len(options) < len(typing.get_args(hint)):
            return None
        problems = [_type_problem(value, h) for h in options]
        return None if None in problems else " or ".join(p for p in problems if p) + (
            " (or None)" if len(options) < len(typing.get_args(hint)) else "")
    if hint is bool:
        return None if isinstance(value, bool) else "True or False"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "a whole number"
    if hint is float:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        return None if ok else "a finite number"
    if hint is str:
        return None if isinstance(value, (str, os.PathLike)) else "a string"
    origin = typing.get_origin(hint)
    if origin is tuple:
        ok = isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value)
        return None if ok else "a sequence of names"
    if origin is dict:
        return None if isinstance(value, dict) else "a dict"
    return None


#: The type of every TrainConfig field (resolved from its annotations), for :meth:`TrainConfig.check`.
_FIELD_TYPES: Dict[str, Any] = typing.get_type_hints(TrainConfig)


@dataclass
class TrainResult:
    """What :func:`train` returns: the model to use (EMA weights if EMA is on; training form, eval mode, CPU),
    the per-epoch ``history``, the ``final`` evaluation (:func:`evaluate_reparameterized`), the run folder and
    ``fused``, the re-parameterized model that final evaluation used (CPU; ``None`` off rank 0), so callers never
    fuse the same weights twice, and ``card``, the :class:`repghost_mini.ModelCard` of ``model`` (``model.card``
    and ``fused.card`` hold it too)."""

    model: nn.Module
    history: List[Dict[str, Any]]
    final: Optional[Dict[str, Any]]
    run_dir: Path
    config: TrainConfig
    fused: Optional[nn.Module] = None
    card: Optional[ModelCard] = None


# ----------------------------------------------------------------------------------------------------------------
# Pieces
# ----------------------------------------------------------------------------------------------------------------
def select_device(device: str = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"`` -> ``cuda:<local_rank>`` when CUDA is present, else CPU; otherwise ``torch.device(device)``."""
    if device == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:<index>'.") from None
    if dev.type not in ("cpu", "cuda"):
        raise UserError(f"device {device!r} is not supported here; use 'auto', 'cpu', 'cuda' or 'cuda:<index>'.")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r} asked for but CUDA is not available; use device='cpu' or 'auto'.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UserError(f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s).")
    return dev


def _distributed_env() -> tuple:
    """(rank, world_size, local_rank) from torchrun's environment; (0, 1, 0) outside torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def plot_history(history: List[Dict[str, Any]], path: Optional[Union[str, os.PathLike]] = None):
    """Loss and accuracy curves per epoch (matplotlib Figure; saved as PNG when ``path`` is given).

    With a ``path`` the figure is drawn off-screen (a bare ``Figure``), so training never switches the
    matplotlib backend of a notebook or desktop session; without one it is a pyplot figure to show.
    """
    if path is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(9, 3.2))
    else:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(9, 3.2))
    ax1, ax2 = fig.subplots(1, 2)
    ep = [h["epoch"] for h in history]
    ax1.plot(ep, [h["train_loss"] for h in history], label="train loss")
    if any(h.get("test_loss") is not None for h in history):
        ax1.plot([h["epoch"] for h in history if h.get("test_loss") is not None],
                 [h["test_loss"] for h in history if h.get("test_loss") is not None], label="test loss")
    ax1.set_xlabel("epoch"), ax1.set_ylabel("cross-entropy"), ax1.legend()
    ax2.plot(ep, [h["train_acc"] for h in history], label="train top-1 (augmented)")
    for key, label in (("test_top1", "test top-1"), ("ema_top1", "test top-1, EMA")):
        pts = [(h["epoch"], h[key]) for h in history if h.get(key) is not None]
        if pts:
            ax2.plot(*zip(*pts, strict=True), label=label)
    ax2.set_xlabel("epoch"), ax2.set_ylabel("accuracy (%)"), ax2.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=80, format="png")
    return fig


def _write_history(run_dir: Path, history: List[Dict[str, Any]]) -> None:
    write_json_atomic(run_dir / "metrics.json", history)
    keys: List[str] = []
    for h in history:
        keys += [k for k in h if k not in keys]
    with atomic_output(run_dir / "metrics.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(history)
    with atomic_output(run_dir / "curves.png") as tmp:
        plot_history(history, tmp)


def _rng_state() -> Dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def config_differences(saved: Dict[str, Any], wanted: Dict[str, Any],
                       ignore=RUNTIME_FIELDS) -> Dict[str, Tuple[Any, Any]]:
    """``{field: (saved value, wanted value)}`` for the run settings that differ (JSON-normalized, so a tuple
    equals its list), leaving out ``ignore`` (default: :data:`RUNTIME_FIELDS`)."""
    saved, wanted = json.loads(json.dumps(saved)), json.loads(json.dumps(wanted))
    return {k: (saved.get(k), wanted.get(k)) for k in sorted(set(saved) | set(wanted))
            if k not in ignore and saved.get(k) != wanted.get(k)}


def _describe(diff: Dict[str, Tuple[Any, Any]]) -> str:
    return ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in diff.items())


def load_trained(path: Union[str, os.PathLike], use_ema: Optional[bool] = None) -> nn.Module:
    """Rebuild the model saved in one of our checkpoints (``<run>/checkpoint.pth``, a run folder, or a ``convert``
    output) with :func:`repghost_mini.training.read_checkpoint`; eval mode, CPU.

    ``use_ema=None`` takes the weights the run kept (``final.json``'s ``weights``: EMA or raw, whichever was
    better on the held-out slice of the training split); ``True`` / ``False`` ask for the EMA / raw weights.
    ``model.weights`` says which (``"ema"`` or ``"raw"``). A model changed beyond what its ``.config`` records (a
    network you modified and passed to :func:`train`) is rebuilt as the registry builds it; build it yourself and use
    :func:`repghost_mini.load_checkpoint` instead.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / CHECKPOINT_NAME).is_file():
            raise FileNotFoundError(f"{str(path)!r} is a folder without a {CHECKPOINT_NAME}; give a run folder or "
                                    "a checkpoint file.")
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}; give a run folder or its {CHECKPOINT_NAME}.")
    return read_checkpoint(path).build_model(use_ema)


def train_or_load(config: TrainConfig, bundle: Optional[DataBundle] = None,
                  use_cache: bool = True) -> Tuple[nn.Module, List[dict], str]:
    """"Load the cached result if present, else train": returns ``(model, history, "cache" | "trained")``.

    A run in ``config.out_dir`` counts only if its *checkpoint* says it finished and was made with exactly these
    settings (:func:`config_differences` is empty); otherwise (or with ``use_cache=False``) :func:`train` runs
    and replaces it. Notebooks use this so they stay fast on a second run and still compute everything from
    scratch on a fresh clone.
    """
    run = Path(config.out_dir)
    if use_cache and (run / CHECKPOINT_NAME).is_file() and (run / "final.json").is_file():
        ckpt = read_checkpoint(run / CHECKPOINT_NAME)
        if ckpt.raw.get("finished") and not config_differences(ckpt.run_config or {}, config.to_dict()):
            return load_trained(run), list(ckpt.raw["history"]), "cache"
    result = train(dataclasses.replace(config, overwrite=True, resume=False), bundle=bundle)
    return result.model, result.history, "trained"


# ----------------------------------------------------------------------------------------------------------------
# The trainer: train() -> _setup -> [_resume] -> per epoch: _train_one_epoch, _evaluate_epoch, _save_checkpoint
# -> _finish
# ----------------------------------------------------------------------------------------------------------------
def train(config: Optional[TrainConfig] = None, bundle: Optional[DataBundle] = None,
          network: Optional[Network] = None, **overrides) -> TrainResult:
    """Train a model with the scaled-down paper recipe; see :class:`TrainConfig` for every setting.

    ``train(TrainConfig(...))``, ``train(epochs=3)`` or both (keywords override the config). ``bundle`` may hand
    over already loaded data. ``network`` replaces building ``config.model`` from the registry: an ``nn.Module``
    to train, or a builder called as ``network(num_classes)`` at the point the model would be built
    (``config.model`` still names it in the run folder). Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) it
    runs DistributedDataParallel: data sharded per rank, gradients averaged, logging / checkpoints / final
    evaluation on rank 0 only. Writes ``metrics.csv``, ``metrics.json``, ``curves.png``, ``checkpoint.pth``
    (every epoch, atomically) and ``final.json`` into the run folder; ``resume=True`` (or a checkpoint path)
    continues a stopped run exactly.
    """
    cfg = copy.deepcopy(config) if config is not None else TrainConfig()
    unknown = sorted(set(overrides) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise TypeError(f"unknown training setting(s) {unknown}; see TrainConfig for the valid names.")
    for k, v in overrides.items():
        setattr(cfg, k, v)
    cfg.check()

    rank, world, local_rank = _distributed_env()
    started_pg = False
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and cfg.device in ("auto", "cuda") else "gloo"
        dist.init_process_group(backend)
        started_pg = True
    if world > 1:
        rank, world = dist.get_rank(), dist.get_world_size()
    try:
        return _train_in_folder(cfg, bundle, network, rank, world, local_rank)
    finally:
        if started_pg:
            dist.destroy_process_group()


def train_many(configs: Sequence[TrainConfig], bundle: Optional[DataBundle] = None, processes: int = 2,
               progress: bool = False) -> List[TrainResult]:
    """Train independent runs ``processes`` at a time, each in a process of its own; results in the order of
    ``configs``. A run without ``threads`` gets this process's threads divided by ``processes`` (at least 1).

    Why: a small network at 32x32 leaves a second thread mostly idle (its operators are too small to split), so two
    one-thread runs side by side finish in about the time of one two-thread run (notebook 05's ablation). A run's
    numbers depend on its thread count (sums in another order), not on which run trains beside it. ``bundle`` is
    handed to every run (else each loads its ``dataset``); ``progress`` shows one bar over the runs (the runs' own
    bars and lines, ``config.progress``, go to the terminal the kernel or script was started from)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    configs = list(configs)
    if not configs or not all(isinstance(c, TrainConfig) for c in configs):
        raise UserError("train_many needs a non-empty list of TrainConfig, one per run.")
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise UserError(f"processes must be a whole number >= 1, got {processes!r}.")
    folders = [str(Path(c.out_dir).resolve()) for c in configs if c.out_dir]
    if len(folders) != len(configs) or len(set(folders)) != len(folders):
        raise UserError("give every run of train_many its own out_dir (runs side by side cannot share a folder).")
    threads = max(1, torch.get_num_threads() // processes)
    configs = [c if c.threads else dataclasses.replace(c, threads=threads) for c in configs]
    for c in configs:
        c.check()
    with ProcessPoolExecutor(min(processes, len(configs)), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(train, c, bundle) for c in configs]
        return [f.result() for f in tqdm(futures, desc="runs", unit="run", disable=not progress)]


def _train_in_folder(cfg: TrainConfig, bundle: Optional[DataBundle], network: Optional[Network], rank: int,
                     world: int, local_rank: int) -> TrainResult:
    """Check what can be checked before any work (device, data, model, fusability), then train with the run
    folder locked (rank 0; :class:`repghost_mini.files.RunLock`). A failed run leaves no empty folder."""
    select_device(cfg.device, local_rank)
    if bundle is None:
        bundle = load_dataset(cfg.dataset, cfg.data_path, train_per_class=cfg.train_per_class,
                              test_per_class=cfg.test_per_class)
    run_dir = Path(cfg.out_dir or f"runs/{bundle.name}-{cfg.model.replace(':', '-')}-seed{cfg.seed}")
    if rank != 0:
        return _train(cfg, bundle, network, rank, world, local_rank, run_dir)
    missing = [p for p in (run_dir, *run_dir.parents) if not p.exists()]
    lock = RunLock(run_dir)
    try:
        lock.acquire()
        _claim_run_folder(run_dir, cfg)
        return _train(cfg, bundle, network, rank, world, local_rank, run_dir)
    finally:
        lock.release()
        for folder in missing:  # the folders this run created, innermost first, if nothing was written there
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def _why_not_fusable(cfg: TrainConfig, network: Optional[Network]) -> Optional[str]:
    """``None`` if the run's model can be re-parameterized, else why not -- known from its options (a registry
    model) or its modules (a ``network`` handed to :func:`train`), without fusing anything."""
    if network is None:
        return cfg.model_options().why_not_fusable()
    model = network if isinstance(network, nn.Module) else None
    if model is not None and any(getattr(m, "relu_after_dw", False) for m in model.modules()):
        return ModelOptions(relu_after_dw=True).why_not_fusable()
    return None


_RUN_FILES = ("final.json", CHECKPOINT_NAME, "metrics.json", "metrics.csv", "curves.png")


def _claim_run_folder(run_dir: Path, cfg: TrainConfig) -> None:
    """Refuse to write over a run the user did not name as this run's own (resume / overwrite)."""
    present = [p.name for p in run_dir.iterdir() if p.name != LOCK_NAME]
    if cfg.resume or not present:
        return
    if cfg.overwrite and set(present) <= set(_RUN_FILES):
        for name in present:
            (run_dir / name).unlink()
        return
    if "final.json" in present:
        raise UserError(f"{run_dir} already holds a finished run; choose another --out (out_dir), or delete that "
                        "folder to train it again.")
    if CHECKPOINT_NAME in present:
        raise UserError(f"{run_dir} holds an unfinished run; continue it with --resume (resume=True), or choose "
                        "another --out (out_dir).")
    raise UserError(f"{run_dir} is not empty (it holds {sorted(present)[:3]}); a run writes into a new or empty "
                    "folder: choose another --out (out_dir).")


@dataclass
class _Run:
    """The state of one training run, shared by the steps of the trainer."""

    cfg: TrainConfig
    rank: int
    world: int
    device: torch.device
    use_amp: bool
    amp_dtype: torch.dtype
    channels_last: bool
    bundle: DataBundle
    train_loader: Any
    test_loader: Any
    holdout_loader: Any
    run_dir: Path
    model: nn.Module
    ema: Optional[AveragedModel]
    net: nn.Module  # what the training step calls: the model, in DDP, through torch.compile, as configured
    eager: nn.Module  # the same without torch.compile: the fallback when compilation fails
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    criterion: nn.Module
    ticks: int
    epoch: int = 0
    step: int = 0
    tick: int = 0
    elapsed: float = 0.0
    stop: bool = False
    history: List[Dict[str, Any]] = field(default_factory=list)
    unfusable: Optional[str] = None
    changes: List[Dict[str, Any]] = field(default_factory=list)
    sched_step0: int = 0  # where the schedule (re)started: 0, or the resume point after --allow-changes
    sched_elapsed0: float = 0.0
    bar: Any = None  # the run's tqdm progress bar

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def budget_spent(self) -> bool:
        return self.cfg.time_budget is not None and self.elapsed >= self.cfg.time_budget


def _train(cfg: TrainConfig, bundle: DataBundle, network: Optional[Network], rank: int, world: int,
           local_rank: int, run_dir: Path) -> TrainResult:
    run = _setup(cfg, bundle, network, rank, world, local_rank, run_dir)
    run.unfusable = _why_not_fusable(cfg, network) if run.is_main else None
    if run.unfusable and run.is_main and cfg.progress:
        tqdm.write(f"note: this model cannot be re-parameterized, so the run reports its training form only "
                   f"({run.unfusable})")
    if cfg.resume:
        _resume(run)
    max_epochs = cfg.epochs if cfg.epochs is not None else 10 ** 9
    last_epoch = min(max_epochs, run.epoch + cfg.stop_after) if cfg.stop_after else max_epochs
    # one progress bar for the whole call (a bar per epoch leaves a dead "0/80" widget per epoch in a notebook)
    total = (last_epoch - run.epoch) * len(run.train_loader) if cfg.epochs is not None else None
    run.bar = tqdm(total=total, desc="training", disable=not (cfg.progress and run.is_main), dynamic_ncols=True)
    while run.epoch < last_epoch and not run.stop and not run.budget_spent():
        row = _train_one_epoch(run)
        _check_diverged(run, row)
        if run.is_main and cfg.eval_every and (run.epoch % cfg.eval_every == 0 or run.stop
                                               or run.epoch == last_epoch):
            _evaluate_epoch(run, row)
        run.history.append(row)
        if run.is_main:
            if cfg.progress:
                tqdm.write(_format_row(row))
            _write_history(run.run_dir, run.history)
            if cfg.checkpoint:
                _save_checkpoint(run)
        if world > 1:
            dist.barrier()
    run.bar.close()
    return _finish(run)


def _setup(cfg: TrainConfig, bundle: DataBundle, network: Optional[Network], rank: int, world: int,
           local_rank: int, run_dir: Path) -> _Run:
    """Device and precision, seeds, data, model (+ SyncBN, channels_last, EMA, DDP), optimizer and schedule."""
    device = select_device(cfg.device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    use_amp = device.type == "cuda" if cfg.amp is None else bool(cfg.amp)
    channels_last = device.type in ("cuda", "cpu") if cfg.channels_last is None else bool(cfg.channels_last)
    amp_dtype = torch.bfloat16 if (device.type != "cuda" or torch.cuda.is_bf16_supported()) else torch.float16
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)

    holdout_loader = None
    if cfg.ema_decay is not None:  # the EMA / raw choice is made on images the run never trains on
        try:
            bundle, held_out = holdout_split(bundle, cfg.holdout, cfg.seed)
        except ValueError as err:
            raise UserError(f"{err} The run keeps an EMA and holds out part of the training split to choose between "
                            "the EMA and the raw weights: give it more images per class, or train without an EMA "
                            "(--no-ema, ema_decay=None).") from None
        holdout_loader = eval_loader(bundle, held_out, max(cfg.batch_size, 256), cfg.workers)
    train_loader, test_loader = make_loaders(bundle, cfg.batch_size, cfg.augment, cfg.random_erasing, cfg.workers,
                                             cfg.seed, rank, world)
    model = _build_network(cfg, network, bundle).to(device)
    if world > 1 and cfg.sync_bn:
        if device.type != "cuda":
            raise UserError("sync_bn needs CUDA devices (PyTorch's SyncBatchNorm is GPU-only); drop sync_bn on CPU.")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    ema = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
           if cfg.ema_decay is not None else None)
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    eager = net
    if (device.type == "cuda") if cfg.compile is None else cfg.compile:
        net = torch.compile(net)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                                nesterov=False)
    ticks = _TIME_TICKS if cfg.epochs is None else cfg.epochs * len(train_loader)
    return _Run(cfg, rank, world, device, use_amp, amp_dtype, channels_last, bundle, train_loader, test_loader,
                holdout_loader, run_dir, model, ema, net, eager, optimizer, _schedule(optimizer, cfg.warmup, ticks),
                torch.amp.GradScaler(device.type, enabled=use_amp and amp_dtype == torch.float16),
                nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing), ticks)


def _build_network(cfg: TrainConfig, network: Optional[Network], bundle: DataBundle) -> nn.Module:
    num_classes = bundle.num_classes
    if network is None:
        return cfg.for_images(bundle.image_size).build(num_classes)
    return network if isinstance(network, nn.Module) else network(num_classes)


def _schedule(optimizer: torch.optim.Optimizer, warmup: float, ticks: int):
    """Linear warm-up over ``warmup`` of the ``ticks``, then cosine annealing to zero."""
    warm = max(1, round(warmup * ticks)) if warmup > 0 else 0
    cosine = CosineAnnealingLR(optimizer, T_max=max(1, ticks - warm), eta_min=0.0)
    if not warm:
        return cosine
    return SequentialLR(optimizer, [LinearLR(optimizer, 0.01, 1.0, total_iters=warm), cosine], milestones=[warm])


def _resume_checkpoint(cfg: TrainConfig, run_dir: Path) -> Tuple[Dict[str, Any], Dict[str, Tuple[Any, Any]]]:
    """The checkpoint to continue and how this run's settings differ from it; one sentence listing the
    differences when they are not allowed (the network never; anything else only with ``allow_changes``)."""
    path = Path(cfg.resume) if isinstance(cfg.resume, str) else run_dir / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"resume asked for but {str(path)!r} does not exist; start without resume or point "
                                "resume at a checkpoint.pth.")
    ckpt = read_checkpoint(path)
    diff = config_differences(ckpt.run_config or {}, cfg.to_dict())
    network = {k: v for k, v in diff.items() if k in NETWORK_FIELDS}
    if network:
        raise UserError(f"cannot resume {path}: it holds another network or data set ({_describe(network)}); "
                        "start a new run in another --out (out_dir).")
    if diff and not cfg.allow_changes:
        raise UserError(f"cannot resume {path}: the run was made with other settings ({_describe(diff)}); use the "
                        "same settings, or pass --allow-changes (allow_changes=True) to continue its weights with "
                        "these (the learning-rate schedule then restarts over the remaining epochs).")
    return ckpt.raw, diff


def _resume(run: _Run) -> None:
    """Load model, EMA, counters, history and RNG state from the run's checkpoint; for an exact continuation also
    optimizer, schedule and scaler (bit-identical). With allowed changes the schedule restarts (cosine, no
    warm-up) over the remaining epochs from a fresh optimizer with the new settings, recorded in ``changes``."""
    state, diff = _resume_checkpoint(run.cfg, run.run_dir)
    run.model.load_state_dict(state["state_dict"])
    if run.ema is not None and state.get("state_dict_ema") is not None:
        run.ema.module.load_state_dict(state["state_dict_ema"])
        run.ema.n_averaged.copy_(state["ema_n_averaged"])
    run.epoch, run.step, run.tick, run.elapsed = state["epoch"], state["step"], state["tick"], state["elapsed"]
    run.history = list(state["history"])
    run.changes = list(state.get("changes") or [])
    if diff:
        _restart_schedule(run, diff)
    else:
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        run.scaler.load_state_dict(state["scaler"])
    _set_rng_state(state["rng"])


def _restart_schedule(run: _Run, diff: Dict[str, Tuple[Any, Any]]) -> None:
    cfg = run.cfg
    run.changes.append({"epoch": run.epoch, "changed": {k: list(v) for k, v in diff.items()}})
    run.sched_step0, run.sched_elapsed0, run.tick = run.step, run.elapsed, 0
    run.ticks = _TIME_TICKS if cfg.epochs is None else (cfg.epochs - run.epoch) * len(run.train_loader)
    if run.ticks < 1 or (cfg.epochs is None and cfg.time_budget <= run.elapsed):
        raise UserError(f"nothing left to train: the checkpoint has done {run.epoch} epochs ({run.elapsed:.0f} s); "
                        "raise epochs / time_budget to continue it.")
    run.optimizer = torch.optim.SGD(run.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                    weight_decay=cfg.weight_decay, nesterov=False)
    run.scheduler = _schedule(run.optimizer, 0.0, run.ticks)


def _forward(run: _Run, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(logits, loss) through ``run.net``; when torch.compile fails (it compiles on the first call), one line says
    so and the run goes on with the eager model."""
    try:
        with torch.autocast(run.device.type, dtype=run.amp_dtype, enabled=run.use_amp):
            out = run.net(x)
            return out, run.criterion(out, y)
    except Exception as err:  # compilation errors come from inductor, dynamo, a C++ compiler ...: any of them
        if run.net is run.eager:
            raise
        if run.is_main:
            tqdm.write(f"note: torch.compile failed ({type(err).__name__}: {str(err).strip().splitlines()[0][:160]}"
                       "); training continues without it.")
        run.net = run.eager
        return _forward(run, x, y)


def _train_step(run: _Run, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """One SGD step (AMP, gradient scaling, EMA update); returns (loss, logits), detached."""
    x, y = x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True)
    if run.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    out, loss = _forward(run, x, y)
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    if run.ema is not None:
        run.ema.update_parameters(run.model)
    run.step += 1
    return loss.detach(), out.detach()


def _advance_schedule(run: _Run) -> None:
    """One tick per step, or the elapsed share of the time budget when the run has no epoch count."""
    if run.cfg.epochs is not None:
        target = run.step - run.sched_step0
    else:
        share = (run.elapsed - run.sched_elapsed0) / (run.cfg.time_budget - run.sched_elapsed0)
        target = int(_TIME_TICKS * min(1.0, share))
    while run.tick < min(target, run.ticks):
        run.scheduler.step()
        run.tick += 1


def _train_one_epoch(run: _Run) -> Dict[str, Any]:
    """One pass over the training data (or until the time budget is spent); returns the epoch's history row."""
    run.net.train()
    run.train_loader.set_epoch(run.epoch)
    loss_sum = torch.zeros((), device=run.device)
    correct = torch.zeros((), device=run.device)
    seen, wait, t_epoch = 0, 0.0, time.perf_counter()
    bar = run.bar
    bar.set_description(f"epoch {run.epoch + 1}")
    t_prev = time.perf_counter()
    for x, y in run.train_loader:
        wait += time.perf_counter() - t_prev
        loss, out = _train_step(run, x, y)
        loss_sum += loss * y.shape[0]
        correct += (out.argmax(1) == y.to(run.device)).sum()
        seen += y.shape[0]
        now = time.perf_counter()
        run.elapsed += now - t_prev  # data wait + step: the training time the budget counts
        t_prev = now
        _advance_schedule(run)
        if run.step % 5 == 0:
            rate = seen * run.world / max(time.perf_counter() - t_epoch, 1e-9)
            bar.set_postfix(loss=f"{loss_sum.item() / seen:.3f}", acc=f"{100 * correct.item() / seen:.1f}",
                            img_s=f"{rate:.0f}")
        bar.update(1)
        if run.budget_spent():
            run.stop = True
            break
    epoch_time = time.perf_counter() - t_epoch
    stats = torch.stack([loss_sum, correct, torch.tensor(float(seen), device=run.device)])
    if run.world > 1:
        dist.all_reduce(stats)
    run.epoch += 1
    n = max(stats[2].item(), 1)
    return {"epoch": run.epoch, "lr": run.optimizer.param_groups[0]["lr"], "steps": run.step,
            "train_loss": stats[0].item() / n, "train_acc": 100 * stats[1].item() / n,
            "img_s": stats[2].item() / max(epoch_time, 1e-9), "data_wait": wait / max(epoch_time, 1e-9),
            "elapsed": run.elapsed, "test_loss": None, "test_top1": None, "test_top5": None, "ema_top1": None}


def _check_diverged(run: _Run, row: Dict[str, Any]) -> None:
    """Stop the run the epoch its loss or weights stop being finite, before anything is saved from them."""
    weights = [t for t in (*run.model.parameters(), *run.model.buffers()) if t.is_floating_point()]
    if not math.isfinite(row["train_loss"]):
        _diverged(run, f"the training loss became {row['train_loss']}")
    if not all(bool(t.isfinite().all()) for t in weights):
        _diverged(run, "the weights became NaN or inf")


def _diverged(run: _Run, what: str) -> None:
    """One sentence naming the epoch and the likely cause; the checkpoint of the last finite epoch (if any) stays."""
    kept = (f"; {run.run_dir / CHECKPOINT_NAME} still holds epoch {run.epoch - 1}"
            if run.cfg.checkpoint and (run.run_dir / CHECKPOINT_NAME).is_file() else "; nothing was saved")
    raise UserError(f"training diverged in epoch {run.epoch}: {what}; the learning rate (lr={run.cfg.lr:g}) is "
                    f"most likely too high for batch size {run.cfg.batch_size}: train again with a lower lr (e.g. "
                    f"{run.cfg.lr / 10:g}){kept}.")


def _evaluate_epoch(run: _Run, row: Dict[str, Any]) -> None:
    """Test loss / top-1 / top-5 of the raw weights and top-1 of the EMA weights, into ``row``."""
    models = {"model": run.model} if run.ema is None else {"model": run.model, "ema": run.ema.module}
    try:
        res = _run_eval(models, run.test_loader, run.device, run.use_amp, run.channels_last)
    except UserError:  # finite weights can still overflow in evaluation (huge BatchNorm statistics)
        _diverged(run, "its outputs on the test images became NaN or inf")
    row.update(test_loss=res["model"]["loss"], test_top1=res["model"]["top1"], test_top5=res["model"]["top5"])
    if run.ema is not None:
        row["ema_top1"] = res["ema"]["top1"]


def _save_checkpoint(run: _Run, finished: bool = False, weights: Optional[str] = None,
                     rng: Optional[Dict[str, Any]] = None, final: Optional[Dict[str, Any]] = None) -> None:
    """Everything :func:`_resume` needs, in the one checkpoint format (written atomically, usual file mode), with
    whether the run finished, which weights it keeps (``"ema"`` / ``"raw"``) and the settings changed on resume."""
    config = run.cfg.to_dict()
    if isinstance(run.cfg.resume, str):
        config["resume"] = False
    ema = run.ema
    weights = weights or ("ema" if run.ema is not None else "raw")
    save_checkpoint(run.run_dir / CHECKPOINT_NAME, run.model, run.cfg.model, run_config=config, fused=False,
                    card=_card(run, weights, final),
                    class_names=run.bundle.class_names, image_size=run.bundle.image_size,
                    num_classes=run.bundle.num_classes, ema_model=ema.module if ema is not None else None,
                    epoch=run.epoch, step=run.step, tick=run.tick, elapsed=run.elapsed, history=run.history,
                    ema_n_averaged=ema.n_averaged if ema is not None else None,
                    optimizer=run.optimizer.state_dict(), scheduler=run.scheduler.state_dict(),
                    scaler=run.scaler.state_dict(), rng=rng or _rng_state(), changes=run.changes,
                    finished=finished, weights=weights)


@torch.no_grad()
def _pick_weights(run: _Run) -> Tuple[str, Dict[str, float]]:
    """``("ema" | "raw", {name: held-out top-1})``: with an EMA, both are evaluated on the held-out slice of the
    training split (``holdout``; never the test split, which then measures the kept weights once) and the better is
    kept (ties go to the EMA); a short run's EMA still averages early, poor weights and can be worse than the raw
    weights."""
    if run.ema is None:
        return "raw", {}
    res = _run_eval({"raw": run.model, "ema": run.ema.module}, run.holdout_loader, run.device, run.use_amp,
                    run.channels_last)
    scores = {k: res[k]["top1"] for k in ("raw", "ema")}
    return ("ema" if scores["ema"] >= scores["raw"] else "raw"), scores


def _final_evaluation(run: _Run, model: nn.Module) -> Tuple[Dict[str, Any], Optional[nn.Module]]:
    """``(final evaluation, fused model or None)``: both forms, or the training form only when it cannot fuse."""
    if run.unfusable is None:
        fused = fuse_model(model)
        return evaluate_reparameterized(model, run.test_loader, run.device, fused_model=fused), fused
    return ({"train_form": evaluate(model, run.test_loader, run.device), "fused": None, "agreement": None,
             "not_fusable": run.unfusable}, None)


def _final_line(final: Dict[str, Any], weights: str, scores: Dict[str, float], run_dir: Path) -> str:
    """The run's last printed line: which weights were kept (and why), both forms' accuracy, the folder."""
    name = {"ema": "EMA", "raw": "raw"}
    if scores:
        other = "raw" if weights == "ema" else "ema"
        which = (f"{name[weights]} weights kept: {scores[weights]:.2f}% vs {name[other]} {scores[other]:.2f}% on "
                 "the held-out slice of the training split")
    else:
        which = "raw weights, no EMA"
    tf = final["train_form"]
    line = f"final ({which}): top-1 {tf['top1']:.2f}%, top-5 {tf['top5']:.2f}%"
    if final.get("fused") is not None:
        line += f" (fused {final['fused']['top1']:.2f}%, same predictions {100 * final['agreement']:.2f}%)"
    else:
        line += " (training form only: this variant cannot be re-parameterized)"
    return line + f"; run folder {run_dir}"


def _card(run: _Run, weights: str, final: Optional[Dict[str, Any]] = None) -> ModelCard:
    """The model card of the run's training-form weights (top-1 once the final evaluation measured it)."""
    cfg, bundle = run.cfg, run.bundle
    recipe = {k: v for k, v in cfg.to_dict().items() if k not in RUNTIME_FIELDS and k not in ModelOptions.names()}
    selected = (f"{100 * cfg.holdout:g}% of the training split held out (never trained on)"
                if run.ema is not None else None)
    top1 = final["train_form"]["top1"] if final else None
    split = f"{bundle.name} test split, {len(bundle.test)} images" if final else None
    return ModelCard(cfg.for_images(bundle.image_size), bundle.num_classes, bundle.image_size, tuple(bundle.mean),
                     tuple(bundle.std), list(bundle.class_names), bundle.name, False, top1, split, weights, selected,
                     recipe, library_version())


def _finish(run: _Run) -> TrainResult:
    """On rank 0: keep the better of the EMA and raw weights (named), evaluate its training and fused forms,
    write ``final.json`` and the final checkpoint (``finished``, ``weights``). Returns that model (float32,
    contiguous, CPU)."""
    rng_at_end = _rng_state()  # the final evaluation builds fused layers (random init): a resume continues here
    weights, scores = _pick_weights(run) if run.is_main else ("ema" if run.ema is not None else "raw", {})
    source = run.ema.module if weights == "ema" else run.model
    final_model = copy.deepcopy(source).float().to(memory_format=torch.contiguous_format).eval()
    final, final_fused = None, None
    if run.is_main:
        cfg = run.cfg
        finished = (cfg.epochs is not None and run.epoch >= cfg.epochs) or run.budget_spent()
        final, final_fused = _final_evaluation(run, final_model)
        final_json = {k: ({kk: vv for kk, vv in v.items() if kk != "predictions"} if isinstance(v, dict) else v)
                      for k, v in final.items()}
        final_json.update(epochs_done=run.epoch, steps=run.step, train_seconds=run.elapsed, weights=weights,
                          top1_by_weights=scores, finished=finished, changes=run.changes, config=cfg.to_dict())
        write_json_atomic(run.run_dir / "final.json", final_json)
        if cfg.checkpoint:
            _save_checkpoint(run, finished, weights, rng_at_end, final)
        if cfg.progress:
            tqdm.write(_final_line(final, weights, scores, run.run_dir))
    if run.world > 1:
        dist.barrier()
    card = _card(run, weights, final)
    final_model.card = card
    if final_fused is not None:
        final_fused.card = card.replace(fused=True, top1=final["fused"]["top1"])
    return TrainResult(final_model.cpu(), run.history, final, run.run_dir, run.cfg,
                       final_fused.cpu() if final_fused is not None else None, card)


def _format_row(row: Dict[str, Any]) -> str:
    parts = [f"epoch {row['epoch']}", f"lr {row['lr']:.4f}", f"loss {row['train_loss']:.3f}",
             f"train {row['train_acc']:.1f}%"]
    if row.get("test_top1") is not None:
        parts.append(f"test {row['test_top1']:.2f}%")
    if row.get("ema_top1") is not None:
        parts.append(f"EMA {row['ema_top1']:.2f}%")
    parts += [f"{row['img_s']:.0f} img/s", f"data wait {100 * row['data_wait']:.1f}%"]
    return " | ".join(parts)
