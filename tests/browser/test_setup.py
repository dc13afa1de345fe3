"""Unit checks of the browser suite's wiring (these run in the plain `python -m pytest tests`, no browser needed).

The suite is opt-in (`-m browser` overrides pyproject's addopts), the README shows how to run it and CI runs it after
the README's test command, without Chromium it is skipped with the reason, and the harness reads what a committed
notebook promises and strips outputs from the copy it runs.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import committed_expectations, copy_stripped

ROOT = Path(__file__).resolve().parents[2]
BROWSER = "python -m pytest -m browser"
CI_BROWSER = 'python -m pytest -m "browser and not long_notebook"'
TEST = "python -m pytest tests && python -m pytest --nbval --nbval-current-env notebooks"


def pytest_run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # a pytest run in a subprocess
def test_browser_tests_run_only_when_asked():
    default = pytest_run("tests/browser", "--collect-only", "-q")
    asked = pytest_run("tests/browser", "-m", "browser", "--collect-only", "-q")
    assert "test_notebook_runs_in_jupyterlab" not in default.stdout, default.stdout
    assert "test_setup.py" in default.stdout  # the unmarked wiring checks stay in the unit run
    assert "test_notebook_runs_in_jupyterlab[01_" in asked.stdout and "test_harness_detects" in asked.stdout
    assert "test_setup.py" not in asked.stdout
    ci = pytest_run("tests/browser", "-m", "browser and not long_notebook", "--collect-only", "-q")
    assert "test_notebook_runs_in_jupyterlab[01_" in ci.stdout and "test_trainer_draws_a_live_widget_bar" in ci.stdout
    assert "[04_" not in ci.stdout and "[05_" not in ci.stdout and "[06_" not in ci.stdout and "[07_" not in ci.stdout
    assert "[03_" in ci.stdout and "[08_" in ci.stdout


@pytest.mark.slow  # a pytest run in a subprocess
def test_without_chromium_the_suite_is_skipped_with_its_reason():
    env = {k: v for k, v in os.environ.items() if k != "REPGHOST_MINI_CHROMIUM"} | {"PATH": "/nonexistent"}
    run = pytest_run("-m", "browser", "-rs", "tests/browser/test_harness_can_fail.py", env=env)
    assert run.returncode == 0 and "1 skipped" in run.stdout, run.stdout[-2000:]
    assert "browser tests need a system Chromium: apt-get install -y chromium" in run.stdout


def test_readme_shows_and_ci_runs_the_browser_suite_after_the_tests():
    readme, ci = (ROOT / "README.md").read_text(), (ROOT / ".ci" / "run").read_text()
    assert BROWSER in readme and "skipped" in readme.split(BROWSER, 1)[1][:1500]
    assert TEST in ci and CI_BROWSER in ci and ci.index(TEST) < ci.index(CI_BROWSER)
    assert CI_BROWSER in readme
    assert "apt-get install -y -qq chromium" in ci


def test_readme_screenshot_is_committed_and_small():
    shots = [line.split("](", 1)[1].split(")", 1)[0] for line in (ROOT / "README.md").read_text().splitlines()
             if line.startswith("![") and "](" in line]
    assert shots, "the README shows no screenshot"
    for shot in shots:
        assert (ROOT / shot).is_file() and (ROOT / shot).stat().st_size <= 300_000, shot


def test_stripped_copy_has_no_outputs_and_expectations_come_from_the_committed_one(tmp_path):
    cells = [{"cell_type": "code", "metadata": {}, "execution_count": 3, "source": "x", "outputs": [
        {"output_type": "stream", "name": "stdout", "text": ["RESULT nb99 top-1: 50%\n", "other\n"]},
        {"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBO", "text/plain": "<Figure>"}},
        {"output_type": "display_data", "metadata": {},
         "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "m"}}}]}]
    src = tmp_path / "99_demo.ipynb"
    src.write_text(json.dumps({"cells": cells, "metadata": {"widgets": {}}, "nbformat": 4, "nbformat_minor": 5}))
    expected = committed_expectations(src)
    assert (expected.figures, expected.result_labels, expected.widget_bar) == (1, ["RESULT nb99 top-1"], True)
    copy = json.loads(copy_stripped([src], tmp_path / "copy")[0].read_text())
    assert copy["cells"][0]["outputs"] == [] and copy["cells"][0]["execution_count"] is None
    assert "widgets" not in copy["metadata"]
