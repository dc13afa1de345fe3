"""One machine, one run: the notebooks are executed together, and each says where and when it ran.

A latency in notebook 04 and one in notebook 07 can only be compared if both were measured on the same CPU on the
same day. So every notebook opens with :func:`run_stamp` -- one line with the run id, the CPU, the threads and the
library versions -- and closes with :func:`notebook_time`, its own wall time. :func:`execute_notebooks` (the
``python -m repghost_mini notebooks --execute`` command) re-executes all notebooks in order, in place, under one
run id, and refuses to start on a busy machine, where every timing would be off by tens of percent.
"""
from __future__ import annotations

import os
import platform
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from ..errors import UserError

__all__ = ["run_stamp", "notebook_time", "cpu_description", "execute_notebooks", "committed_stamps",
           "latency_disagreements", "printed_lines", "ABSOLUTE_TOLERANCE", "RUN_ID_VARIABLE"]

#: Environment variable through which :func:`execute_notebooks` hands its run id to every notebook's kernel.
RUN_ID_VARIABLE = "REPGHOST_MINI_RUN_ID"
_STARTED: Optional[float] = None


def cpu_description(cpuinfo: Union[str, os.PathLike] = "/proc/cpuinfo") -> str:
    """The CPU as one short phrase: its model name, family / model numbers and widest vector unit (two machines
    sold under one name, e.g. "AMD EPYC", can differ twofold in speed)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return platform.processor() or platform.machine() or "unknown CPU"
    fields: Dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    vector = ("AVX-512 VNNI" if "avx512_vnni" in flags else "AVX-512" if "avx512f" in flags else
              "AVX2" if "avx2" in flags else "no AVX2")
    numbers = f"family {fields['cpu family']} model {fields['model']}" if "cpu family" in fields else ""
    name = fields.get("model name") or platform.processor() or "unknown CPU"
    return " ".join(part for part in (name, numbers, f"({vector})") if part)


def _versions() -> str:
    import importlib.metadata

    parts = []
    for package in ("torch", "onnxruntime"):
        try:
            parts.append(f"{package}={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{package}=none")
    return " ".join(parts)


def run_stamp() -> str:
    """``RUN STAMP run=<id> | cpu=<CPU> | cores=<n> threads=<torch threads> | torch=... onnxruntime=... | <UTC>``,
    and starts the clock :func:`notebook_time` reads. The run id is the one :func:`execute_notebooks` set for
    all notebooks of its run; a notebook run by hand gets ``adhoc-...`` (its numbers belong to no common run)."""
    global _STARTED
    import torch

    _STARTED = time.perf_counter()
    now = datetime.now(timezone.utc)
    run = os.environ.get(RUN_ID_VARIABLE) or f"adhoc-{now:%Y%m%dT%H%M%S}"
    return (f"RUN STAMP run={run} | cpu={cpu_description()} | cores={os.cpu_count()} "
            f"threads={torch.get_num_threads()} | {_versions()} | {now:%Y-%m-%d %H:%M} UTC")


def printed_lines(path: Union[str, os.PathLike]) -> Iterator[Tuple[int, str]]:
    """``(cell index, line)`` for every line a committed notebook's cells printed (stream outputs), in order: what
    the run stamp, the ledger and the latency agreement read."""
    import json

    for index, cell in enumerate(json.loads(Path(path).read_text(encoding="utf-8")).get("cells", [])):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                for line in "".join(output.get("text", "")).splitlines():
                    yield index, line


def committed_stamps(paths: Sequence[Union[str, os.PathLike]]) -> Dict[str, Dict[str, str]]:
    """``{notebook name: {"stamp": ..., "time": ...}}``: the RUN STAMP and NOTEBOOK TIME lines of committed
    notebooks (empty strings where a notebook has none)."""
    found = {}
    for path in map(Path, paths):
        text = [line for _, line in printed_lines(path)]
        found[path.name] = {key: next((line for line in text if line.startswith(prefix)), "")
                            for key, prefix in (("stamp", "RUN STAMP "), ("time", "NOTEBOOK TIME "))}
    return found


#: How far one model's mean latency may move between two cells of one run (relative). Measured in the run of
#: 2026-12-07 22:15 UTC on an idle 2-core AMD EPYC: after the MNN thread fix the same model's mean moved by 5-12 %
#: between cells (what ran before it, caches, clock), while every ratio measured in the same rounds agreed within
#: its interval; the 55 % of the bug it guards against (MNN running on both cores) is far outside.
ABSOLUTE_TOLERANCE = 0.15


def latency_disagreements(paths: Sequence[Union[str, os.PathLike]]) -> List[str]:
    r"""Two measurements of the same latency in one run must agree. Reads the ``LATENCY`` records
    (:func:`repghost_mini.deploy.latency_records`) in the committed outputs of the notebooks at ``paths``; a group is
    the records one cell printed (measured in the same interleaved rounds). Returns one sentence per disagreement
    (an empty list: the run agrees with itself):

    * a **ratio** -- two models of one group with the same runtime, batch, threads and image size -- measured in two
      groups, whose 95 % intervals do not overlap (each interval from the two means' intervals, to first order:
      $r\,(1 \pm \sqrt{(h_a/m_a)^2 + (h_b/m_b)^2})$), the quantity every ranking sentence is about;
    * an **absolute** latency measured in two groups whose means differ by more than :data:`ABSOLUTE_TOLERANCE`
      (an absolute millisecond moves between cells more than within one, see there)."""
    import itertools
    import json
    import math

    cells: Dict[str, Dict[tuple, dict]] = {}  # where -> {key: record}, one group per cell
    for path in map(Path, paths):
        for index, line in printed_lines(path):
            if line.startswith("LATENCY {"):
                r = json.loads(line[len("LATENCY "):])
                key = tuple(r[k] for k in ("runtime", "model", "batch", "threads", "image_size"))
                cells.setdefault(f"{path.name} cell {index}", {})[key] = r
    groups = list(cells.items())

    def ratio(a: dict, b: dict) -> tuple:
        r = a["mean_ms"] / b["mean_ms"]
        if None in (a["low_ms"], b["low_ms"]):
            return r, None, None
        rel = math.hypot((a["high_ms"] - a["low_ms"]) / 2 / a["mean_ms"],
                         (b["high_ms"] - b["low_ms"]) / 2 / b["mean_ms"])
        return r, r * (1 - rel), r * (1 + rel)

    problems = []
    for (where_a, a), (where_b, b) in itertools.combinations(groups, 2):
        for key in sorted(set(a) & set(b), key=str):
            ma, mb = a[key]["mean_ms"], b[key]["mean_ms"]
            if abs(ma - mb) > ABSOLUTE_TOLERANCE * min(ma, mb):
                problems.append(f"{key[1]} in {key[0]} (batch {key[2]}, {key[3]} thread(s), {key[4]} px): {ma} ms in "
                                f"{where_a} but {mb} ms in {where_b}, more than {ABSOLUTE_TOLERANCE:.0%} apart")
        for k1, k2 in itertools.combinations(sorted(set(a) & set(b), key=str), 2):
            if k1[0] != k2[0] or k1[2:] != k2[2:]:
                continue
            (r1, lo1, hi1), (r2, lo2, hi2) = ratio(a[k1], a[k2]), ratio(b[k1], b[k2])
            if None not in (lo1, lo2) and (hi1 < lo2 or hi2 < lo1):
                problems.append(f"{k1[1]} / {k2[1]} in {k1[0]}: {r1:.3f} [{lo1:.3f}, {hi1:.3f}] in {where_a} but "
                                f"{r2:.3f} [{lo2:.3f}, {hi2:.3f}] in {where_b}")
    return problems


def notebook_time() -> str:
    """``NOTEBOOK TIME <s> s on <CPU>``: seconds since :func:`run_stamp` (the notebook's own wall time)."""
    if _STARTED is None:
        raise UserError("notebook_time() measures from run_stamp(); run the notebook's first cell first.")
    return f"NOTEBOOK TIME {time.perf_counter() - _STARTED:.0f} s on {cpu_description()}"


def execute_notebooks(paths: Sequence[Union[str, os.PathLike]], max_load: float = 0.5, timeout: int = 1800,
                      log: Callable[[str], None] = print, use_cache: bool = False) -> Dict[str, float]:
    """Execute the notebooks ``paths`` in this order, each in a fresh kernel, and save them in place with their
    outputs; all share one run id (:data:`RUN_ID_VARIABLE`). Refuses to start when the 1-minute load average is
    above ``max_load``, and, unless ``use_cache``, when a ``runs/`` folder beside the notebooks holds trained runs
    (the notebooks would load them instead of training, so their logs and times would not be this run's). A
    notebook that raises stops the run (the notebook is left as it was). Returns ``{name: seconds}``."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebooks: List[Path] = [Path(p) for p in paths]
    missing = [str(p) for p in notebooks if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"no notebook at {missing[0]}; give .ipynb files (e.g. notebooks/*.ipynb).")
    caches = sorted(str(f) for f in {p.parent / "runs" for p in notebooks} if f.is_dir() and any(f.iterdir()))
    if caches and not use_cache:
        raise UserError(f"{caches[0]} holds trained runs of an earlier execution, which the notebooks would load "
                        "instead of training (their logs and times would not be this run's): delete that folder, "
                        "or pass use_cache=True (CLI: --use-cache) to keep them.")
    load = os.getloadavg()[0]
    if load > max_load:
        raise UserError(f"the machine is busy (1-minute load average {load:.2f} > {max_load}): timings measured now "
                        "would not be comparable; wait until it is idle (stop other jobs) and run again.")
    run_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    os.environ[RUN_ID_VARIABLE] = run_id  # the kernels inherit this process's environment
    os.environ.pop("MPLBACKEND", None)  # figures are drawn by the kernel's inline backend
    log(f"run {run_id}: {len(notebooks)} notebooks on {cpu_description()} (load {load:.2f})")
    times: Dict[str, float] = {}
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": str(path.parent.resolve())}})
        try:
            client.execute()
        except CellExecutionError as err:
            raise UserError(f"{path.name} failed (left unchanged): {str(err).strip().splitlines()[-1][:300]}") \
                from None
        times[path.name] = time.perf_counter() - start
        nbformat.write(nb, path)
        log(f"{path.name}: {times[path.name]:.0f} s")
    return times
