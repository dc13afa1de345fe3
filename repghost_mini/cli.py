"""Command line: ``python -m repghost_mini {tour,train,eval,convert,bench} ...`` (console script ``repghost-mini``).

* ``tour``    the whole paper in a few minutes on real data: concat vs. add, a->e fusion, Table 3, a short training
              run, re-parameterization with equal accuracy, latency before/after -> ``runs/tour-*/report.md``.
* ``train``   :func:`repghost_mini.train.train` (also under ``torchrun --nproc_per_node=N -m repghost_mini train``).
* ``eval``    top-1/top-5 of a checkpoint, training form and re-parameterized form side by side.
* ``convert`` training checkpoint -> fused (re-parameterized) checkpoint, checked to give the same logits.
* ``bench``   latency of named models (``repghostnet_100``, ``repghostnet_100_fused``, ``ghostnet_100`` ...).

Wrong arguments and missing files end with one line ``repghost-mini <command>: error: ...`` and exit code 2,
never a traceback (set ``REPGHOST_MINI_TRACEBACK=1`` to see the traceback when debugging).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

__all__ = ["main", "build_parser", "CLIError"]

PROG = "repghost-mini"


class CLIError(Exception):
    """A user error: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``prog: error: message (see prog --help)``) instead of usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ---------------------------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------------------------
def _existing_file(path: str, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise CLIError(f"{what} {path!r} does not exist; check the path.")
    if not p.is_file():
        raise CLIError(f"{what} {path!r} is not a file.")
    return p


def _positive(cast: Callable[[str], float], noun: str) -> Callable[[str], float]:
    """An argparse ``type=`` converter that accepts only values > 0 of ``cast``, with one clear message."""
    def convert(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}")
        return value
    return convert


_positive_int = _positive(int, "a positive integer")
_positive_float = _positive(float, "a positive number")


def _set_threads(threads: Optional[int]) -> None:
    if threads:
        import torch
        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------------------------
# tour
# ---------------------------------------------------------------------------------------------------------------
def _cmd_tour(args: argparse.Namespace) -> int:
    from .teaching.tour import run_tour

    _set_threads(args.threads)
    report = run_tour(data=args.data, out_dir=args.out, quick=args.quick, train_seconds=args.train_seconds,
                      model=args.model, seed=args.seed, device=args.device, download=not args.no_download,
                      threads=args.threads)
    print(f"report: {report}")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------------------------
#: CLI option -> TrainConfig field, for options whose value is passed through unchanged.
_TRAIN_OPTIONS: Dict[str, str] = {
    "model": "model", "dataset": "dataset", "data": "data_path", "epochs": "epochs", "time_budget": "time_budget",
    "batch_size": "batch_size", "lr": "lr", "warmup": "warmup", "weight_decay": "weight_decay",
    "dropout": "dropout", "label_smoothing": "label_smoothing", "ema_decay": "ema_decay",
    "random_erasing": "random_erasing", "seed": "seed", "device": "device", "workers": "workers",
    "threads": "threads", "out": "out_dir", "train_per_class": "train_per_class",
    "test_per_class": "test_per_class", "eval_every": "eval_every", "resume": "resume", "sync_bn": "sync_bn", "amp": "amp",
    "channels_last": "channels_last",
}


def _train_overrides(args: argparse.Namespace) -> dict:
    """The TrainConfig fields given on the command line (everything else keeps TrainConfig's default)."""
    kw = {field: getattr(args, opt) for opt, field in _TRAIN_OPTIONS.items() if getattr(args, opt) is not None}
    if args.no_ema:
        kw["ema_decay"] = None
    if args.no_progress:
        kw["progress"] = False
    if args.full_size:
        kw["small_input"] = False
    model_kwargs = {}
    if args.branches is not None:
        model_kwargs["branches"] = tuple(b for b in args.branches.split(",") if b)
    if args.no_shortcut:
        model_kwargs["shortcut"] = False
    if args.relu_after_dw:
        model_kwargs["relu_after_dw"] = True
    if model_kwargs:
        kw["model_kwargs"] = model_kwargs
    return kw


def _cmd_train(args: argparse.Namespace) -> int:
    from .training.trainer import TrainConfig, train

    config = TrainConfig(**_train_overrides(args))
    result = train(config)
    if _is_rank0():
        final = result.final or {}
        tf, fu = final.get("train_form", {}), final.get("fused", {})
        if tf:
            print(f"training form: top-1 {tf['top1']:.2f}%  top-5 {tf['top5']:.2f}%")
        if fu:
            print(f"re-parameterized: top-1 {fu['top1']:.2f}%  top-5 {fu['top5']:.2f}%  "
                  f"(agreement {100 * final['agreement']:.2f}% of predictions)")
        print(f"run folder: {result.run_dir}")
    return 0


def _is_rank0() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


# ---------------------------------------------------------------------------------------------------------------
# eval / convert
# ---------------------------------------------------------------------------------------------------------------
def _read_checkpoint(path: Path) -> dict:
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CLIError(f"could not read {str(path)!r} as a PyTorch checkpoint ({type(err).__name__}); "
                       "pass a checkpoint.pth written by `train` or `convert`.") from None
    if not isinstance(ckpt, dict) or "config" not in ckpt:
        raise CLIError(f"{str(path)!r} holds no training config (key 'config'); pass a checkpoint.pth written by "
                       "`train` or `convert` (for timm/authors' weights use repghost_mini.load_checkpoint).")
    return ckpt


def _model_from_checkpoint(path: Path):
    """(model in eval mode, checkpoint dict, is_fused) from a checkpoint written by ``train`` or ``convert``."""
    from .training.checkpoints import load_checkpoint
    from .core.reparam import reparameterize
    from .training.trainer import build_model, load_trained

    ckpt = _read_checkpoint(path)
    if ckpt.get("fused"):
        cfg = ckpt["config"]
        model = build_model(cfg["model"], int(ckpt["num_classes"]), small_input=cfg["small_input"],
                            dropout=cfg["dropout"], **dict(cfg.get("model_kwargs") or {}))
        model = reparameterize(model.eval(), inplace=True)
        load_checkpoint(model, ckpt["state_dict"])
        return model.eval(), ckpt, True
    return load_trained(str(path)).eval(), ckpt, False


def _cmd_convert(args: argparse.Namespace) -> int:
    import torch

    from .training.checkpoints import save_atomic
    from .core.reparam import count_batchnorms, reparameterize
    from .measure.counting import count_params

    src = _existing_file(args.checkpoint, "checkpoint")
    out = Path(args.output)
    if out.resolve() == src.resolve():
        raise CLIError("OUTPUT must differ from CHECKPOINT: convert never overwrites the training checkpoint.")
    model, ckpt, fused_already = _model_from_checkpoint(src)
    if fused_already:
        raise CLIError(f"{str(src)!r} is already a fused checkpoint; nothing to convert.")
    cfg = ckpt["config"]
    if str(cfg.get("model", "")).startswith("timm:"):
        raise CLIError(f"{str(src)!r} holds a timm model ({cfg['model']}); convert handles repghost_mini models, "
                       "use timm.utils.model.reparameterize_model for timm's.")
    fused = reparameterize(model.eval())
    size = int(ckpt.get("image_size") or (32 if cfg.get("small_input", True) else 224))
    x = torch.randn(8, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = (model(x) - fused(x)).abs().max().item()
    num_classes = fused.num_classes if hasattr(fused, "num_classes") else ckpt.get("num_classes")
    save_atomic({"state_dict": fused.state_dict(), "config": cfg, "num_classes": int(num_classes), "fused": True,
                 "class_names": ckpt.get("class_names"), "image_size": size, "source": str(src)}, out)
    print(f"fused checkpoint: {out}  ({count_params(model) / 1e6:.3f}M -> {count_params(fused) / 1e6:.3f}M params, "
          f"{count_batchnorms(model)} -> {count_batchnorms(fused)} BatchNorms, max |logit diff| {diff:.2e} "
          f"on {x.shape[0]} random {size}x{size} inputs)")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from .training.data import load_dataset, make_loaders
    from .training.trainer import evaluate, evaluate_reparameterized

    _set_threads(args.threads)
    path = _existing_file(args.checkpoint, "checkpoint")
    model, ckpt, fused = _model_from_checkpoint(path)
    cfg = ckpt["config"]
    dataset = args.dataset or cfg.get("dataset")
    bundle = load_dataset(dataset, args.data if args.data is not None else None, download=not args.no_download,
                          test_per_class=args.limit)
    if bundle.num_classes != getattr(model, "num_classes", bundle.num_classes):
        raise CLIError(f"the checkpoint has {model.num_classes} classes but dataset {dataset!r} has "
                       f"{bundle.num_classes}; pass --dataset matching the training run.")
    _, test = make_loaders(bundle, batch_size=args.batch_size, augment=False, eval_batch_size=args.batch_size)
    device = None if args.device == "auto" else args.device
    print(f"data: {bundle.name} test split, {len(bundle.test)} images ({bundle.source})")
    fusable = not dict(cfg.get("model_kwargs") or {}).get("relu_after_dw")
    if fused or not fusable:
        r = evaluate(model, test, device=device)
        if not fused:
            print("(the '+ReLU' variant cannot be re-parameterized: training form only)")
        label = "fused model" if fused else "training form"
        print(f"{label}: top-1 {r['top1']:.2f}%  top-5 {r['top5']:.2f}%  loss {r['loss']:.4f}")
        return 0
    r = evaluate_reparameterized(model, test, device=device)
    for label, key in (("training form", "train_form"), ("re-parameterized", "fused")):
        print(f"{label:17s} top-1 {r[key]['top1']:.2f}%  top-5 {r[key]['top5']:.2f}%  loss {r[key]['loss']:.4f}")
    print(f"top-1 predictions equal on {100 * r['agreement']:.2f}% of images, max |logit diff| "
          f"{r['max_logit_diff']:.2e}")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# bench
# ---------------------------------------------------------------------------------------------------------------
def _cmd_bench(args: argparse.Namespace) -> int:
    from .deploy.latency import available_models, benchmark_models, markdown_table

    if args.list:
        print("\n".join(available_models()))
        return 0
    if not args.models:
        raise CLIError("name at least one model (e.g. repghostnet_100 repghostnet_100_fused ghostnet_100); "
                       "--list shows all names.")
    rows = benchmark_models(args.models, batch_sizes=args.batch_sizes, threads=args.threads, runtimes=args.runtimes,
                            rounds=args.rounds, image_size=args.image_size, min_run_time=args.min_run_time,
                            baseline=args.baseline)
    print(f"input {args.image_size}x{args.image_size}, median of {args.rounds} interleaved rounds "
          f"({args.min_run_time} s each); ratio = latency / {args.baseline} in the same round" if args.baseline
          else f"input {args.image_size}x{args.image_size}, median of {args.rounds} interleaved rounds "
               f"({args.min_run_time} s each)")
    print(markdown_table(rows))
    return 0


# ---------------------------------------------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The ``repghost-mini`` argument parser (one sub-command per step of the pipeline)."""
    parser = _Parser(prog=PROG, description="RepGhost (Chen et al. 2022) in small: train, re-parameterize, measure.",
                     epilog="Errors are one line; set REPGHOST_MINI_TRACEBACK=1 to see Python tracebacks.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    tour = sub.add_parser("tour", help="run the paper's story end to end on real data and write a Markdown report",
                          description="Concat vs. add, a->e fusion, Table 3 counts, a short CIFAR-10 training run, "
                                      "re-parameterization with equal accuracy and latency before/after; writes "
                                      "OUT/tour-<time>/report.md with figures. About 4 minutes on 2 CPU cores "
                                      "(--quick: about 1 minute).")
    tour.add_argument("--data", help="folder (or .npz) holding CIFAR-10; default: $REPGHOST_MINI_DATA, then ./data, "
                                     "else download into ./data")
    tour.add_argument("--out", default="runs", help="parent folder of the run folder (default: runs)")
    tour.add_argument("--quick", action="store_true", help="smaller budgets everywhere (about 2 minutes)")
    tour.add_argument("--train-seconds", type=_positive_float, help="training budget in seconds "
                                                                    "(default 120, --quick 20)")
    tour.add_argument("--model", default="repghostnet_050", help="model to train (default repghostnet_050)")
    tour.add_argument("--seed", type=int, default=0)
    tour.add_argument("--device", default="auto", help="auto, cpu or cuda")
    tour.add_argument("--threads", type=_positive_int, help="CPU threads for torch (default: all, or 1 when a probe "
                      "shows the cores are busy with other work)")
    tour.add_argument("--no-download", action="store_true", help="never download; fail if no data is found")
    tour.set_defaults(func=_cmd_tour)

    tr = sub.add_parser("train", help="train a model (also under torchrun for DDP)",
                        description="Train with the paper's recipe scaled down (SGD, cosine, warm-up, EMA, label "
                                    "smoothing); writes metrics, curves and checkpoints into --out. Multi-GPU: "
                                    "torchrun --nproc_per_node=N -m repghost_mini train ...")
    tr.add_argument("--model", help="repghostnet_050 ... ghostnet_100, or timm:<name> (default repghostnet_050)")
    tr.add_argument("--dataset", help="cifar10-subset (default), cifar10, npz, imagenette, imagenet-subset, "
                                      "imagefolder, synthetic")
    tr.add_argument("--data", help="folder or .npz to read the dataset from (default: $REPGHOST_MINI_DATA, ./data)")
    tr.add_argument("--train-per-class", type=_positive_int, help="keep only the first N training images per class")
    tr.add_argument("--test-per-class", type=_positive_int, help="keep only the first N test images per class")
    tr.add_argument("--epochs", type=_positive_int)
    tr.add_argument("--time-budget", type=_positive_float, help="stop after this many seconds of training")
    tr.add_argument("--batch-size", type=_positive_int)
    tr.add_argument("--lr", type=_positive_float)
    tr.add_argument("--warmup", type=float, help="warm-up fraction of the schedule")
    tr.add_argument("--weight-decay", type=float)
    tr.add_argument("--dropout", type=float)
    tr.add_argument("--label-smoothing", type=float)
    tr.add_argument("--ema-decay", type=float)
    tr.add_argument("--no-ema", action="store_true", help="train without an EMA of the weights")
    tr.add_argument("--random-erasing", type=float)
    tr.add_argument("--branches", help="re-parameterization branches, comma separated from identity,bn,dconv1x1 "
                                       "('' for none; Table 6)")
    tr.add_argument("--no-shortcut", action="store_true", help="drop the identity shortcuts (Table 7)")
    tr.add_argument("--relu-after-dw", action="store_true", help="Table 6 '+ReLU' variant (cannot be fused)")
    tr.add_argument("--full-size", action="store_true", help="ImageNet stem (stride 32) instead of small_input")
    tr.add_argument("--seed", type=int)
    tr.add_argument("--device", help="auto (default), cpu, cuda")
    tr.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None, help="mixed precision "
                                                                                       "(default: on CUDA)")
    tr.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    tr.add_argument("--sync-bn", action="store_true", default=None, help="SyncBatchNorm under DDP")
    tr.add_argument("--workers", type=int)
    tr.add_argument("--threads", type=_positive_int)
    tr.add_argument("--out", help="run folder (default runs/<dataset>-<model>-seed<seed>)")
    tr.add_argument("--resume", action="store_true", default=None, help="continue the run in --out")
    tr.add_argument("--eval-every", type=int, help="evaluate every N epochs (0: only at the end)")
    tr.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    tr.set_defaults(func=_cmd_train)

    ev = sub.add_parser("eval", help="top-1/top-5 of a checkpoint, training form and re-parameterized",
                        description="Evaluate a checkpoint written by `train` (both forms) or `convert` (fused).")
    ev.add_argument("checkpoint", help="checkpoint.pth from train or convert")
    ev.add_argument("--dataset", help="dataset name (default: the one the checkpoint was trained on)")
    ev.add_argument("--data", help="folder or .npz to read it from (default: $REPGHOST_MINI_DATA, ./data)")
    ev.add_argument("--batch-size", type=_positive_int, default=256)
    ev.add_argument("--limit", type=_positive_int, help="only the first LIMIT test images of every class")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--threads", type=_positive_int)
    ev.add_argument("--no-download", action="store_true")
    ev.set_defaults(func=_cmd_eval)

    cv = sub.add_parser("convert", help="training checkpoint -> fused (re-parameterized) checkpoint",
                        description="Re-parameterize a training checkpoint (Sec. 3.2) and save the fused weights; "
                                    "prints the largest logit difference between the two forms.")
    cv.add_argument("checkpoint", help="checkpoint.pth written by train")
    cv.add_argument("output", help="where to write the fused checkpoint")
    cv.set_defaults(func=_cmd_convert)

    be = sub.add_parser("bench", help="latency of named models (interleaved, median)",
                        description="Latency of models named like repghostnet_100, repghostnet_100_fused, "
                                    "ghostnet_100, timm_repghostnet_100 (random weights), measured side by side "
                                    "in interleaved rounds (repghost_mini.benchmark_models); prints a Markdown "
                                    "table. --list shows every name.")
    be.add_argument("models", nargs="*", help="model names, e.g. repghostnet_100 repghostnet_100_fused ghostnet_100")
    be.add_argument("--list", action="store_true", help="print the model names and exit")
    be.add_argument("--image-size", type=_positive_int, default=224)
    be.add_argument("--batch-sizes", type=_positive_int, nargs="+", default=[1])
    be.add_argument("--threads", type=_positive_int, nargs="+", default=[1], help="CPU thread counts to try")
    be.add_argument("--runtimes", nargs="+", default=["torch"],
                    help="torch, torch_channels_last, torch_optimized, onnxruntime")
    be.add_argument("--baseline", help="one of the models: adds a column latency / baseline (same round)")
    be.add_argument("--rounds", type=_positive_int, default=5)
    be.add_argument("--min-run-time", type=_positive_float, default=0.2, help="seconds per model and round")
    be.set_defaults(func=_cmd_bench)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m repghost_mini`` and ``repghost-mini``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"{PROG} {args.command}"
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (CLIError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, ValueError) as err:
        if os.environ.get("REPGHOST_MINI_TRACEBACK"):
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
