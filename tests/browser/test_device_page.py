"""The docs page "Time it on your device" (issue 35), built and served the way a reader gets it.

A small site is built with the real docs/conf.py, docs/_ext and docs/device_lab (the page, its JS module, its
build script; onnxruntime-web from docs/device_lab/node_modules; the models already exported by an earlier docs
build are reused when their sources have not changed), served by ``python -m http.server`` on 127.0.0.1 and
opened in headless Chromium:

- a short timing run (``?rounds=3&runs=3&warmup=1``) finishes, shows the medians and a verdict for each pair, and
  its intervals equal what ``repghost_mini.compare`` gives on the samples the browser measured;
- the CIFAR-10 reference model's logits in the browser equal PyTorch's within 1e-4 on the shipped images;
- a planted missing model file makes the page say so in its error sentence;
- opened as a file, the page says it needs a web server (and throws nothing);
- without ``npm ci`` the docs build's hook stops with one sentence saying to run it.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from .book import build_site

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # slow too: `-m "not slow"` leaves them out

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
LAB = DOCS / "device_lab"
PAGE = "device_lab/device.html"
SHORT = "?rounds=3&runs=3&warmup=1"
NPM_SENTENCE = "run `npm ci --prefix docs/device_lab`"


def _copy_docs(dest: Path, node_modules: bool = True) -> Path:
    """A docs folder with the real configuration, extension and device page, and an index holding only that page."""
    docs = dest / "docs"
    docs.mkdir(parents=True)
    shutil.copy(DOCS / "conf.py", docs)
    for folder in ("_ext", "_static"):
        shutil.copytree(DOCS / folder, docs / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(LAB, docs / "device_lab", ignore=shutil.ignore_patterns("node_modules", "_site", "__pycache__"))
    if node_modules:
        (docs / "device_lab" / "node_modules").symlink_to(LAB / "node_modules")
        if (LAB / "_site").is_dir():  # the exported models of an earlier build: reused if still up to date
            shutil.copytree(LAB / "_site", docs / "device_lab" / "_site")
    (docs / "index.md").write_text("# Device page\n\n```{toctree}\n\ndevice_lab/device\n```\n")
    return docs


@pytest.fixture(scope="module")
def device_site(tmp_path_factory):
    pytest.importorskip("myst_nb", reason="the docs build needs the docs extra: pip install -e '.[docs]'")
    if not (LAB / "node_modules" / "onnxruntime-web").is_dir():
        pytest.fail("docs/device_lab/node_modules is missing: run `npm ci --prefix docs/device_lab` first")
    base = tmp_path_factory.mktemp("device_site")
    out = base / "build" / "html"
    code, log, seconds = build_site(out, docs=_copy_docs(base / "repo"), timeout=900)
    assert code == 0 and "WARNING" not in log, log[:4000]
    print(f"\ndevice page built in {seconds:.1f} s")
    return out


class StaticServer:
    """``python -m http.server`` over ``folder`` on 127.0.0.1 (a free port), stopped by ``stop``."""

    def __init__(self, folder: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc = subprocess.Popen([sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1",
                                      "--directory", str(folder)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(self.url, timeout=2).close()
                return
            except OSError as err:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"python -m http.server did not start on {self.url}") from err
                time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(scope="module")
def server(device_site):
    srv = StaticServer(device_site)
    try:
        yield srv
    finally:
        srv.stop()


class Visit:
    """A page in its own context, with what it logged and every URL it fetched from the server."""

    def __init__(self, browser, url: str):
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.fetched: list[str] = []
        # the browser's own request for /favicon.ico (the site has none; not something the page fetches) is no error
        self.page.on("console", lambda m: m.type == "error" and not m.location.get("url", "").endswith(
            "/favicon.ico") and self.errors.append(f"{m.text} ({m.location.get('url')})"))
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.on("requestfinished", lambda r: self.fetched.append(r.url))
        self.page.on("response", lambda r: r.status >= 400 and self.errors.append(f"HTTP {r.status}: {r.url}"))
        self.page.goto(url, wait_until="load")

    def wait_for(self, expression: str, timeout_s: float):
        self.page.wait_for_function(expression, timeout=timeout_s * 1000)

    def close(self):
        self.context.close()


def test_a_short_run_shows_medians_and_a_verdict_for_each_pair(browser, server, device_site):
    import repghost_mini as rg

    visit = Visit(browser, server.url + PAGE + SHORT)
    try:
        visit.wait_for("window.deviceLab && window.deviceLab.ready", 30)
        visit.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url.rstrip("/"))
        visit.page.click("#dl-run")
        visit.wait_for("window.deviceLab.result || (window.deviceLab.errors || []).length", 120)
        errors = visit.page.evaluate("window.deviceLab.errors")
        assert not errors, errors
        result = visit.page.evaluate("window.deviceLab.result")
        verdicts = visit.page.eval_on_selector_all("tr[data-pair] td.dl-verdict",
                                                   "cells => cells.map(c => c.innerText)")
        progress = visit.page.inner_text("#dl-progress-text")
        shown = visit.page.inner_text("#dl-results")
        visit.wait_for("window.deviceLab.classified || (window.deviceLab.errors || []).length", 30)
        visit.page.click("#dl-copy")
        visit.wait_for("document.getElementById('dl-copy-status').innerText.length > 0", 10)
        copied = visit.page.evaluate("navigator.clipboard.readText()")
        fetched = list(visit.fetched)
        assert not visit.errors, visit.errors
    finally:
        visit.close()

    assert len(verdicts) == 2 and set(verdicts) <= {"faster", "slower", "cannot rank"}, verdicts
    assert progress.startswith("done: 3 rounds"), progress
    assert result["width"] == 0.5 and result["rounds"] == 3 and result["runs_per_sample"] == 3
    for key in ("fused", "unfused", "ghostnet"):
        assert len(result["samples_ms"][key]) == 3 and result["medians_ms"][key] > 0, result["samples_ms"]
    assert result["device"]["userAgent"] and result["device"]["hardwareConcurrency"] >= 1
    assert result["paper"]["ratio"] == round(rg.paper.table3("repghostnet", 0.5)["latency_ms"]
                                             / rg.paper.table3("ghostnet", 0.5)["latency_ms"], 2)
    for pair, (a, b) in {"repghost_vs_ghost": ("fused", "ghostnet"), "fused_vs_unfused": ("fused", "unfused")}.items():
        js = result["comparisons"][pair]
        py = rg.compare(result["samples_ms"][a], result["samples_ms"][b])
        assert js["verdict"] == py.verdict and js["verdict_word"] in verdicts
        np.testing.assert_allclose([js["ratio"], js["low"], js["high"]], [py.ratio, py.low, py.high], rtol=1e-9)
        assert js["sentence"] in shown
    assert "RepGhostNet / GhostNet" in shown and "fused / training form" in shown and "paper" in shown
    assert json.loads(copied)["samples_ms"] == result["samples_ms"]

    # what a reader downloads for this run (the default width): every file the page fetched from the server
    local = [url[len(server.url):].split("?")[0] for url in fetched if url.startswith(server.url)]
    sizes = {path: (device_site / path).stat().st_size for path in set(local) if (device_site / path).is_file()}
    assert {"device_lab/assets/ort/ort-wasm-simd-threaded.wasm", "device_lab/assets/models/ghostnet_050.onnx"} \
        <= set(sizes), sorted(sizes)
    assert not any("100" in p for p in sizes if "/models/" in p), sorted(sizes)  # 0.5x only
    print(f"\npage download: {sum(sizes.values()) / 1e6:.1f} MB in {len(sizes)} files; "
          f"medians {result['medians_ms']}; " + "; ".join(c["sentence"] for c in result["comparisons"].values()))


def _pytorch_logits(files: list[str], site: Path) -> np.ndarray:
    import torch
    from PIL import Image

    from repghost_mini.training import load_reference_model

    model = load_reference_model("cifar10")
    card = model.card
    images = np.stack([np.asarray(Image.open(site / "device_lab" / f).convert("RGB"), dtype=np.float32) / 255
                       for f in files])
    x = (images - np.array(card.mean, dtype=np.float32)) / np.array(card.std, dtype=np.float32)
    with torch.no_grad():
        return model(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()).numpy()


def test_the_reference_model_gives_pytorchs_logits_in_the_browser(browser, server, device_site):
    visit = Visit(browser, server.url + PAGE)
    try:
        visit.wait_for("window.deviceLab && (window.deviceLab.classified || (window.deviceLab.errors || []).length)",
                       60)
        assert not visit.page.evaluate("window.deviceLab.errors")
        logits = np.array(visit.page.evaluate("window.deviceLab.logits"), dtype=np.float64)
        files = visit.page.evaluate("window.deviceLab.imageFiles")
        figures = visit.page.eval_on_selector_all("#dl-classify-results figure", "fs => fs.map(f => f.innerText)")
        loaded = visit.page.eval_on_selector_all("#dl-classify-results img", "is => is.map(i => i.naturalWidth)")
        assert not visit.errors, visit.errors
    finally:
        visit.close()
    manifest = json.loads((device_site / "device_lab/assets/manifest.json").read_text())
    assert len(files) == len(manifest["classifier"]["images"]) == 8 and logits.shape == (8, 10)
    expected = _pytorch_logits(files, device_site)
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)
    assert all(w > 0 for w in loaded) and len(figures) == 8
    for text in figures:  # label and top-3 with probabilities
        assert text.startswith("label: ") and text.count("%") == 3, text


def test_a_missing_model_file_shows_its_error_sentence(browser, device_site, tmp_path):
    planted = tmp_path / "html"
    shutil.copytree(device_site, planted)
    (planted / "device_lab/assets/models/ghostnet_050.onnx").unlink()
    srv = StaticServer(planted)
    try:
        visit = Visit(browser, srv.url + PAGE + "?rounds=2&runs=1&warmup=0")
        try:
            visit.wait_for("window.deviceLab && window.deviceLab.ready", 30)
            visit.page.click("#dl-run")
            visit.wait_for("(window.deviceLab.errors || []).length || window.deviceLab.result", 60)
            message = visit.page.inner_text("#dl-timing-message")
            visible = visit.page.is_visible("#dl-timing-message")
            result = visit.page.evaluate("window.deviceLab.result")
        finally:
            visit.close()
    finally:
        srv.stop()
    assert result is None and visible
    assert "missing from this site" in message and "ghostnet_050.onnx" in message and "HTTP 404" in message, message


def test_opened_as_a_file_the_page_asks_for_a_web_server(browser, device_site):
    context = browser.new_context()
    try:
        page = context.new_page()
        errors = []
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((device_site / PAGE).as_uri(), wait_until="load")
        text = page.inner_text("#dl-timing-message")
    finally:
        context.close()
    assert "must be opened from a web server" in text and "python -m http.server" in text, text
    assert not errors, errors


def test_without_npm_ci_the_docs_build_says_to_run_it(tmp_path):
    """The extension's builder-inited hook, on a docs copy without node_modules, stops with the one sentence (the
    same hook `python -m sphinx` runs; called directly here, which saves a Sphinx start-up)."""
    import importlib.util
    from types import SimpleNamespace

    docs = _copy_docs(tmp_path / "repo", node_modules=False)
    spec = importlib.util.spec_from_file_location("repghost_book_copy", docs / "_ext" / "repghost_book.py")
    extension = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extension)
    app = SimpleNamespace(srcdir=str(docs), builder=SimpleNamespace(format="html"))
    with pytest.raises(SystemExit) as stopped:
        extension.build_device_lab(app)
    assert str(stopped.value).startswith("docs build stopped: ") and NPM_SENTENCE in str(stopped.value)
    assert not (docs / "device_lab" / "_site" / "device_lab" / "assets" / "models").exists()
