"""Latency measurement with ``torch.utils.benchmark`` (medians over repeated blocked runs, warm-up included).

CPU timings on a shared 2-core machine are noisy: compare models by ratios measured side by side in one
run (see :func:`compare_latency`, which interleaves the models), never against numbers from another run.
"""
from __future__ import annotations

import copy
import json
import os
import re
import statistics
import tempfile
import warnings
from pathlib import Path
from typing import Collection, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ..errors import UserError, require_finite
from ..measure.tables import markdown_table
from ..measure.timing import interleaved_rounds, median_time, medians
from ..modes import eval_mode
from ..training.registry import build_named_model, model_entry

__all__ = ["measure_latency", "compare_latency", "compare_onnxruntime_latency", "RUNTIMES", "optimize_for_cpu",
           "benchmark_models", "table5_latency", "run_runtime_file", "add_output_differences", "paired_ratios",
           "latency_records",
           "latency_table", "plot_latency"]


@torch.inference_mode()
def measure_latency(model: nn.Module, input_size=(1, 3, 224, 224), threads: Optional[int] = None,
                    min_run_time: float = 0.5, channels_last: bool = False) -> float:
    """Median latency in milliseconds of ``model(x)`` for a random ``x`` of ``input_size``, in eval mode.

    ``threads`` defaults to torch's current setting; ``min_run_time`` (s) bounds how long to sample.
    The model's train/eval mode is restored afterwards.
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.randn(input_size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with eval_mode(model):
        return median_time(lambda: model(x), min_run_time, threads=threads) * 1e3


def compare_latency(models: Mapping[str, nn.Module], input_size=(1, 3, 224, 224), threads: Optional[int] = None,
                    rounds: int = 5, min_run_time: float = 0.2) -> Dict[str, float]:
    """Median latency (ms) per model, measured in ``rounds`` interleaved rounds so drift hits all alike."""
    samples = interleaved_rounds(lambda name: measure_latency(models[name], input_size, threads, min_run_time),
                                 list(models), rounds)
    return medians(samples)


# ----------------------------------------------------------------------------------------------------------
# Named models, several runtimes, tables and plots (used by ``python -m repghost_mini bench`` and benchmarks/)
# ----------------------------------------------------------------------------------------------------------

#: Runtimes :func:`benchmark_models` knows. "torch": eager, NCHW; "torch_channels_last": eager with model and
#: input in channels_last (NHWC) memory; "torch_optimized": :func:`optimize_for_cpu`; "onnxruntime": exported with
#: :func:`repghost_mini.export_onnx`; "onnxruntime-int8": that file quantized by
#: :func:`repghost_mini.deploy.quantize_onnx`
#: (per-channel QDQ, activations calibrated on 64 real CIFAR-10 training images resized to the input size);
#: "mnn": the paper's runtime (Sec. 4), fp32, that ONNX file converted by :func:`repghost_mini.deploy.export_mnn`;
#: "executorch" / "executorch-int8": PyTorch's on-device runtime with XNNPACK, fp32 / PT2E INT8 (per-channel weights,
#: calibrated like onnxruntime-int8), one ``.pte`` per batch size (:func:`repghost_mini.deploy.export_executorch`).
#: The last three need ``pip install -e '.[mobile]'``.
RUNTIMES = ("torch", "torch_channels_last", "torch_optimized", "onnxruntime", "onnxruntime-int8", "mnn",
            "executorch", "executorch-int8")


def optimize_for_cpu(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224)) -> nn.Module:
    """A faster CPU inference copy of an eval-mode ``model``: traced, frozen and ``optimize_for_inference``.

    ``torch.jit.freeze`` inlines the weights as constants, folds Conv+BN (so it removes BNs left after a
    conv -- the same thing re-parameterization does for those) and ``optimize_for_inference`` pre-packs
    conv weights for oneDNN and fuses Conv+ReLU / Conv+Add. The result is a ``torch.jit.ScriptModule`` that
    accepts inputs of the traced shape (batch and image size may change; the channel count may not) and
    gives the same outputs up to float32 rounding. Measured numbers: see ``benchmarks/latency.py``.
    """
    if model.training:
        raise RuntimeError("optimize_for_cpu builds an inference graph: call model.eval() first.")
    param = next(model.parameters(), None)
    if param is not None and param.device.type != "cpu":
        raise ValueError(f"optimize_for_cpu is for CPU models; the model is on {param.device}: call .cpu() first.")
    x = torch.randn(tuple(input_size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit deprecation and input-check tracer warnings
        with torch.no_grad():
            traced = torch.jit.trace(model, x)
            return torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))


def compare_onnxruntime_latency(paths: Mapping[str, str], input_size=(1, 3, 224, 224), threads: int = 1,
                                rounds: int = 5, min_run_time: float = 0.2) -> Dict[str, float]:
    """Median latency (ms) of ``session.run`` per ONNX file, measured in ``rounds`` interleaved rounds
    (the onnxruntime twin of :func:`compare_latency`)."""
    from .export import onnx_session

    sessions = {name: onnx_session(path, threads=threads) for name, path in paths.items()}
    x = torch.randn(tuple(input_size)).numpy()
    feeds = {name: {s.get_inputs()[0].name: x} for name, s in sessions.items()}
    samples = interleaved_rounds(lambda name: median_time(lambda: sessions[name].run(None, feeds[name]),
                                                          min_run_time) * 1e3, list(paths), rounds)
    return medians(samples)


def benchmark_models(names: Union[Sequence[str], Mapping[str, nn.Module]], batch_sizes: Sequence[int] = (1,),
                     threads: Sequence[int] = (1,), runtimes: Sequence[str] = ("torch",), rounds: int = 5,
                     image_size: int = 224, min_run_time: float = 0.2, baseline: Optional[str] = None,
                     workdir: Optional[str] = None,
                     pairs: Optional[Collection[Tuple[str, str]]] = None) -> List[Dict]:
    """Latency of named models (see :func:`build_named_model`) for every runtime x batch size x thread count;
    ``names`` may also map names to eval-mode models built elsewhere (e.g. :func:`table5_latency`'s). ``pairs``,
    when given, keeps only those ``(runtime, name)`` pairs of ``runtimes`` x ``names`` (e.g. an INT8 program of one
    model only, where lowering every model would take minutes); rows come in the same order, without the others.

    Within one (batch, threads) setting **every (runtime, model) pair** is measured in the same ``rounds``
    interleaved rounds (A B C A B C ...), so a ratio between any two of them -- two models in one runtime, or
    INT8 against fp32 -- is measured side by side. Each measurement is a median over about ``min_run_time`` seconds
    after a warm-up: ``torch.utils.benchmark`` for ``"torch"`` (eager), ``"torch_channels_last"`` (eager, every model
    and the input in channels_last memory format) and ``"torch_optimized"`` (:func:`optimize_for_cpu`),
    and for ``"onnxruntime"`` (``session.run``, timed by the same :func:`repghost_mini.measure.timing.median_time`;
    export via :func:`repghost_mini.export_onnx`, into ``workdir`` or a temporary folder), ``"onnxruntime-int8"``
    (that file quantized per channel with 64 real CIFAR-10 images), ``"mnn"`` (that file converted to ``.mnn``,
    float32, one ``forward`` with the output read back; the paper's own mean-of-100 protocol is
    :func:`repghost_mini.deploy.mnn_latency`) and ``"executorch"`` / ``"executorch-int8"`` (one ``.pte`` per batch
    size, ``method.execute``). Returns one row per model and setting with keys ``model, runtime, batch, threads,
    image_size, median_ms, min_ms, rounds, samples_ms`` (one median per round), ``file`` (the file the runtime ran,
    ``None`` for eager PyTorch; kept only when ``workdir`` is given) and ``file_mb``, and, when ``baseline`` names
    one of ``names``, ``ratio``: the median over rounds of latency / baseline latency *in the same round and runtime*.
    """
    given = dict(names) if isinstance(names, Mapping) else None
    names = list(names)
    for n in names if given is None else ():  # one sentence for an unknown name ("timm:<name>" is accepted)
        model_entry(n)
    bad = [r for r in runtimes if r not in RUNTIMES]
    if bad:
        raise UserError(f"unknown runtime {bad[0]!r}; choose from {RUNTIMES}.")
    if baseline is not None and baseline not in names:
        raise UserError(f"baseline {baseline!r} must be one of the benchmarked names {names}.")
    if rounds < 1 or not batch_sizes or not threads or not runtimes:
        raise UserError("rounds must be >= 1 and batch_sizes, threads, runtimes non-empty.")
    if pairs is not None:
        grid = {(r, n) for r in runtimes for n in names}
        unknown = [p for p in pairs if tuple(p) not in grid]
        if unknown:
            raise UserError(f"pair {tuple(unknown[0])!r} is not a (runtime, name) of runtimes {tuple(runtimes)} and "
                            f"names {names}; list only pairs of those.")
        pairs = {tuple(p) for p in pairs}
    _require_extras(runtimes)  # before building anything: one sentence when the mobile extra is missing
    models = given if given is not None else {n: build_named_model(n) for n in names}
    timed = {runtime: {n: models[n] for n in names if pairs is None or (runtime, n) in pairs} for runtime in runtimes}
    rows: List[Dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = workdir or tmp
        files = _runtime_files(timed, folder, image_size)
        for nthreads in threads:
            prepared = {runtime: _prepare(runtime, timed[runtime], files[runtime], nthreads, image_size)
                        for runtime in runtimes}
            for batch in batch_sizes:
                size = (batch, 3, image_size, image_size)
                x = torch.randn(size)
                batch_files = dict(files)
                for runtime in runtimes:
                    if runtime.startswith("executorch"):  # static shapes: one program per batch size
                        batch_files[runtime], prepared[runtime] = _executorch_methods(
                            timed[runtime], folder, size, nthreads, runtime == "executorch-int8")
                timers = {(runtime, n): _timer(runtime, models[n], prepared[runtime].get(n), x)
                          for runtime in runtimes for n in timed[runtime]}
                def measure(key, timers=timers, nthreads=nthreads):  # torch's threads set per measurement
                    return median_time(timers[key], min_run_time, threads=nthreads) * 1e3

                samples = interleaved_rounds(measure, list(timers), rounds)  # the other runtimes set their own
                for runtime in runtimes:
                    for n in timed[runtime]:
                        s = samples[runtime, n]
                        path = batch_files[runtime].get(n)
                        row = dict(model=n, runtime=runtime, batch=batch, threads=nthreads, image_size=image_size,
                                   median_ms=statistics.median(s), min_ms=min(s), rounds=rounds, samples_ms=list(s),
                                   file=path if workdir else None,
                                   file_mb=os.path.getsize(path) / 2**20 if path else None)
                        if baseline is not None and (runtime, baseline) in samples:
                            same_round = zip(s, samples[runtime, baseline], strict=True)
                            row["ratio"] = statistics.median(a / b for a, b in same_round)
                        rows.append(row)
    return rows


def table5_latency(runtimes: Sequence[str] = ("mnn", "onnxruntime"), rounds: int = 5, image_size: int = 224,
                   min_run_time: float = 0.2, threads: int = 1, seed: int = 0,
                   workdir: Optional[str] = None) -> List[Dict]:
    """Table 5's latency column on this machine: its four networks (random weights, RepGhost-Res50 fused:
    :func:`repghost_mini.core.table5_inference_models`) at batch 1 on ``threads`` thread(s), every (runtime,
    model) pair in the same ``rounds`` interleaved rounds (:func:`benchmark_models`). One row per runtime and
    model, ``model`` being Table 5's row name; rank two rows with :func:`repghost_mini.compare` on their
    ``samples_ms``; ``workdir`` keeps the files (rows' ``file``), e.g. to profile them per operator
    (:func:`repghost_mini.deploy.mnn_operator_times`). The paper's column is MNN on one thread of an ARM phone
    (:func:`repghost_mini.paper.table5`)."""
    from ..core.resnet import table5_inference_models

    _require_extras(runtimes)  # before building four ResNet-50s: one sentence when the mobile extra is missing
    return benchmark_models(table5_inference_models(seed), threads=(threads,), runtimes=runtimes, rounds=rounds,
                            image_size=image_size, min_run_time=min_run_time, workdir=workdir)


def _timer(runtime: str, model: nn.Module, prepared, x: torch.Tensor):
    """A no-argument callable that runs ``x`` once in ``runtime`` (inputs converted beforehand, output read back)."""
    if runtime.startswith("onnxruntime"):
        feed = {prepared.get_inputs()[0].name: x.numpy()}
        return lambda: prepared.run(None, feed)
    if runtime == "mnn":
        from .mnn import _inference
        return _inference(prepared, x)
    if runtime.startswith("executorch"):
        return lambda: prepared.execute([x])
    module = model if runtime == "torch" else prepared
    xin = x.contiguous(memory_format=torch.channels_last) if runtime == "torch_channels_last" else x

    @torch.inference_mode()
    def run():
        return module(xin)

    return run


def _require_extras(runtimes: Sequence[str]) -> None:
    """One sentence (:class:`repghost_mini.deploy.mnn.MissingExtraError`) when a runtime of the mobile extra is asked
    for and not installed."""
    if "mnn" in runtimes:
        from .mnn import _require_mnn
        _require_mnn()
    if any(r.startswith("executorch") for r in runtimes):
        from .executorch import _require_executorch
        _require_executorch()


def _executorch_methods(models: Mapping[str, nn.Module], folder: str, size: Sequence[int], threads: int,
                        int8: bool):
    """Every model lowered to ``folder/<name>-b<batch>[-int8].pte`` for input ``size`` (INT8: calibrated on 64 real
    CIFAR-10 training images resized like onnxruntime-int8's) and loaded, with ExecuTorch's thread pool at
    ``threads``: ``({name: path}, {name: method})``."""
    from .executorch import executorch_method, export_executorch, set_executorch_threads

    calibration = None
    set_executorch_threads(threads)
    paths, methods = {}, {}
    for n, m in models.items():
        paths[n] = os.path.join(folder, f"{_file_stem(n)}-b{size[0]}{'-int8' if int8 else ''}.pte")
        if not os.path.exists(paths[n]):  # written once, reused for every thread count
            if int8 and calibration is None:
                from ..training.data import load_dataset
                from .quantize import calibration_images
                calibration = calibration_images(load_dataset("cifar10-subset"), max(64, size[0]),
                                                 image_size=size[-1])
            export_executorch(m, paths[n], size, int8=int8, calibration=calibration)
        methods[n] = executorch_method(paths[n])
    return paths, methods


def _file_stem(name: str) -> str:
    """A file name for a model name: ``"timm:mobileone_s0"`` -> ``"timm_mobileone_s0"``, ``"Ghost-Res50 (s=2)"`` ->
    ``"Ghost-Res50_s_2_"``."""
    return re.sub(r"[^\w.-]+", "_", name)


def _runtime_files(timed: Mapping[str, Mapping[str, nn.Module]], folder: str,
                   image_size: int) -> Dict[str, Dict[str, str]]:
    """``{runtime: {name: file}}`` for ``timed`` (``{runtime: {name: model}}``): the files each runtime loads, written
    to ``folder`` -- one fp32 ONNX export per model, shared by onnxruntime, its INT8 quantization and MNN's
    conversion; ``{}`` for eager PyTorch and for ExecuTorch (its programs are written per batch size)."""
    files: Dict[str, Dict[str, str]] = {runtime: {} for runtime in timed}
    onnx_runtimes = [r for r in timed if r.startswith("onnxruntime") or r == "mnn"]
    if not onnx_runtimes:
        return files
    from .export import export_onnx

    exported = {n: m for r in onnx_runtimes for n, m in timed[r].items()}
    onnx = {n: str(export_onnx(m, os.path.join(folder, f"{_file_stem(n)}.onnx"), (1, 3, image_size, image_size)))
            for n, m in exported.items()}
    if "onnxruntime" in timed:
        files["onnxruntime"] = {n: onnx[n] for n in timed["onnxruntime"]}
    if timed.get("onnxruntime-int8"):
        from ..training.data import load_dataset
        from .quantize import calibration_images, quantize_onnx

        images = calibration_images(load_dataset("cifar10-subset"), 64, image_size=image_size)
        files["onnxruntime-int8"] = {
            n: str(quantize_onnx(onnx[n], os.path.join(folder, f"{Path(onnx[n]).stem}-int8.onnx"), images))
            for n in timed["onnxruntime-int8"]}
    if "mnn" in timed:
        from .mnn import export_mnn

        files["mnn"] = {n: str(export_mnn(onnx[n], os.path.join(folder, f"{Path(onnx[n]).stem}.mnn")))
                        for n in timed["mnn"]}
    return files


def _prepare(runtime: str, models: Mapping[str, nn.Module], files: Mapping[str, str], threads: int,
             image_size: int) -> Dict[str, object]:
    """What ``runtime`` runs for every model (a session, a loaded ``.mnn``, a prepared copy); ``{}`` for eager torch."""
    if runtime.startswith("onnxruntime"):
        from .export import onnx_session
        return {n: onnx_session(files[n], threads=threads) for n in models}
    if runtime == "mnn":
        from .mnn import mnn_module
        return {n: mnn_module(files[n], threads=threads) for n in models}
    if runtime == "torch_optimized":
        return {n: optimize_for_cpu(m, (1, 3, image_size, image_size)) for n, m in models.items()}
    if runtime == "torch_channels_last":
        return {n: copy.deepcopy(m).to(memory_format=torch.channels_last) for n, m in models.items()}
    return {}


#: The runtimes of :data:`RUNTIMES` that run a file (the others run the ``nn.Module`` in eager PyTorch).
_FILE_RUNTIMES = ("onnxruntime", "onnxruntime-int8", "mnn", "executorch", "executorch-int8")


def run_runtime_file(runtime: str, path: str, x: torch.Tensor) -> torch.Tensor:
    """Run a file that :func:`benchmark_models` wrote (a row's ``file``) in its ``runtime`` on ``x`` and return the
    output as a tensor (ExecuTorch programs: ``x`` in chunks of the program's static batch size)."""
    if runtime.startswith("onnxruntime"):
        from .export import run_onnx
        return run_onnx(path, x)
    if runtime == "mnn":
        from .mnn import run_mnn
        return run_mnn(path, x)
    if runtime.startswith("executorch"):
        from .executorch import ExecutorchModel
        program = ExecutorchModel(path)  # feeds any batch in chunks of the program's static batch size
        batch = program.input_shape[0]
        if len(x) % batch:
            raise ValueError(f"{path} runs batches of {batch}; give a multiple of {batch} images, not {len(x)}.")
        return program(x)
    raise ValueError(f"runtime {runtime!r} runs no file; choose one of {_FILE_RUNTIMES}.")


@torch.inference_mode()
def add_output_differences(rows: Sequence[Dict], images: torch.Tensor) -> Sequence[Dict]:
    """Give every row of :func:`benchmark_models` (run with a ``workdir``, so that its files are kept) the key
    ``max_abs_diff_vs_torch``: the largest difference between the file's output on ``images`` and the same named
    model's output in eager PyTorch (``None`` for eager rows). fp32 runtimes: float rounding; INT8: the quantization
    error. ``images`` must hold a multiple of every ExecuTorch row's batch size. Returns ``rows``."""
    reference: Dict[str, torch.Tensor] = {}
    for row in rows:
        if row["runtime"] not in _FILE_RUNTIMES:
            row["max_abs_diff_vs_torch"] = None
            continue
        if row.get("file") is None:
            raise ValueError("these rows carry no files: run benchmark_models with a workdir to keep them.")
        if row["model"] not in reference:
            reference[row["model"]] = build_named_model(row["model"])(images)
        got = run_runtime_file(row["runtime"], row["file"], images)
        require_finite(got, f"the output of {row['file']} ({row['runtime']})")
        row["max_abs_diff_vs_torch"] = (got - reference[row["model"]]).abs().max().item()
    return rows


def latency_records(rows: Sequence[Mapping]) -> List[str]:
    """One ``LATENCY {json}`` line per row of :func:`benchmark_models`: runtime, model, batch, threads, image size,
    the mean over rounds and its 95% t interval (``null`` with one round). Notebooks print them, so that every
    latency measured in one run can be found again and two measurements of the same thing compared
    (:func:`repghost_mini.teaching.latency_disagreements`)."""
    from ..measure.ranking import t_quantile

    lines = []
    for row in rows:
        s = list(row["samples_ms"])
        mean = statistics.fmean(s)
        half = (t_quantile(0.975, len(s) - 1) * statistics.stdev(s) / len(s) ** 0.5) if len(s) > 1 else None
        record = {key: row[key] for key in ("runtime", "model", "batch", "threads", "image_size")}
        record.update(mean_ms=round(mean, 3), low_ms=None if half is None else round(mean - half, 3),
                      high_ms=None if half is None else round(mean + half, 3), rounds=len(s))
        lines.append("LATENCY " + json.dumps(record))
    return lines


def paired_ratios(rows: Sequence[Mapping], model: str, reference: str) -> Dict[tuple, float]:
    """``{(runtime, batch, threads): median over rounds of latency(model) / latency(reference)}``, pairing
    the two models' measurements of the same round (both were taken back to back, so load drift cancels)."""
    index = {(r["runtime"], r["batch"], r["threads"], r["model"]): r for r in rows}
    out: Dict[tuple, float] = {}
    for (runtime, batch, nthreads, name), row in index.items():
        ref = index.get((runtime, batch, nthreads, reference))
        if name == model and ref is not None:
            out[(runtime, batch, nthreads)] = statistics.median(
                a / b for a, b in zip(row["samples_ms"], ref["samples_ms"], strict=True))
    if not out:
        raise ValueError(f"no setting has both {model!r} and {reference!r}; benchmark them together first.")
    return out


#: The columns of a latency table: benchmark_models row key -> title (``ratio`` only when measured).
LATENCY_COLUMNS = {"model": "model", "runtime": "runtime", "batch": "batch", "threads": "threads",
                   "median_ms": "median ms", "min_ms": "min ms"}


def latency_table(rows: Sequence[Mapping]) -> str:
    """:func:`benchmark_models` rows as a Markdown table (:func:`repghost_mini.measure.markdown_table`); a ``ratio``
    column when every row has one."""
    columns = dict(LATENCY_COLUMNS, **({"ratio": "ratio"} if rows and all("ratio" in r for r in rows) else {}))
    return markdown_table(rows, columns)


def plot_latency(rows: Sequence[Mapping], ax=None, value: str = "median_ms"):
    """Grouped bar chart of :func:`benchmark_models` rows: one group per (runtime, batch, threads) setting,
    one bar per model. ``value``: ``"median_ms"``, ``"min_ms"`` or ``"ratio"``. Returns the ``Axes``."""
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError("plot_latency got no rows; run benchmark_models first.")
    if value not in rows[0]:
        raise ValueError(f"rows have no {value!r} column; choose one of {sorted(rows[0])}.")
    settings = list(dict.fromkeys((r["runtime"], r["batch"], r["threads"]) for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    table = {(r["runtime"], r["batch"], r["threads"], r["model"]): r[value] for r in rows}
    if ax is None:  # about an inch per group, wider when a group holds many bars
        _, ax = plt.subplots(figsize=(max(5.0, 1.0 + len(settings) * max(1.1, 0.45 * len(models))), 3.4))
    width = 0.8 / len(models)
    for k, model in enumerate(models):
        xs = [i + (k - (len(models) - 1) / 2) * width for i in range(len(settings))]
        ys = [table.get((*s, model), float("nan")) for s in settings]
        ax.bar(xs, ys, width, label=model)
    ax.set_xticks(range(len(settings)))
    if len({(b, t) for _, b, t in settings}) == 1:  # one batch size and thread count: say it once, below the axis
        ax.set_xticklabels([rt.replace(" ", "\n", 1) for rt, _, _ in settings], fontsize=7)
        ax.set_xlabel(f"batch {settings[0][1]}, {settings[0][2]} thread{'s' if settings[0][2] > 1 else ''}", fontsize=8)
    else:
        ax.set_xticklabels([f"{rt}\nbatch {b}, {t} thr" for rt, b, t in settings], fontsize=7)
    ax.set_ylabel({"median_ms": "latency, median (ms)", "min_ms": "latency, best round (ms)",
                   "ratio": "latency / baseline"}[value] if value in ("median_ms", "min_ms", "ratio") else value)
    if value == "ratio":
        ax.axhline(1.0, color="0.3", lw=0.8, ls="--")
    ax.set_ylim(top=ax.get_ylim()[1] * 1.15)  # room for the legend above the tallest bar
    ax.legend(fontsize=7, ncol=2, loc="upper left")
    return ax
