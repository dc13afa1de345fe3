"""Every notebook opened and run in JupyterLab in headless Chromium, checked for what a learner sees.

nbval (the README's test command) compares outputs cell by cell; this suite checks what only a browser shows:
every code cell ran from Run All Cells, no error and no traceback on the page, every figure rendered as an image
(at least as many as the committed notebook), each committed `RESULT ...` line visible, and tqdm's live widget bar
drawn during training. Full-page screenshots land in each test's tmp_path. The notebooks that train carry the marker
``long_notebook`` (see conftest.LONG_NOTEBOOKS): ``-m browser`` runs all eight, CI
``-m "browser and not long_notebook"``.
"""
from pathlib import Path

import pytest

from .conftest import LONG_NOTEBOOKS, NOTEBOOKS
from .harness import PageReport, committed_expectations, problems, run_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # slow too: `-m "not slow"` leaves them out


def run_and_report(page, lab, name: str, workspace: str, tmp_path: Path, timeout: float) -> PageReport:
    try:
        report = run_in_browser(page, lab, name, workspace, tmp_path, timeout=timeout)
    finally:
        lab.shutdown_kernels()  # a failed or timed-out run must not keep training in the background
    print(f"{name}: {report.executed}/{report.code_cells} code cells, {report.figures} figures, "
          f"{len(report.visible_results)} RESULT lines visible, "
          f"widget bar {'seen' if report.widget_bar_seen else 'not seen'}, {report.seconds:.1f} s, "
          f"screenshot {report.screenshot}")
    return report


@pytest.mark.parametrize("notebook", [
    pytest.param(nb, marks=pytest.mark.long_notebook) if nb.stem in LONG_NOTEBOOKS else nb for nb in NOTEBOOKS],
    ids=lambda p: p.stem)
def test_notebook_runs_in_jupyterlab(notebook, lab, page, workspace, tmp_path, timeout):
    expected = committed_expectations(notebook)
    report = run_and_report(page, lab, notebook.name, workspace, tmp_path, timeout)
    found = problems(report, expected)
    assert not found, f"{notebook.name} in JupyterLab:\n  " + "\n  ".join(found)
