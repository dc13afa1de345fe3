"""The browser harness must be able to fail: a throwaway notebook with a raising cell, run the same way.

It also draws a tqdm widget bar, a figure and a RESULT line before the failure, so the positive detections are
proven on the same page, and prints a traceback to stderr without raising. Its own JupyterLab is stopped in
`finally`, and afterwards none of that server's processes (the kernel included) may be alive.
"""
import json

import pytest

from .conftest import start_lab, stop_lab
from .harness import Expected, problems, run_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # slow too: `-m "not slow"` leaves them out

CELLS = [
    "import time\nfrom tqdm.auto import tqdm\nfor _ in tqdm(range(30), leave=False):\n    time.sleep(0.1)",
    "import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nplt.show()\nprint('RESULT planted: 1')",
    "import sys, traceback\ntry:\n    1 / 0\nexcept ZeroDivisionError:\n    traceback.print_exc()",
    "raise ValueError('planted failure')",
    "print('never reached')",
]


def raising_notebook(path):
    cells = [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": src}
             for src in CELLS]
    nb = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
    path.write_text(json.dumps(nb))


def test_harness_detects_a_raising_cell_and_leaves_no_processes(browser, tmp_path):
    raising_notebook((tmp_path / "root").mkdir() or tmp_path / "root" / "raising.ipynb")
    lab = start_lab(tmp_path / "root", tmp_path / "home")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        report = run_in_browser(context.new_page(), lab, "raising.ipynb", "raising", tmp_path, timeout=300)
        lab.remember_processes()
    finally:
        context.close()
        stop_lab(lab)
    assert len(lab.seen_pids) >= 2, "the server's process tree (server + kernel) was never seen"
    assert not lab.leftovers()

    found = problems(report, Expected(figures=1, result_labels=["RESULT planted"], widget_bar=True))
    assert found, "the harness passed a notebook with a raising cell"
    assert "error output: ValueError: planted failure" in found
    assert f"{len(CELLS) - 1} of {len(CELLS)} code cells executed" in found
    assert sum(p.startswith("traceback on stderr") for p in found) == 2  # print_exc and the raised error
    assert len(found) == 4, found  # the widget bar, the figure and the RESULT line before it were all seen
    assert report.screenshot.exists() and (tmp_path / "raising-live.png").exists()

    stricter = problems(report, Expected(figures=2, result_labels=["RESULT missing"], widget_bar=True))
    assert "1 figures rendered, the committed notebook has 2" in stricter
    assert "no visible line starting with 'RESULT missing'" in stricter
