"""One machine, one run: the run stamp, the notebook time, and executing notebooks under one run id."""
import json

import pytest

from repghost_mini.errors import UserError
from repghost_mini.teaching import runs

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 23
model\t\t: 49
model name\t: AMD EPYC 7B12
flags\t\t: fpu sse avx avx2 fma
"""


def test_cpu_description_names_the_model_and_its_vector_unit(tmp_path):
    (tmp_path / "cpuinfo").write_text(CPUINFO)
    assert runs.cpu_description(tmp_path / "cpuinfo") == "AMD EPYC 7B12 family 23 model 49 (AVX2)"
    (tmp_path / "vnni").write_text(CPUINFO.replace("avx2 fma", "avx2 avx512f avx512_vnni"))
    assert runs.cpu_description(tmp_path / "vnni").endswith("(AVX-512 VNNI)")
    assert runs.cpu_description(tmp_path / "missing")  # no /proc/cpuinfo: still one phrase


def test_run_stamp_carries_the_run_id_and_starts_the_clock(monkeypatch):
    monkeypatch.setattr(runs, "_STARTED", None)
    with pytest.raises(UserError, match="run_stamp"):
        runs.notebook_time()
    monkeypatch.setenv(runs.RUN_ID_VARIABLE, "test-run-1")
    stamp = runs.run_stamp()
    assert stamp.startswith("RUN STAMP run=test-run-1 | cpu=") and "threads=" in stamp and "torch=" in stamp
    monkeypatch.delenv(runs.RUN_ID_VARIABLE)
    assert "run=adhoc-" in runs.run_stamp()
    assert runs.notebook_time().startswith("NOTEBOOK TIME ")


def _notebook(path, source):
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "a1", "metadata": {}, "outputs": [],
                     "source": source}],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path


def test_a_busy_machine_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(runs.os, "getloadavg", lambda: (1.7, 1.0, 0.5))
    nb = _notebook(tmp_path / "a.ipynb", "print(1)")
    with pytest.raises(UserError, match="busy.*1.70"):
        runs.execute_notebooks([nb])
    assert json.loads(nb.read_text())["cells"][0]["outputs"] == []


@pytest.mark.slow
def test_notebooks_run_in_place_under_one_run_id(tmp_path, monkeypatch):
    monkeypatch.setattr(runs.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.delenv(runs.RUN_ID_VARIABLE, raising=False)
    code = "import repghost_mini\nprint(repghost_mini.teaching.run_stamp())"
    paths = [_notebook(tmp_path / f"{i}.ipynb", code) for i in range(2)]
    times = runs.execute_notebooks(paths, log=lambda _: None)
    assert set(times) == {"0.ipynb", "1.ipynb"}
    stamps = runs.committed_stamps(paths)
    assert len({s["stamp"].split(" | ")[0] for s in stamps.values()}) == 1
    assert "adhoc" not in stamps["0.ipynb"]["stamp"]
    failing = _notebook(tmp_path / "bad.ipynb", "raise ValueError('no')")
    with pytest.raises(UserError, match="bad.ipynb failed"):
        runs.execute_notebooks([failing], log=lambda _: None)


def test_cached_runs_beside_the_notebooks_are_refused_unless_asked_for(tmp_path, monkeypatch):
    """A trained run cached in runs/ would be loaded instead of trained: the committed logs and times would not be
    this run's, so the command refuses (one sentence naming the folder) unless use_cache=True."""
    monkeypatch.setattr(runs.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    nb = _notebook(tmp_path / "a.ipynb", "print(1)")
    (tmp_path / "runs").mkdir()
    assert runs.execute_notebooks([nb], log=lambda _: None)  # an empty runs/ holds nothing to load
    (tmp_path / "runs" / "nb05").mkdir()
    with pytest.raises(UserError, match=r"runs holds trained runs.*delete that folder.*--use-cache") as err:
        runs.execute_notebooks([nb], log=lambda _: None)
    assert "\n" not in str(err.value)
    assert set(runs.execute_notebooks([nb], log=lambda _: None, use_cache=True)) == {"a.ipynb"}
