r"""Training RepGhostNet with the paper's recipe, scaled down (paper Sec. 4.1, "Implementation Details").

The paper: SGD with momentum 0.9, base learning rate 0.6 for batch 1024, cosine annealing over 300 epochs with
5 warm-up epochs, weight decay $10^{-5}$, dropout 0.2 before the classifier, EMA of the weights (decay 0.9999),
crop + flip + random erasing ($p=0.2$). Here the same pieces come from well-kept libraries:

* schedule: ``torch.optim.lr_scheduler`` -- ``LinearLR`` warm-up, then ``CosineAnnealingLR``:
  $$\eta_t = \tfrac12\,\eta_{\max}\,\bigl(1 + \cos(\pi\, t / T)\bigr)$$
  over the steps of the run, or -- with a time budget and no epoch count -- over the elapsed fraction of the
  budget, so the learning rate reaches zero exactly when the time is up;
* EMA: ``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn``
  ($\bar\theta \leftarrow d\,\bar\theta + (1-d)\,\theta$), averaging BatchNorm buffers too (``use_buffers=True``);
* AMP and channels_last on CUDA; DistributedDataParallel under ``torchrun``.

Evaluation reports top-1/top-5 of the training-form network *and* of its re-parameterized (fused) form
(:func:`repghost_mini.reparameterize`), and checks that both predict the same classes.
"""
from __future__ import annotations

import copy
import csv
import json
import math
import os
import random
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..core import networks
from .checkpoints import save_atomic
from .data import DataBundle, load_dataset, make_loaders
from ..core.reparam import reparameterize

__all__ = ["TrainConfig", "TrainResult", "train", "build_model", "evaluate", "evaluate_reparameterized",
           "load_trained", "train_or_load", "plot_history", "select_device", "CHECKPOINT_NAME", "SHORT_RUN_RECIPE"]

CHECKPOINT_NAME = "checkpoint.pth"
#: Settings that replace the paper's batch 1024 / weight decay 1e-5 (made for 1.28 M images x 300 epochs) in runs
#: of a few CPU minutes on a few thousand images: twice the SGD steps of batch 128, and stronger decay. Measured in
#: benchmarks/results/cifar_recipe_search.md; used by the tour and the accuracy benchmark.
SHORT_RUN_RECIPE: Dict[str, Any] = {"batch_size": 64, "weight_decay": 5e-4}
_TIME_TICKS = 1000  # resolution of the schedule when it follows elapsed time


@dataclass
class TrainConfig:
    """Everything a run needs; every field has a default (``TrainConfig(epochs=5, lr=0.3)``).

    ``epochs`` and ``time_budget`` (seconds of training, evaluation excluded) can both be given: the run stops at
    whichever comes first. ``stop_after`` ends this call after that many epochs although the schedule spans
    ``epochs`` (continue later with ``resume=True``: a run in chunks, or a test of resuming). With ``epochs=None`` the cosine schedule follows the elapsed share of ``time_budget``
    (such runs are not bit-reproducible, since how far they get depends on the machine).
    """

    model: str = "repghostnet_050"
    small_input: bool = True
    model_kwargs: Dict[str, Any] = field(default_factory=dict)
    dataset: str = "cifar10-subset"
    data_path: Optional[str] = None
    train_per_class: Optional[int] = None
    test_per_class: Optional[int] = None
    epochs: Optional[int] = 30
    time_budget: Optional[float] = None
    batch_size: int = 128
    lr: float = 0.2
    warmup: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 1e-5
    dropout: float = 0.2
    label_smoothing: float = 0.1
    ema_decay: Optional[float] = 0.99
    augment: bool = True
    random_erasing: float = 0.2
    seed: int = 0
    device: str = "auto"
    amp: Optional[bool] = None
    channels_last: Optional[bool] = None
    workers: Optional[int] = None
    threads: Optional[int] = None
    out_dir: Optional[str] = None
    resume: Union[bool, str] = False
    sync_bn: bool = False
    progress: bool = True
    eval_every: int = 1
    checkpoint: bool = True
    stop_after: Optional[int] = None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        """Raise ``ValueError`` with one sentence for a setting that cannot work."""
        if self.epochs is None and self.time_budget is None:
            raise ValueError("give epochs, time_budget (seconds) or both; with neither the run would never stop.")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}.")
        if self.time_budget is not None and self.time_budget <= 0:
            raise ValueError(f"time_budget must be a positive number of seconds, got {self.time_budget}.")
        if self.lr <= 0 or self.batch_size < 1:
            raise ValueError(f"lr must be > 0 and batch_size >= 1 (got lr={self.lr}, batch_size={self.batch_size}).")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup is a fraction of the schedule in [0, 1), got {self.warmup}.")
        if self.stop_after is not None and self.stop_after < 1:
            raise ValueError(f"stop_after must be >= 1 epoch or None, got {self.stop_after}.")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in (0, 1) or None, got {self.ema_decay}.")
        if not 0 <= self.label_smoothing < 1 or not 0 <= self.random_erasing <= 1 or not 0 <= self.dropout < 1:
            raise ValueError("label_smoothing and dropout must be in [0, 1) and random_erasing in [0, 1].")


@dataclass
class TrainResult:
    """What :func:`train` returns: the model to use (EMA weights if EMA is on; training form, eval mode, CPU),
    the per-epoch ``history``, the ``final`` evaluation (:func:`evaluate_reparameterized`), the run folder and
    ``fused``, the re-parameterized model that final evaluation used (CPU; ``None`` off rank 0), so callers never
    fuse the same weights twice."""

    model: nn.Module
    history: List[Dict[str, Any]]
    final: Optional[Dict[str, Any]]
    run_dir: Path
    config: TrainConfig
    fused: Optional[nn.Module] = None


# ----------------------------------------------------------------------------------------------------------------
# Pieces
# ----------------------------------------------------------------------------------------------------------------
def select_device(device: str = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"`` -> ``cuda:<local_rank>`` when CUDA is present, else CPU; otherwise ``torch.device(device)``."""
    if device == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for but CUDA is not available; use device='cpu' or 'auto'.")
    return dev


def build_model(name: str, num_classes: int, small_input: bool = True, dropout: float = 0.2, **kwargs) -> nn.Module:
    """A model by name: any factory of :mod:`repghost_mini.core.networks` (``repghostnet_050``, ``ghostnet_050``, ...)
    or ``"timm:<name>"`` for a timm model (e.g. ``"timm:repghostnet_050"``, stock, for comparisons)."""
    if name.startswith("timm:"):
        try:
            import timm
        except ImportError:
            raise ImportError("model names 'timm:...' need timm; install it with `pip install timm`.") from None
        return timm.create_model(name[5:], num_classes=num_classes, drop_rate=dropout, **kwargs)
    factories = {n: getattr(networks, n) for n in networks.__all__ if n.startswith(("repghostnet", "ghostnet"))}
    if name not in factories:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(sorted(factories))} or 'timm:<name>'.")
    return factories[name](num_classes=num_classes, small_input=small_input, dropout=dropout, **kwargs)


def _distributed_env() -> tuple:
    """(rank, world_size, local_rank) from torchrun's environment; (0, 1, 0) outside torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def _fuse(model: nn.Module) -> nn.Module:
    """Re-parameterized deep copy: ours via :func:`reparameterize`, timm models via timm's own routine."""
    model = model.eval()
    if isinstance(model, (networks.RepGhostNet, networks.GhostNet)):
        return reparameterize(model)
    from timm.utils.model import reparameterize_model

    return reparameterize_model(copy.deepcopy(model))


@torch.no_grad()
def _run_eval(models: Dict[str, nn.Module], loader, device: torch.device, amp: bool = False,
              channels_last: bool = False) -> Dict[str, Any]:
    stats: Dict[str, Dict[str, float]] = {k: {"top1": 0.0, "top5": 0.0, "loss": 0.0} for k in models}
    preds: Dict[str, List[Tensor]] = {k: [] for k in models}
    max_diff, n = 0.0, 0
    for m in models.values():
        m.eval()
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
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
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
    model = model.to(device).eval()
    fused = (fused_model if fused_model is not None else _fuse(model)).to(device).eval()
    res = _run_eval({"train_form": model, "fused": fused}, loader, device)
    out = {"train_form": res["train_form"], "fused": res["fused"], "agreement": res["agreement"],
           "max_logit_diff": res["max_logit_diff"]}
    out["agree"] = bool(res["agreement"] == 1.0 or res["max_logit_diff"] <= atol)
    return out


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
            ax2.plot(*zip(*pts), label=label)
    ax2.set_xlabel("epoch"), ax2.set_ylabel("accuracy (%)"), ax2.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=80)
    return fig


def _write_history(run_dir: Path, history: List[Dict[str, Any]]) -> None:
    (run_dir / "metrics.json").write_text(json.dumps(history, indent=1))
    keys: List[str] = []
    for h in history:
        keys += [k for k in h if k not in keys]
    with open(run_dir / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(history)
    plot_history(history, run_dir / "curves.png")


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


def load_trained(path: Union[str, os.PathLike], use_ema: bool = True) -> nn.Module:
    """Rebuild the model saved in one of our run checkpoints (``<run>/checkpoint.pth`` or a run folder).

    Uses the EMA weights when present and ``use_ema``; returns the training form in eval mode on the CPU.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}; give a run folder or its {CHECKPOINT_NAME}.")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or "config" not in ckpt:
        raise ValueError(f"{str(path)!r} is not a repghost_mini training checkpoint (no 'config'); for timm/authors' "
                         "weights use repghost_mini.load_checkpoint(model, path).")
    cfg = ckpt["config"]
    model = build_model(cfg["model"], ckpt["num_classes"], cfg["small_input"], cfg["dropout"], **cfg["model_kwargs"])
    key = "state_dict_ema" if use_ema and ckpt.get("state_dict_ema") is not None else "state_dict"
    model.load_state_dict(ckpt[key], strict=True)
    return model.eval()


def train_or_load(config: TrainConfig, bundle: Optional[DataBundle] = None,
                  use_cache: bool = True) -> Tuple[nn.Module, List[dict], str]:
    """"Load the cached result if present, else train": returns ``(model, history, "cache" | "trained")``.

    A finished run in ``config.out_dir`` (its ``final.json``) counts only if it was made with exactly these
    settings; otherwise (or with ``use_cache=False``) :func:`train` runs and writes it. Notebooks use this so they
    stay fast on a second run and still compute everything from scratch on a fresh clone.
    """
    run = Path(config.out_dir)
    final = run / "final.json"
    if use_cache and final.is_file() and (run / "metrics.json").is_file():
        same = json.loads(final.read_text()).get("config") == json.loads(json.dumps(config.to_dict()))
        if same:
            return load_trained(run), json.loads((run / "metrics.json").read_text()), "cache"
    result = train(config, bundle=bundle)
    return result.model, result.history, "trained"


# ----------------------------------------------------------------------------------------------------------------
# The trainer
# ----------------------------------------------------------------------------------------------------------------
def train(config: Optional[TrainConfig] = None, bundle: Optional[DataBundle] = None, **overrides) -> TrainResult:
    """Train a model with the scaled-down paper recipe; see :class:`TrainConfig` for every setting.

    ``train(TrainConfig(...))``, ``train(epochs=3)`` or both (keywords override the config). ``bundle`` may hand
    over already loaded data. Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) it runs DistributedDataParallel:
    data sharded per rank, gradients averaged, logging / checkpoints / final evaluation on rank 0 only.
    Writes ``metrics.csv``, ``metrics.json``, ``curves.png``, ``checkpoint.pth`` (every epoch, atomically) and
    ``final.json`` into the run folder; ``resume=True`` (or a checkpoint path) continues a stopped run exactly.
    """
    cfg = copy.deepcopy(config) if config is not None else TrainConfig()
    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - names)
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
        return _train(cfg, bundle, rank, world, local_rank)
    finally:
        if started_pg:
            dist.destroy_process_group()


def _train(cfg: TrainConfig, bundle: Optional[DataBundle], rank: int, world: int, local_rank: int) -> TrainResult:
    is_main = rank == 0
    device = select_device(cfg.device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    use_amp = device.type == "cuda" if cfg.amp is None else bool(cfg.amp)
    channels_last = device.type == "cuda" if cfg.channels_last is None else bool(cfg.channels_last)
    amp_dtype = torch.bfloat16 if (device.type != "cuda" or torch.cuda.is_bf16_supported()) else torch.float16
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)

    if bundle is None:
        bundle = load_dataset(cfg.dataset, cfg.data_path, train_per_class=cfg.train_per_class,
                              test_per_class=cfg.test_per_class)
    train_loader, test_loader = make_loaders(bundle, cfg.batch_size, cfg.augment, cfg.random_erasing, cfg.workers,
                                             cfg.seed, rank, world)
    run_dir = Path(cfg.out_dir or f"runs/{bundle.name}-{cfg.model.replace(':', '-')}-seed{cfg.seed}")
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)

    model = build_model(cfg.model, bundle.num_classes, cfg.small_input, cfg.dropout, **cfg.model_kwargs).to(device)
    if world > 1 and cfg.sync_bn:
        if device.type != "cuda":
            raise ValueError("sync_bn needs CUDA devices (PyTorch's SyncBatchNorm is GPU-only); drop sync_bn on CPU.")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    ema = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
           if cfg.ema_decay is not None else None)
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                                nesterov=False)
    steps_per_epoch = len(train_loader)
    by_time = cfg.epochs is None
    ticks = _TIME_TICKS if by_time else cfg.epochs * steps_per_epoch
    warm = max(1, round(cfg.warmup * ticks)) if cfg.warmup > 0 else 0
    cosine = CosineAnnealingLR(optimizer, T_max=max(1, ticks - warm), eta_min=0.0)
    scheduler = (SequentialLR(optimizer, [LinearLR(optimizer, 0.01, 1.0, total_iters=warm), cosine],
                              milestones=[warm]) if warm else cosine)
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp and amp_dtype == torch.float16)
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

    start_epoch, step, tick, elapsed = 0, 0, 0, 0.0
    history: List[Dict[str, Any]] = []
    if cfg.resume:
        ckpt_path = Path(cfg.resume) if isinstance(cfg.resume, str) else run_dir / CHECKPOINT_NAME
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"resume asked for but {str(ckpt_path)!r} does not exist; start without resume "
                                    "or point resume at a checkpoint.pth.")
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        for key in ("model", "dataset", "batch_size", "seed", "epochs", "time_budget", "small_input"):
            if ckpt["config"].get(key) != getattr(cfg, key):
                raise ValueError(f"cannot resume: the checkpoint was trained with {key}={ckpt['config'].get(key)!r} "
                                 f"but this run asks for {getattr(cfg, key)!r}; use the same settings.")
        model.load_state_dict(ckpt["state_dict"])
        if ema is not None:
            ema.module.load_state_dict(ckpt["state_dict_ema"])
            ema.n_averaged.copy_(ckpt["ema_n_averaged"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch, step, tick, elapsed = ckpt["epoch"], ckpt["step"], ckpt["tick"], ckpt["elapsed"]
        history = list(ckpt["history"])
        _set_rng_state(ckpt["rng"])

    def save(epoch: int) -> None:
        ckpt = {"format": "repghost_mini-train-v1", "config": cfg.to_dict(), "num_classes": bundle.num_classes,
                "class_names": bundle.class_names, "model_config": getattr(model, "config", None),
                "epoch": epoch, "step": step, "tick": tick, "elapsed": elapsed, "history": history,
                "state_dict": model.state_dict(),
                "state_dict_ema": ema.module.state_dict() if ema is not None else None,
                "ema_n_averaged": ema.n_averaged if ema is not None else None,
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(), "rng": _rng_state()}
        if isinstance(cfg.resume, str):
            ckpt["config"]["resume"] = False
        save_atomic(ckpt, run_dir / CHECKPOINT_NAME)

    from tqdm import TqdmWarning

    with warnings.catch_warnings():  # without ipywidgets, tqdm.auto warns in Jupyter and falls back to text bars
        warnings.simplefilter("ignore", TqdmWarning)
        from tqdm.auto import tqdm

    stop = False
    max_epochs = cfg.epochs if cfg.epochs is not None else 10 ** 9
    epoch = start_epoch
    last_epoch = min(max_epochs, start_epoch + cfg.stop_after) if cfg.stop_after else max_epochs
    while epoch < last_epoch and not stop:
        if cfg.time_budget is not None and elapsed >= cfg.time_budget:
            break
        net.train()
        train_loader.set_epoch(epoch)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        seen, wait, t_epoch = 0, 0.0, time.perf_counter()
        bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}", disable=not (cfg.progress and is_main),
                   leave=False, dynamic_ncols=True)
        t_prev = time.perf_counter()
        for x, y in train_loader:
            t_got = time.perf_counter()
            wait += t_got - t_prev
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                out = net(x)
                loss = criterion(out, y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if ema is not None:
                ema.update_parameters(model)
            step += 1
            loss_sum += loss.detach() * y.shape[0]
            correct += (out.detach().argmax(1) == y).sum()
            seen += y.shape[0]
            now = time.perf_counter()
            elapsed += now - t_prev  # data wait + step: the training time the budget counts
            t_prev = now
            # schedule: one tick per step, or the elapsed share of the time budget
            target = step if not by_time else int(_TIME_TICKS * min(1.0, elapsed / cfg.time_budget))
            while tick < min(target, ticks):
                scheduler.step()
                tick += 1
            if bar.n % 5 == 0 or bar.n == steps_per_epoch - 1:
                rate = seen * world / max(time.perf_counter() - t_epoch, 1e-9)
                bar.set_postfix(loss=f"{loss_sum.item() / seen:.3f}", acc=f"{100 * correct.item() / seen:.1f}",
                                img_s=f"{rate:.0f}")
            bar.update(1)
            if cfg.time_budget is not None and elapsed >= cfg.time_budget:
                stop = True
                break
        bar.close()
        epoch_time = time.perf_counter() - t_epoch
        stats = torch.stack([loss_sum, correct, torch.tensor(float(seen), device=device)])
        if world > 1:
            dist.all_reduce(stats)
        epoch += 1
        row: Dict[str, Any] = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "steps": step,
                               "train_loss": stats[0].item() / max(stats[2].item(), 1),
                               "train_acc": 100 * stats[1].item() / max(stats[2].item(), 1),
                               "img_s": stats[2].item() / max(epoch_time, 1e-9),
                               "data_wait": wait / max(epoch_time, 1e-9), "elapsed": elapsed,
                               "test_loss": None, "test_top1": None, "test_top5": None, "ema_top1": None}
        if is_main and cfg.eval_every and (epoch % cfg.eval_every == 0 or stop or epoch == last_epoch):
            models = {"model": model} if ema is None else {"model": model, "ema": ema.module}
            res = _run_eval(models, test_loader, device, use_amp, channels_last)
            row.update(test_loss=res["model"]["loss"], test_top1=res["model"]["top1"], test_top5=res["model"]["top5"])
            if ema is not None:
                row["ema_top1"] = res["ema"]["top1"]
        history.append(row)
        if is_main:
            if cfg.progress:
                tqdm.write(_format_row(row))
            _write_history(run_dir, history)
            if cfg.checkpoint:
                save(epoch)
        if world > 1:
            dist.barrier()

    final_model = copy.deepcopy(ema.module if ema is not None else model).float().to(
        memory_format=torch.contiguous_format).eval()
    final, final_fused = None, None
    if is_main:
        final_fused = _fuse(final_model)
        final = evaluate_reparameterized(final_model, test_loader, device, fused_model=final_fused)
        final_json = {k: ({kk: vv for kk, vv in v.items() if kk != "predictions"} if isinstance(v, dict) else v)
                      for k, v in final.items()}
        final_json.update(epochs_done=epoch, steps=step, train_seconds=elapsed, weights="ema" if ema else "raw",
                          config=cfg.to_dict())
        (run_dir / "final.json").write_text(json.dumps(final_json, indent=1))
        if cfg.progress:
            tqdm.write(f"final ({'EMA' if ema else 'raw'} weights): top-1 {final['train_form']['top1']:.2f}% "
                       f"(fused {final['fused']['top1']:.2f}%), top-5 {final['train_form']['top5']:.2f}%, "
                       f"same predictions {100 * final['agreement']:.2f}%; run folder {run_dir}")
    if world > 1:
        dist.barrier()
    return TrainResult(final_model.cpu(), history, final, run_dir, cfg,
                       final_fused.cpu() if final_fused is not None else None)


def _format_row(row: Dict[str, Any]) -> str:
    parts = [f"epoch {row['epoch']}", f"lr {row['lr']:.4f}", f"loss {row['train_loss']:.3f}",
             f"train {row['train_acc']:.1f}%"]
    if row.get("test_top1") is not None:
        parts.append(f"test {row['test_top1']:.2f}%")
    if row.get("ema_top1") is not None:
        parts.append(f"EMA {row['ema_top1']:.2f}%")
    parts += [f"{row['img_s']:.0f} img/s", f"data wait {100 * row['data_wait']:.1f}%"]
    return " | ".join(parts)
