"""Run a notebook the way a learner does: JupyterLab in headless Chromium, Run All Cells, look at the page.

`JupyterLab` starts `jupyter lab --no-browser` on a free loopback port with a token over a folder of notebooks
(outputs stripped by `copy_stripped`) and stops it -- kernels and sessions deleted through the REST API, the server
sent SIGTERM -- in `stop()`, which the fixtures call in `finally`. `run_in_browser` opens one notebook in its own
workspace, runs all cells through `window.jupyterapp.commands`, waits from the notebook *model* (not the page) until
every code cell has run or one has failed, and returns a `PageReport` of what the page shows. `committed_expectations`
reads what the committed notebook promises (figures, `RESULT` lines, widgets); `problems` compares the two.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
IMAGE_MIMES = ("image/png", "image/jpeg", "image/svg+xml")
USER_SETTINGS = {  # every cell stays in the DOM; no news or update toasts
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True},
}


def chromium_executable() -> str | None:
    """The system Chromium (Debian's `chromium`), or $REPGHOST_MINI_CHROMIUM; None when there is none."""
    for name in (os.environ.get("REPGHOST_MINI_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def copy_stripped(notebooks: list[Path], dest: Path) -> list[Path]:
    """Copy notebooks into `dest` with every output and execution count removed, so all the page shows is new."""
    dest.mkdir(parents=True, exist_ok=True)
    copies = []
    for path in notebooks:
        nb = json.loads(Path(path).read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
        nb["metadata"].pop("widgets", None)
        copies.append(dest / Path(path).name)
        copies[-1].write_text(json.dumps(nb, indent=1))
    return copies


@dataclass
class Expected:
    """What the committed notebook shows: its figures, its `RESULT` labels, whether it drew widgets (a committed
    widget output, e.g. tqdm's bar in training, means the live page must draw a progress bar widget too)."""
    figures: int
    result_labels: list[str]
    widget_bar: bool


def committed_expectations(path: Path) -> Expected:
    nb = json.loads(Path(path).read_text())
    figures, labels, widgets = 0, [], False
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            figures += any(m in data for m in IMAGE_MIMES)
            widgets |= WIDGET_MIME in data
            text = "".join(out.get("text", "")) + "".join(data.get("text/plain", ""))
            labels += [line.split(":")[0].strip() for line in text.splitlines() if line.startswith("RESULT ")]
    return Expected(figures, labels, widgets)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """`jupyter lab --no-browser` over `root` on 127.0.0.1 with a token; settings, workspaces, runtime under `home`."""

    def __init__(self, root: Path, home: Path, env: dict | None = None):
        self.root, self.home = Path(root), Path(home)
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.seen_pids: set[int] = set()
        self.extra_env = env or {}

    def start(self, timeout: float = 120.0) -> "JupyterLab":
        settings = self.home / "settings"
        for rel, value in USER_SETTINGS.items():
            (settings / rel).parent.mkdir(parents=True, exist_ok=True)
            (settings / rel).write_text(json.dumps(value))
        env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings),
               "JUPYTERLAB_WORKSPACES_DIR": str(self.home / "workspaces"),
               "JUPYTER_RUNTIME_DIR": str(self.home / "runtime"), **self.extra_env}
        env.pop("MPLBACKEND", None)  # figures must come from the kernel's inline backend
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
               f"--ServerApp.root_dir={self.root}", "--ServerApp.allow_root=True",
               "--LabApp.expose_app_in_browser=True", "--LabServerApp.open_browser=False"]
        log = open(self.home / "server.log", "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                self.api("GET", "/api/status")
                return self
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"jupyter lab did not answer on {self.url} within {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self, n: int = 3000) -> str:
        path = self.home / "server.log"
        return path.read_bytes()[-n:].decode(errors="replace") if path.exists() else ""

    def api(self, method: str, path: str):
        req = urllib.request.Request(self.url + path, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def lab_url(self, notebook: str, workspace: str) -> str:
        return f"{self.url}/lab/workspaces/{workspace}/tree/{notebook}?token={self.token}"

    def remember_processes(self) -> None:
        """Record the server's process tree (kernels included) so `stop` can prove all of it is gone."""
        if self.proc and self.proc.poll() is None:
            try:
                server = psutil.Process(self.proc.pid)
                self.seen_pids |= {server.pid} | {p.pid for p in server.children(recursive=True)}
            except psutil.NoSuchProcess:
                pass

    def shutdown_kernels(self) -> None:
        """Delete every session and kernel through the REST API (a timed-out run would otherwise keep training)."""
        self.remember_processes()
        try:
            for s in self.api("GET", "/api/sessions"):
                self.api("DELETE", f"/api/sessions/{s['id']}")
            for k in self.api("GET", "/api/kernels"):
                self.api("DELETE", f"/api/kernels/{k['id']}")
        except OSError:
            pass  # the server is already gone; stop() still kills what is left

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None:
            return
        self.shutdown_kernels()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # background shells ignore SIGINT
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        for p in self.leftovers():
            p.kill()

    def leftovers(self) -> list[psutil.Process]:
        """Processes of this server still alive: its tree as seen while running, or anything using its runtime dir."""
        alive = []
        runtime = str(self.home / "runtime")
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                if p.pid == os.getpid():
                    continue
                if p.pid in self.seen_pids or any(runtime in a for a in (p.info["cmdline"] or [])):
                    if p.status() != psutil.STATUS_ZOMBIE:
                        alive.append(p)
            except psutil.Error:
                pass
        return alive


@dataclass
class PageReport:
    """What the learner's page showed after Run All Cells."""
    notebook: str
    code_cells: int = 0
    executed: int = 0
    errors: list[str] = field(default_factory=list)           # ename: evalue of output_type == "error"
    stderr_tracebacks: list[str] = field(default_factory=list)  # stderr text in the page holding a traceback
    figures: int = 0                                          # rendered images with a non-zero size
    output_text: str = ""
    visible_results: list[str] = field(default_factory=list)   # RESULT lines visible in the page
    widget_bar_seen: bool = False                             # a live ipywidgets progress bar was drawn
    timed_out: bool = False
    seconds: float = 0.0
    screenshot: Path | None = None


def problems(report: PageReport, expected: Expected) -> list[str]:
    """Every way the page falls short of what a learner should see (empty list: all good)."""
    out = []
    if report.timed_out:
        out.append(f"run did not finish in time ({report.seconds:.0f} s)")
    if report.executed != report.code_cells:
        out.append(f"{report.executed} of {report.code_cells} code cells executed")
    out += [f"error output: {e}" for e in report.errors]
    out += [f"traceback on stderr: {t[:300]}" for t in report.stderr_tracebacks]
    if report.figures < expected.figures:
        out.append(f"{report.figures} figures rendered, the committed notebook has {expected.figures}")
    for label in expected.result_labels:
        if not any(line.startswith(label) for line in report.visible_results):
            out.append(f"no visible line starting with {label!r}")
    if expected.widget_bar and not report.widget_bar_seen:
        out.append("no live widget progress bar was drawn (tqdm fell back to text?)")
    return out


_OPEN_JS = """(path) => {  // a plain predicate: wait_for_function takes a returned Promise as true
  const app = window.jupyterapp;
  const panel = app && app.shell.currentWidget;
  if (!panel || !panel.context || panel.context.path !== path) return false;
  if (!panel.context.isReady || !panel.sessionContext.isReady) return false;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel || kernel.status !== 'idle') return false;
  window.__panel = panel;
  window.__widgetBar = 0;
  new MutationObserver(() => {  // tqdm's bar lives one epoch (leave=False): catch it whenever it is drawn
    for (const el of document.querySelectorAll('.jp-OutputArea-output .widget-hprogress .progress')) {
      if (el.getBoundingClientRect().width > 0) window.__widgetBar += 1;
    }
  }).observe(document.body, {childList: true, subtree: true, attributes: true, attributeFilter: ['style']});
  return true;
}"""

_RUN_JS = """() => {
  window.__runAll = null;
  window.jupyterapp.commands.execute('notebook:run-all-cells')
    .then(ok => { window.__runAll = {ok: ok}; }, e => { window.__runAll = {error: String(e)}; });
}"""

_STATE_JS = """() => {  // counted from the notebook model: cells with hidden source show no prompt in the page
  const panel = window.__panel;
  let code = 0, executed = 0, running = 0;
  const errors = [];
  for (const cell of panel.content.model.cells) {
    if (cell.type !== 'code') continue;
    code += 1;
    if (cell.executionCount !== null && cell.executionCount !== undefined) executed += 1;
    if (cell.executionState === 'running') running += 1;
    for (const o of cell.outputs.toJSON()) if (o.output_type === 'error') errors.push(o.ename + ': ' + o.evalue);
  }
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return {code, executed, running, errors, status: kernel ? kernel.status : 'dead', runAll: window.__runAll,
          widgetBar: window.__widgetBar};
}"""

_PAGE_JS = """() => {  // what the page shows
  const outs = Array.from(document.querySelectorAll('.jp-OutputArea-output'));
  const stderr = outs.filter(o => o.dataset.mimeType === 'application/vnd.jupyter.stderr').map(o => o.innerText);
  const images = Array.from(document.querySelectorAll('.jp-OutputArea-output img, .jp-RenderedSVG svg'))
    .filter(el => (el.naturalWidth === undefined || el.naturalWidth > 0) && el.getBoundingClientRect().width > 0);
  const text = outs.filter(o => o.dataset.mimeType !== 'application/vnd.jupyter.stderr').map(o => o.innerText);
  const results = outs.filter(o => o.checkVisibility() && o.getBoundingClientRect().height > 0)
    .flatMap(o => o.innerText.split('\\n')).filter(l => l.startsWith('RESULT '));
  const cells = document.querySelectorAll('.jp-NotebookPanel .jp-Cell');  // scrollHeight has scroll-past-end padding
  const last = cells[cells.length - 1];
  return {stderr, figures: images.length, text: text.join('\\n'), results,
          height: last ? last.offsetTop + last.offsetHeight : document.body.scrollHeight};
}"""


def _take_live_shot(page, path: Path) -> bool:
    """Viewport PNG with the live widget bar scrolled into the middle (the picture the README shows)."""
    found = page.evaluate("""() => {
      const bars = document.querySelectorAll('.jp-OutputArea-output .widget-hprogress');
      if (!bars.length) return false;
      bars[bars.length - 1].scrollIntoView({block: 'center'});
      return true; }""")
    if found:
        page.screenshot(path=str(path))
    return found


def run_in_browser(page, lab: JupyterLab, notebook: str, workspace: str, out_dir: Path,
                   timeout: float = 900.0, poll: float = 0.5) -> PageReport:
    """Open `notebook` (relative to the server root) in `workspace`, Run All Cells, wait, report what is shown."""
    report, t0 = PageReport(notebook), time.monotonic()
    page.goto(lab.lab_url(notebook, workspace), timeout=180_000)  # a loaded machine serves JupyterLab slowly
    page.wait_for_function(_OPEN_JS, arg=notebook, timeout=180_000, polling=500)
    page.evaluate(_RUN_JS)
    live_shot = out_dir / f"{Path(notebook).stem}-live.png"
    while True:
        time.sleep(poll)
        lab.remember_processes()
        state = page.evaluate(_STATE_JS)
        if state["widgetBar"] and not live_shot.exists():
            _take_live_shot(page, live_shot)
        settled = state["runAll"] is not None and state["status"] == "idle" and not state["running"]
        if settled or state["status"] == "dead":
            break
        if time.monotonic() - t0 > timeout:
            report.timed_out = True
            break
    report.seconds = time.monotonic() - t0
    report.code_cells, report.executed, report.errors = state["code"], state["executed"], state["errors"]
    report.widget_bar_seen = bool(state["widgetBar"])
    shown = page.evaluate(_PAGE_JS)
    report.stderr_tracebacks = [t for t in shown["stderr"] if "Traceback" in t]
    report.figures, report.output_text, report.visible_results = shown["figures"], shown["text"], shown["results"]
    report.screenshot = _full_page_screenshot(page, out_dir / f"{Path(notebook).stem}.png", shown["height"])
    return report


def _full_page_screenshot(page, path: Path, notebook_height: int) -> Path:
    """The notebook scrolls inside JupyterLab, so grow the viewport to the notebook's height before the shot."""
    width = page.viewport_size["width"]
    page.set_viewport_size({"width": width, "height": min(max(notebook_height + 200, 800), 16000)})
    page.evaluate("() => document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer').scrollTo(0, 0)")
    page.wait_for_timeout(500)
    page.screenshot(path=str(path), full_page=True)
    return path
