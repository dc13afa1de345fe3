"""Command line: ``python -m repghost_mini {tour,train,export,eval,convert,quantize,bench,notebooks,ledger} ...``
(console script ``repghost-mini``).

* ``tour``    the whole paper in a few minutes on real data: concat vs. add, a->e fusion, Table 3, a short training
              run, re-parameterization with equal accuracy, latency before/after -> ``runs/tour-*/report.md``.
* ``train``   :func:`repghost_mini.train` (also under ``torchrun --nproc_per_node=N -m repghost_mini train``), then
              ``export`` of the run: ``fused.pth`` and ``model.onnx`` beside ``checkpoint.pth``.
* ``export``  checkpoint -> ``fused.pth`` + ``model.onnx`` (:func:`repghost_mini.export_run`), both with the model card.
* ``eval``    top-1/top-5 of a checkpoint, training form and re-parameterized form side by side.
* ``convert`` training checkpoint -> fused (re-parameterized) checkpoint, checked to give the same logits.
* ``quantize`` checkpoint -> INT8 ONNX (static post-training quantization with onnxruntime, real calibration images).
* ``notebooks`` ``--execute``: all notebooks re-executed in one run on one idle machine
              (:mod:`repghost_mini.teaching.runs`).
* ``ledger``  which of the paper's claims held, one page from the notebooks' ``RESULT`` lines
              (:mod:`repghost_mini.teaching.ledger`).
* ``bench``   latency of named models (``repghostnet_100``, ``repghostnet_100_fused``, ``ghostnet_100`` ...).

User errors -- wrong arguments, missing files, unknown models, data that is not there -- end with one line
``repghost-mini <command>: error: ...`` and exit code 2 (:mod:`repghost_mini.errors` is the one place that decides
what counts as one). Anything else is a bug and shows its traceback
(``REPGHOST_MINI_TRACEBACK=1`` shows it for user errors too).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .errors import USER_ERRORS, UserError, require_finite, user_errors

__all__ = ["main", "build_parser", "CLIError"]

PROG = "repghost-mini"


class CLIError(UserError):
    """A user error found by the command line itself: printed as one line, exit code 2."""


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


def _checkpoint_path(path: str) -> Path:
    """A checkpoint file, or a run folder taken as its ``checkpoint.pth``; one sentence otherwise."""
    p = Path(path)
    if p.is_dir():
        if not (p / "checkpoint.pth").is_file():
            raise CLIError(f"checkpoint {path!r} is a folder without a checkpoint.pth; give a run folder written by "
                           "train or a checkpoint file.")
        return p / "checkpoint.pth"
    return _existing_file(path, "checkpoint")


def _new_output(path: str, example: str, command: str = "convert") -> Path:
    """An output file that does not exist yet: the command line never overwrites a file."""
    out = Path(path)
    if out.is_dir():
        raise CLIError(f"OUTPUT {path!r} is a folder; name the file to write, e.g. {str(out / example)!r}.")
    if out.exists():
        raise CLIError(f"OUTPUT {path!r} already exists; {command} never overwrites a file: remove it or choose "
                       "another name.")
    return out


def _weights_words(weights: Optional[str]) -> str:
    return {"ema": "the EMA weights the run kept", "raw": "the raw (non-EMA) weights the run kept"}.get(
        weights or "", "the weights as saved")


def _positive(cast: Callable[[str], float], noun: str) -> Callable[[str], float]:
    """An argparse ``type=`` converter that accepts only values > 0 of ``cast``, with one clear message."""
    def convert(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}")
        return value
    return convert


_positive_int = _positive(int, "a positive integer")


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


_positive_float = _positive(float, "a positive finite number")


def _set_threads(threads: Optional[int]) -> None:
    if threads:
        import torch
        torch.set_num_threads(threads)


def _check_model_name(name: Optional[str]) -> None:
    from .training.registry import model_entry

    if name is not None:
        model_entry(name)  # one sentence naming the choices, before any work is done


# ---------------------------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------------------------
def _cmd_tour(args: argparse.Namespace) -> int:
    from .teaching.tour import run_tour
    from .training.trainer import select_device

    _set_threads(args.threads)
    _check_model_name(args.model)
    select_device(args.device)  # a device that is not there: one line before any work
    report = run_tour(data=args.data, out_dir=args.out, quick=args.quick, train_seconds=args.train_seconds,
                      model=args.model, seed=args.seed, device=args.device, download=not args.no_download,
                      threads=args.threads)
    print(f"report: {report}")
    return 0


def _train_overrides(args: argparse.Namespace) -> dict:
    """The TrainConfig fields given on the command line: every train option's ``dest`` is a TrainConfig field and
    an option not given leaves no attribute (``argparse.SUPPRESS``), so TrainConfig's defaults apply."""
    from .training.trainer import TrainConfig

    fields = set(TrainConfig.__dataclass_fields__)
    return {key: value for key, value in vars(args).items() if key in fields}


def _branch_names(text: str) -> Tuple[str, ...]:
    return tuple(b for b in text.split(",") if b)


def _cmd_train(args: argparse.Namespace) -> int:
    from .training.data import load_dataset
    from .training.trainer import TrainConfig, select_device, train

    config = TrainConfig(**_train_overrides(args))
    config.check()
    _check_model_name(config.model)
    select_device(config.device)
    with user_errors(ValueError, OSError):  # the data named on the command line
        bundle = load_dataset(config.dataset, config.data_path, train_per_class=config.train_per_class,
                              test_per_class=config.test_per_class)
    result = train(config, bundle=bundle)
    if int(os.environ.get("RANK", "0")) == 0:
        if config.checkpoint and not args.no_export:
            _export(result.run_dir, None, result.fused, bundle, replace=config.resume)
        final = result.final or {}
        tf, fu = final.get("train_form", {}), final.get("fused", {})
        if tf:
            print(f"training form: top-1 {tf['top1']:.2f}%  top-5 {tf['top5']:.2f}%")
        if fu:
            print(f"re-parameterized: top-1 {fu['top1']:.2f}%  top-5 {fu['top5']:.2f}%  "
                  f"(agreement {100 * final['agreement']:.2f}% of predictions)")
        print(f"run folder: {result.run_dir}")
    return 0


def _export(source: Path, out: Optional[Path], fused: Any, bundle: Any = None, replace: bool = False) -> None:
    """fused.pth and model.onnx for a checkpoint (checked on real test images of ``bundle`` when given).
    ``replace``: a resumed training run replaces the files it exported before it was resumed (they hold its
    earlier weights); every other export refuses to overwrite a file."""
    from .deploy.artifacts import FUSED_NAME, ONNX_NAME, export_run
    from .training.data import make_loaders

    images = None
    if bundle is not None:
        images = next(iter(make_loaders(bundle, 64, augment=False, eval_batch_size=64)[1]))[0]
    earlier = replace and any((Path(source) / name).exists() for name in (FUSED_NAME, ONNX_NAME))
    written = export_run(source, out, fused=fused, images=images, overwrite=replace)
    for kind, path in written.items():
        what = {"fused": "fused checkpoint (no BatchNorm)", "onnx": "ONNX fp32, checked against PyTorch"}[kind]
        print(f"{what}: {path}" + (" (replaces the run's export from before it was resumed)" if earlier else ""))
    print(f"evaluate it: python -m repghost_mini eval {written['onnx']}")


def _cmd_export(args: argparse.Namespace) -> int:
    _set_threads(args.threads)
    src = _checkpoint_path(args.checkpoint)
    with user_errors(ValueError, OSError):  # the data the check reads, the folder written
        _export(src, Path(args.out) if args.out else None, None)
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    import torch

    from .core.reparam import count_batchnorms
    from .measure.counting import count_params
    from .training.checkpoints import read_checkpoint, save_checkpoint
    from .training.registry import fuse_model

    src = _checkpoint_path(args.checkpoint)
    out = Path(args.output)
    if out.resolve() == src.resolve():
        raise CLIError("OUTPUT must differ from CHECKPOINT: convert never overwrites the training checkpoint.")
    out = _new_output(args.output, "fused.pth")
    ckpt = read_checkpoint(src)
    if ckpt.fused:
        raise CLIError(f"{str(src)!r} is already a fused checkpoint; nothing to convert.")
    if ckpt.model_name.startswith("timm:"):
        raise CLIError(f"{str(src)!r} holds a timm model ({ckpt.model_name}); convert handles repghost_mini models, "
                       "use timm.utils.model.reparameterize_model for timm's.")
    model = ckpt.build_model()
    fused = fuse_model(model)
    size = ckpt.card.image_size  # one sentence for an older checkpoint that does not record it
    x = torch.randn(8, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y, y_fused = model(x), fused(x)
    require_finite(y, f"the output of {src.name}")
    diff = (y - y_fused).abs().max().item()
    card = getattr(model, "card", None)
    save_checkpoint(out, fused, ckpt.model_name, run_config=ckpt.run_config, fused=True,
                    class_names=ckpt.class_names, image_size=size, num_classes=ckpt.num_classes, source=str(src),
                    weights=model.weights, card=card.replace(fused=True) if card is not None else None,
                    overwrite=False)
    print(f"fused checkpoint ({_weights_words(model.weights)}): {out}  "
          f"({count_params(model) / 1e6:.3f}M -> {count_params(fused) / 1e6:.3f}M params, "
          f"{count_batchnorms(model)} -> {count_batchnorms(fused)} BatchNorms, max |logit diff| {diff:.2e} "
          f"on {x.shape[0]} random {size}x{size} inputs)")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from .training.checkpoints import read_checkpoint
    from .training.data import load_dataset, make_loaders
    from .training.evaluation import evaluate, evaluate_reparameterized
    from .training.trainer import select_device

    _set_threads(args.threads)
    select_device(args.device)  # a device that is not there: one line before any work
    path = _checkpoint_path(args.checkpoint)
    if path.suffix.lower() in (".onnx", ".pte"):
        return _eval_exported(args, path)
    ckpt = read_checkpoint(path)
    model = ckpt.build_model()
    dataset = args.dataset or (ckpt.run_config or {}).get("dataset")
    with user_errors(ValueError, OSError):  # the data named on the command line
        bundle = load_dataset(dataset, args.data, download=not args.no_download, test_per_class=args.limit,
                              image_size=ckpt.image_size)
    card = getattr(model, "card", None)
    if card is not None:
        card.check_data(bundle)
    elif bundle.num_classes != ckpt.num_classes:
        raise CLIError(f"the checkpoint has {ckpt.num_classes} classes but dataset {dataset!r} has "
                       f"{bundle.num_classes}; pass --dataset matching the training run.")
    _, test = make_loaders(bundle, batch_size=args.batch_size, augment=False, eval_batch_size=args.batch_size)
    device = None if args.device == "auto" else args.device
    print(f"data: {bundle.name} test split, {len(bundle.test)} images ({bundle.source})")
    print(f"weights: {_weights_words(ckpt.raw.get('weights') or model.weights)}")
    if ckpt.fused or ckpt.model_options.get("relu_after_dw"):
        r = evaluate(model, test, device=device)
        if not ckpt.fused:
            print("(the '+ReLU' variant cannot be re-parameterized: training form only)")
        label = "fused model" if ckpt.fused else "training form"
        print(f"{label}: top-1 {r['top1']:.2f}%  top-5 {r['top5']:.2f}%  loss {r['loss']:.4f}")
        return 0
    r = evaluate_reparameterized(model, test, device=device)
    for label, key in (("training form", "train_form"), ("re-parameterized", "fused")):
        print(f"{label:17s} top-1 {r[key]['top1']:.2f}%  top-5 {r[key]['top5']:.2f}%  loss {r[key]['loss']:.4f}")
    print(f"top-1 predictions equal on {100 * r['agreement']:.2f}% of images, max |logit diff| "
          f"{r['max_logit_diff']:.2e}")
    return 0


def _eval_exported(args: argparse.Namespace, path: Path) -> int:
    """``eval MODEL.onnx`` (fp32 or INT8, onnxruntime) or ``eval MODEL.pte`` (ExecuTorch): top-1/top-5 through the
    checkpoint evaluation code; the data set and the input size come from the file's model card (``--dataset``
    for a file without one)."""
    from .training.data import load_dataset, make_loaders
    from .training.evaluation import evaluate

    with user_errors(ValueError, OSError):  # the file named on the command line
        if path.suffix.lower() == ".pte":
            from .deploy.executorch import ExecutorchModel
            model = ExecutorchModel(path)
            label = f"ExecuTorch ({path.name})"
        else:
            from .deploy.quantize import OnnxModel, quantized_op_counts
            model = OnnxModel(path, threads=args.threads or 1)  # refuses a card that does not fit the graph
            label = f"ONNX {'INT8' if sum(quantized_op_counts(path).values()) else 'fp32'} ({path.name})"
    card = model.card
    dataset = args.dataset or (card.dataset if card is not None else None)
    if not dataset:
        raise CLIError(f"this {path.suffix} file carries no model card naming its dataset; pass --dataset (e.g. "
                       "--dataset cifar10-subset).")
    with user_errors(ValueError, OSError):  # the data named on the command line
        bundle = load_dataset(dataset, args.data, download=not args.no_download, test_per_class=args.limit,
                              image_size=card.image_size if card is not None else None)
    size = model.input_shape[-1]
    if card is not None:
        card.check_data(bundle)
    elif isinstance(size, int) and size != bundle.image_size:
        raise CLIError(f"{path.name} takes {size}x{size} images but dataset {dataset!r} has "
                       f"{bundle.image_size}x{bundle.image_size}; pass the dataset it was trained on.")
    if model.num_classes != bundle.num_classes:
        raise CLIError(f"the model has {model.num_classes} outputs but dataset {dataset!r} has "
                       f"{bundle.num_classes} classes; pass the dataset it was trained on.")
    _, test = make_loaders(bundle, batch_size=args.batch_size, augment=False, eval_batch_size=args.batch_size)
    print(f"data: {bundle.name} test split, {len(bundle.test)} images ({bundle.source})")
    r = evaluate(model, test, device="cpu")
    print(f"{label}: top-1 {r['top1']:.2f}%  top-5 {r['top5']:.2f}%  loss {r['loss']:.4f}")
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    import tempfile

    from .deploy.export import onnx_file_size_mb
    from .deploy.quantize import calibration_images, default_weight_type, quantize_model, quantized_op_counts
    from .training.checkpoints import read_checkpoint
    from .training.data import load_dataset
    from .training.registry import fuse_model

    _set_threads(args.threads)
    onnx_only = [flag for flag, given in (("--per-tensor", args.per_tensor), ("--weights", args.weights != "auto"),
                                          ("--calibration-method", args.calibration_method != "minmax")) if given]
    if args.backend == "executorch" and onnx_only:
        raise CLIError(f"{', '.join(onnx_only)} only apply to --backend onnxruntime; --backend executorch always "
                       "quantizes weights per channel and calibrates activations with XNNPACK's histogram "
                       "observer, so leave them out.")
    src = _existing_file(args.checkpoint, "checkpoint")
    out = Path(args.output)
    suffix = {"onnxruntime": ".onnx", "executorch": ".pte"}[args.backend]
    if out.suffix.lower() != suffix:
        raise CLIError(f"OUTPUT {args.output!r} must end in {suffix} (--backend {args.backend} writes a {suffix} "
                       "file).")
    out = _new_output(args.output, f"int8{suffix}", "quantize")
    ckpt = read_checkpoint(src)
    model = ckpt.build_model()
    dataset = args.dataset or (ckpt.run_config or {}).get("dataset")
    with user_errors(ValueError, OSError):  # the data named on the command line, the calibration count
        bundle = load_dataset(dataset, args.data, download=not args.no_download, image_size=ckpt.image_size)
        calibration = calibration_images(bundle, args.calibration_images, seed=args.seed)
    size = int(ckpt.image_size or bundle.image_size)
    card = getattr(model, "card", None)
    if card is not None:
        card.check_data(bundle)
    elif size != bundle.image_size:
        raise CLIError(f"the checkpoint takes {size}x{size} images but dataset {dataset!r} has "
                       f"{bundle.image_size}x{bundle.image_size}; pass the dataset it was trained on.")
    if not ckpt.fused and not args.training_form:
        model = fuse_model(model.eval())
    if args.backend == "executorch":
        return _quantize_executorch(model, out, calibration, size, bundle.name, dataset)
    weights = default_weight_type() if args.weights == "auto" else args.weights
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        quantize_model(model, out, calibration, per_channel=not args.per_tensor, method=args.calibration_method,
                       fp32_path=fp32, weights=weights, overwrite=False)
        fp32_mb = onnx_file_size_mb(fp32)
    ops = quantized_op_counts(out)
    form = "training form" if args.training_form and not ckpt.fused else "fused"
    scheme = "per-tensor" if args.per_tensor else "per-channel"
    print(f"INT8 ONNX: {out}  ({form}, {scheme} {weights} weights, activations "
          f"calibrated ({args.calibration_method}) on {calibration.shape[0]} {bundle.name} training images; "
          f"{ops['QuantizeLinear']} QuantizeLinear / {ops['DequantizeLinear']} DequantizeLinear nodes; "
          f"{fp32_mb:.2f} MB fp32 -> {onnx_file_size_mb(out):.2f} MB)")
    print(f"evaluate it: python -m repghost_mini eval {out} --dataset {dataset}")
    return 0


def _quantize_executorch(model, out: Path, calibration, size: int, data_name: str, dataset: str) -> int:
    """``quantize --backend executorch``: PT2E INT8 (per-channel weights) lowered to XNNPACK, one image per run."""
    from .deploy.executorch import export_executorch

    card = getattr(model, "card", None)
    export_executorch(model.eval(), out, (1, 3, size, size), card=card, int8=True, calibration=calibration,
                      overwrite=False)
    print(f"INT8 ExecuTorch program: {out}  (PT2E, per-channel INT8 weights, activations calibrated on "
          f"{calibration.shape[0]} {data_name} training images, lowered to XNNPACK; input 1x3x{size}x{size}; "
          f"{out.stat().st_size / 2**20:.2f} MB)")
    print(f"evaluate it: python -m repghost_mini eval {out} --dataset {dataset}")
    return 0


def _cmd_notebooks(args: argparse.Namespace) -> int:
    from .teaching.runs import committed_stamps, execute_notebooks

    paths = _notebook_paths(args.paths)
    if args.execute:
        times = execute_notebooks(paths, max_load=args.max_load, timeout=args.timeout, use_cache=args.use_cache)
        print(f"all {len(times)} notebooks executed in {sum(times.values()) / 60:.1f} min")
        return 0
    for name, lines in committed_stamps(paths).items():
        print(f"{name}: {lines['stamp'] or 'no RUN STAMP'} | {lines['time'] or 'no NOTEBOOK TIME'}")
    return 0


def _cmd_ledger(args: argparse.Namespace) -> int:
    from .files import write_text_atomic
    from .teaching.ledger import ledger_page

    paths = _notebook_paths(args.paths)
    page = ledger_page(paths)
    out = Path(args.out)
    if args.check:
        if not out.is_file() or out.read_text(encoding="utf-8") != page:
            raise CLIError(f"{out} is out of date with the committed notebooks; write it again with `python -m "
                           f"repghost_mini ledger --out {out}`.")
    else:
        write_text_atomic(out, page)
    print(next(line for line in page.splitlines() if line.startswith("RESULT ledger")))
    print(f"ledger: {out}" + (" (up to date)" if args.check else ""))
    return 0


def _notebook_paths(given: Sequence[str]) -> List[Path]:
    """The notebooks named, else ``notebooks/NN_*.ipynb`` of this checkout; each one a readable notebook."""
    folder = Path(__file__).resolve().parents[1] / "notebooks"
    paths = [Path(p) for p in given] or sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise CLIError(f"no notebooks found in {folder}; pass their paths.")
    for path in paths:
        _check_notebook(path)
    return paths


def _check_notebook(path: Path) -> None:
    """One sentence for a path that is not a readable Jupyter notebook (missing, a folder, not JSON, no cells)."""
    import json

    _existing_file(str(path), "notebook")
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells")
    except (ValueError, AttributeError):  # not JSON, not UTF-8, JSON that is not an object
        cells = None
    if not isinstance(cells, list):
        raise CLIError(f"{str(path)!r} is not a Jupyter notebook (no JSON object with cells); pass .ipynb files.")


def _cmd_bench(args: argparse.Namespace) -> int:
    from .deploy.latency import benchmark_models, latency_table
    from .training.registry import available_models

    if args.list:
        print("\n".join(available_models()))
        return 0
    if not args.models:
        raise CLIError("name at least one model (e.g. repghostnet_100 repghostnet_100_fused ghostnet_100); "
                       "--list shows all names.")
    rows = benchmark_models(args.models, batch_sizes=args.batch_sizes, threads=args.threads, runtimes=args.runtimes,
                            rounds=args.rounds, image_size=args.image_size, min_run_time=args.min_run_time,
                            baseline=args.baseline)
    ratio = f"; ratio = latency / {args.baseline} in the same round" if args.baseline else ""
    print(f"input {args.image_size}x{args.image_size}, median of {args.rounds} interleaved rounds "
          f"({args.min_run_time} s each){ratio}")
    print(latency_table(rows))
    return 0


# ---------------------------------------------------------------------------------------------------------------
# parser, built from tables: (flags, argparse keywords) per option, one table per command
# ---------------------------------------------------------------------------------------------------------------
_Option = Tuple[Tuple[str, ...], Dict[str, Any]]
_THREADS: _Option = (("--threads",), dict(type=_positive_int, help="CPU threads for torch"))
_NO_DOWNLOAD: _Option = (("--no-download",), dict(action="store_true", help="never download; fail if no data is found"))

_TOUR_OPTIONS: List[_Option] = [
    (("--data",), dict(help="folder (or .npz) holding CIFAR-10; default: $REPGHOST_MINI_DATA, then ./data, "
                            "else download into ./data")),
    (("--out",), dict(default="runs", help="parent folder of the run folder (default: runs)")),
    (("--quick",), dict(action="store_true", help="smaller budgets everywhere (about 2 minutes)")),
    (("--train-seconds",), dict(type=_positive_float, help="training budget in seconds (default 120, --quick 20)")),
    (("--model",), dict(default="repghostnet_050", help="model to train (default repghostnet_050)")),
    (("--seed",), dict(type=int, default=0)),
    (("--device",), dict(default="auto", help="auto, cpu or cuda")),
    (("--threads",), dict(type=_positive_int, help="CPU threads for torch (default: all, or 1 when a probe shows "
                                                   "the cores are busy with other work)")),
    _NO_DOWNLOAD,
]

def _field(flags: Tuple[str, ...], **keywords: Any) -> _Option:
    """A train option: its ``dest`` is a TrainConfig field (the flag's name unless given), absent when not given."""
    return flags, dict(keywords, default=argparse.SUPPRESS)


#: Every option sets the TrainConfig field named by its dest; the model options (repghost_mini.ModelOptions: model,
#: small_input, dropout, branches, shortcut, relu_after_dw) each have one (a test checks that none is missing).
_TRAIN_ARGS: List[_Option] = [
    _field(("--model",), help="a name from `bench --list` (repghostnet_050 ... ghostnet_100, Table 6/7 variants) "
                              "or timm:<name> (default repghostnet_050)"),
    _field(("--dataset",), help="cifar10-subset (default), cifar10, npz, imagenette, imagenet-subset, imagefolder, "
                                "synthetic"),
    _field(("--data",), dest="data_path", help="folder or .npz to read the dataset from (default: "
                                                "$REPGHOST_MINI_DATA, ./data)"),
    _field(("--train-per-class",), type=_positive_int, help="keep only the first N training images per class"),
    _field(("--test-per-class",), type=_positive_int, help="keep only the first N test images per class"),
    _field(("--epochs",), type=_positive_int),
    _field(("--time-budget",), type=_positive_float, help="stop after this many seconds of training"),
    _field(("--batch-size",), type=_positive_int),
    _field(("--lr",), type=_positive_float),
    _field(("--warmup",), type=float, help="warm-up fraction of the schedule"),
    _field(("--weight-decay",), type=float),
    _field(("--dropout",), type=float),
    _field(("--label-smoothing",), type=float),
    _field(("--ema-decay",), type=float, help="EMA decay of the weights (default 0.98, see TrainConfig)"),
    _field(("--no-ema",), dest="ema_decay", action="store_const", const=None,
           help="train without an EMA of the weights"),
    _field(("--holdout",), type=float, help="share of the training split held out to choose EMA or raw weights "
                                            "(default 0.1; only with an EMA)"),
    _field(("--random-erasing",), type=float),
    _field(("--branches",), type=_branch_names, help="re-parameterization branches, comma separated from "
                                                     "identity,bn,dconv1x1 ('' for none; Table 6)"),
    _field(("--no-shortcut",), dest="shortcut", action="store_const", const=False,
           help="drop the identity shortcuts (Table 7)"),
    _field(("--relu-after-dw",), action="store_const", const=True,
           help="Table 6 '+ReLU' variant (cannot be fused)"),
    _field(("--full-size",), dest="small_input", action="store_const", const=False,
           help="ImageNet stem (stride 32) even for small images (default: the small-input stem for images of at "
                "most 64 px)"),
    _field(("--seed",), type=int),
    _field(("--device",), help="auto (default), cpu, cuda"),
    _field(("--amp",), action=argparse.BooleanOptionalAction, help="mixed precision (default: on CUDA)"),
    _field(("--channels-last",), action=argparse.BooleanOptionalAction),
    _field(("--compile",), action=argparse.BooleanOptionalAction,
           help="run the training step through torch.compile (default: on with CUDA, off on the CPU)"),
    _field(("--sync-bn",), action="store_true", help="SyncBatchNorm under DDP"),
    _field(("--workers",), type=int),
    _field(("--threads",), type=_positive_int),
    _field(("--out",), dest="out_dir", help="run folder (default runs/<dataset>-<model>-seed<seed>)"),
    _field(("--resume",), action="store_true", help="continue the run in --out"),
    _field(("--allow-changes",), action="store_true",
           help="with --resume: continue the checkpoint's weights with changed settings (lr, epochs, data limits "
                "...); the learning-rate schedule restarts over the remaining epochs and final.json records the "
                "change. The network (model, branches, dataset) can never change"),
    _field(("--eval-every",), type=_non_negative_int, help="evaluate every N epochs (0: only at the end)"),
    _field(("--no-progress",), dest="progress", action="store_const", const=False, help="no tqdm bars"),
    (("--no-export",), dict(action="store_true", help="do not write fused.pth and model.onnx at the end (`export` "
                                                      "does it later)")),
]

_EVAL_ARGS: List[_Option] = [
    (("checkpoint",), dict(help="checkpoint.pth (or run folder) from train, fused.pth from export / convert, or an "
                                "ONNX file from export / quantize")),
    (("--dataset",), dict(help="dataset name (default: the one the checkpoint was trained on)")),
    (("--data",), dict(help="folder or .npz to read it from (default: $REPGHOST_MINI_DATA, ./data)")),
    (("--batch-size",), dict(type=_positive_int, default=256)),
    (("--limit",), dict(type=_positive_int, help="only the first LIMIT test images of every class")),
    (("--device",), dict(default="auto")),
    _THREADS, _NO_DOWNLOAD,
]

_QUANTIZE_ARGS: List[_Option] = [
    (("checkpoint",), dict(help="checkpoint.pth from train or convert")),
    (("output",), dict(help="the INT8 file to write: .onnx (onnxruntime) or .pte (--backend executorch)")),
    (("--backend",), dict(default="onnxruntime", choices=("onnxruntime", "executorch"),
                          help="onnxruntime: QDQ ONNX (default); executorch: PT2E INT8 lowered to XNNPACK, a .pte "
                               "program for one image at a time (pip install -e '.[mobile]')")),
    (("--dataset",), dict(help="calibration images come from its training split (default: the checkpoint's)")),
    (("--data",), dict(help="folder or .npz to read it from (default: $REPGHOST_MINI_DATA, ./data)")),
    (("--calibration-images",), dict(type=int, default=512, help="how many training images (default 512)")),
    (("--calibration-method",), dict(default="minmax", choices=("minmax", "entropy", "percentile"))),
    (("--per-tensor",), dict(action="store_true", help="one weight scale per tensor (default: per channel)")),
    (("--training-form",), dict(action="store_true", help="quantize the training form, not re-parameterized")),
    (("--weights",), dict(default="auto", choices=("auto", "int8", "int8-7bit", "uint8"),  # ("auto",) + WEIGHT_TYPES
                          help="how weights are stored; int8 saturates on x86 CPUs without VNNI, where uint8 is exact "
                               "(default auto: chosen for this machine's CPU)")),
    (("--seed",), dict(type=int, default=0, help="which calibration images are drawn")),
    _THREADS, _NO_DOWNLOAD,
]

_EXPORT_ARGS: List[_Option] = [
    (("checkpoint",), dict(help="checkpoint.pth (or run folder) written by train")),
    (("--out",), dict(help="folder to write fused.pth and model.onnx into (default: the checkpoint's folder)")),
    _THREADS,
]

_CONVERT_ARGS: List[_Option] = [
    (("checkpoint",), dict(help="checkpoint.pth written by train")),
    (("output",), dict(help="where to write the fused checkpoint")),
]

_BENCH_ARGS: List[_Option] = [
    (("models",), dict(nargs="*", help="model names, e.g. repghostnet_100 repghostnet_100_fused ghostnet_100")),
    (("--list",), dict(action="store_true", help="print the model names and exit")),
    (("--image-size",), dict(type=_positive_int, default=224)),
    (("--batch-sizes",), dict(type=_positive_int, nargs="+", default=[1])),
    (("--threads",), dict(type=_positive_int, nargs="+", default=[1], help="CPU thread counts to try")),
    (("--runtimes",), dict(nargs="+", default=["torch"], help="torch, torch_channels_last, torch_optimized, "
                                                               "onnxruntime, onnxruntime-int8, and with pip install "
                                                               "-e '.[mobile]': mnn (the paper's runtime), "
                                                               "executorch, executorch-int8")),
    (("--baseline",), dict(help="one of the models: adds a column latency / baseline (same round)")),
    (("--rounds",), dict(type=_positive_int, default=5)),
    (("--min-run-time",), dict(type=_positive_float, default=0.2, help="seconds per model and round")),
]

_NOTEBOOKS_ARGS: List[_Option] = [
    (("paths",), dict(nargs="*", help="notebooks to run, in order (default: notebooks/NN_*.ipynb of this checkout)")),
    (("--execute",), dict(action="store_true", help="re-execute them in place under one run id (else: show the "
                                                    "run stamp and time each committed notebook carries)")),
    (("--max-load",), dict(type=float, default=0.5, help="refuse to start above this 1-minute load average "
                                                         "(default 0.5)")),
    (("--timeout",), dict(type=_positive_int, default=1800, help="seconds one cell may run (default 1800)")),
    (("--use-cache",), dict(action="store_true", help="let the notebooks load the trained runs cached in "
                                                     "notebooks/runs/ (default: refuse to start while it holds any)")),
]

_LEDGER_ARGS: List[_Option] = [
    (("paths",), dict(nargs="*", help="notebooks to read (default: notebooks/NN_*.ipynb of this checkout)")),
    (("--out",), dict(default="docs/ledger.md", help="the page to write (default docs/ledger.md)")),
    (("--check",), dict(action="store_true", help="write nothing; fail when OUT differs from the page the committed "
                                                 "notebooks give")),
]

#: command -> (handler, one-line help, description, options)
_COMMANDS: Dict[str, Tuple[Callable[[argparse.Namespace], int], str, str, List[_Option]]] = {
    "tour": (_cmd_tour, "run the paper's story end to end on real data and write a Markdown report",
             "Concat vs. add, a->e fusion, Table 3 counts, a short CIFAR-10 training run, re-parameterization with "
             "equal accuracy and latency before/after; writes OUT/tour-<time>/report.md with figures. About 4 "
             "minutes on 2 CPU cores (--quick: about 1 minute).", _TOUR_OPTIONS),
    "train": (_cmd_train, "train a model (also under torchrun for DDP)",
              "Train with the paper's recipe scaled down (SGD, cosine, warm-up, EMA, label smoothing); writes "
              "metrics, curves and checkpoints into --out. Multi-GPU: torchrun --nproc_per_node=N -m repghost_mini "
              "train ...", _TRAIN_ARGS),
    "eval": (_cmd_eval, "top-1/top-5 of a checkpoint (both forms) or of an ONNX file (fp32 or INT8)",
             "Evaluate a checkpoint written by `train` (both forms), a fused.pth from `export` / `convert`, or an "
             "ONNX file from `export` / `quantize`; the model card in the file names the dataset and input size, "
             "and the same evaluation code scores all of them.",
             _EVAL_ARGS),
    "quantize": (_cmd_quantize, "checkpoint -> INT8 ONNX or ExecuTorch program (static post-training quantization)",
                 "Re-parameterize the checkpoint (unless it is fused already), export it to ONNX and quantize it "
                 "statically with onnxruntime (QDQ: INT8 weights per output channel or per tensor, activations "
                 "calibrated on real training images), or with --backend executorch quantize it with PT2E and lower "
                 "it to an ExecuTorch + XNNPACK .pte program.", _QUANTIZE_ARGS),
    "export": (_cmd_export, "checkpoint -> fused.pth + model.onnx (the deployable model, with its model card)",
               "Re-parameterize a training checkpoint once, save the fused weights (fused.pth) and export them to "
               "fp32 ONNX (model.onnx), both carrying the model card (architecture, input size, normalization, "
               "classes, accuracy); the ONNX file is checked against the training-form model on real test images. "
               "`train` does this at the end of every run.", _EXPORT_ARGS),
    "convert": (_cmd_convert, "training checkpoint -> fused (re-parameterized) checkpoint",
                "Re-parameterize a training checkpoint (Sec. 3.2) and save the fused weights; prints the largest "
                "logit difference between the two forms.", _CONVERT_ARGS),
    "notebooks": (_cmd_notebooks, "execute all notebooks in one run on one idle machine (or show their stamps)",
                  "Re-execute the notebooks in order, in place, each in a fresh kernel, under one run id that every "
                  "notebook's RUN STAMP line shows, so numbers in different notebooks come from the same machine and "
                  "day; refuses to start on a busy machine (1-minute load above --max-load).", _NOTEBOOKS_ARGS),
    "ledger": (_cmd_ledger, "which of the paper's claims held: one page from the notebooks' RESULT lines",
               "Read the committed notebooks' RESULT lines, each naming a claim of the paper "
               "(repghost_mini.paper.CLAIMS), and write the ledger page: claim, the paper's words, our measurement, "
               "status (reproduced, same direction, reversed, cannot rank, not attempted).", _LEDGER_ARGS),
    "bench": (_cmd_bench, "latency of named models (interleaved, median)",
              "Latency of registry models (repghostnet_100, repghostnet_100_fused, ghostnet_100, "
              "timm_repghostnet_100 ...; random weights), measured side by side in interleaved rounds "
              "(repghost_mini.deploy.benchmark_models); prints a Markdown table. --list shows every name.",
              _BENCH_ARGS),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``repghost-mini`` argument parser (one sub-command per step of the pipeline), built from the tables."""
    parser = _Parser(prog=PROG, description="RepGhost (Chen et al. 2022) in small: train, re-parameterize, measure.",
                     epilog="Errors are one line; set REPGHOST_MINI_TRACEBACK=1 to see Python tracebacks.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, (handler, help_text, description, options) in _COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=description)
        for flags, keywords in options:
            command.add_argument(*flags, **keywords)
        command.set_defaults(func=handler)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m repghost_mini`` and ``repghost-mini``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"{PROG} {args.command}"
    for text in argv if argv is not None else sys.argv[1:]:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # bytes the file system gave Python as surrogates: ONNX and MNN cannot open them
            shown = text.encode("utf-8", "replace").decode("utf-8")
            print(f"{prog}: error: the argument {shown!r} is not valid UTF-8; rename the file or folder with UTF-8 "
                  "characters.", file=sys.stderr)
            return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        if os.environ.get("REPGHOST_MINI_TRACEBACK"):
            raise
        text = str(err)
        if isinstance(err, OSError) and err.strerror:  # "[Errno 28] ..." -> the sentence (+ the file it names)
            text = err.strerror + (f": {err.filename}" if err.filename else "")
        message = " ".join(text.split()) or type(err).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
