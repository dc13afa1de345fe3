"""The trainer's live progress bar, drawn in JupyterLab: a one-minute stand-in for the long training notebooks.

Notebooks 05 and 06 train for minutes, and nbval has just run them cell by cell; what only a browser can show is that
the trainer's tqdm bar becomes a live widget in JupyterLab instead of falling back to text. This notebook calls the
same `repghost_mini.train` with `progress=True` on the built-in synthetic data (no download, no data folder), so CI
checks the bar on every run while the long notebooks stay under `-m browser` (marker `long_notebook`).
"""
import json

import pytest

from .harness import Expected, problems, run_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # slow too: `-m "not slow"` leaves them out

CELLS = [
    "import repghost_mini as rg\n"
    "result = rg.train(model='repghostnet_050', dataset='synthetic', epochs=1, batch_size=32, ema_decay=None,\n"
    "                  progress=True, out_dir='runs/browser_bar', overwrite=True)\n"
    "print(f'RESULT training bar: {len(result.history)} epochs')",
]


def training_notebook(path):
    cells = [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": src}
             for src in CELLS]
    nb = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
    path.write_text(json.dumps(nb))


def test_trainer_draws_a_live_widget_bar_in_jupyterlab(lab, page, tmp_path):
    training_notebook(lab.root / "training_bar.ipynb")
    try:
        report = run_in_browser(page, lab, "training_bar.ipynb", "training-bar", tmp_path, timeout=600)
    finally:
        lab.shutdown_kernels()
    found = problems(report, Expected(figures=0, result_labels=["RESULT training bar"], widget_bar=True))
    assert not found, "the trainer in JupyterLab:\n  " + "\n  ".join(found)
    assert "RESULT training bar: 1 epochs" in report.output_text
