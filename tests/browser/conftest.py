"""Fixtures of the browser suite (`python -m pytest -m browser`): Chromium, a JupyterLab server, a page per test.

Without Playwright or a system Chromium every browser test is SKIPPED with the reason; nothing passes silently.
"""
import os
import re
from pathlib import Path

import pytest

from .harness import JupyterLab, chromium_executable, copy_stripped

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(ROOT.glob("notebooks/*.ipynb"))
#: The notebooks that train (05, 06), reuse a trained model (07 quantizes notebook 05's) or time dozens of models
#: in several runtimes (04: Fig. 1 in full, Tables 6/7 in MNN and onnxruntime): minutes each, the same kernel work
#: nbval has just checked cell by cell. They carry the marker ``long_notebook``; CI deselects them
#: (``-m "browser and not long_notebook"``) and checks the live training bar on a one-minute run of the same trainer
#: instead (test_training_bar_in_jupyterlab.py); ``-m browser`` runs them all.
LONG_NOTEBOOKS = ("04_repghostnet", "05_train_cifar10", "06_imagenet_subset", "07_deploy")


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need Playwright for Python: pip install -e '.[dev]'")
    executable = chromium_executable()
    if executable is None:
        pytest.skip("browser tests need a system Chromium: apt-get install -y chromium "
                    "(or set REPGHOST_MINI_CHROMIUM to a Chromium/Chrome binary)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"], headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def start_lab(root: Path, home: Path) -> JupyterLab:
    lab = JupyterLab(root, home)
    try:
        return lab.start()
    except BaseException:
        lab.stop()
        raise


def stop_lab(lab: JupyterLab) -> None:
    """Stop the server (kernels deleted, SIGTERM) and fail loudly if any of its processes survived."""
    lab.stop()
    left = lab.leftovers()
    assert not left, f"processes left after stopping JupyterLab: {[p.pid for p in left]}"


@pytest.fixture(scope="session")
def lab(browser, tmp_path_factory):
    """One JupyterLab for the suite, over stripped copies of notebooks/*.ipynb (everything seen is from this run)."""
    base = tmp_path_factory.mktemp("jupyterlab")
    copy_stripped(NOTEBOOKS, base / "root")
    server = start_lab(base / "root", base / "home")
    try:
        yield server
    finally:
        stop_lab(server)


@pytest.fixture
def page(browser):
    """A fresh browser context per test (no state shared between notebooks)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def workspace(request):
    """One JupyterLab workspace per test: reusing one would reopen earlier notebooks."""
    return re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-").lower()


@pytest.fixture
def timeout():
    """Seconds one notebook may take in the browser ($REPGHOST_MINI_BROWSER_TIMEOUT, default 900)."""
    return float(os.environ.get("REPGHOST_MINI_BROWSER_TIMEOUT", 900))
