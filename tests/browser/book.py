"""Read the rendered book the way a reader does: every page of the built site opened from disk in headless Chromium.

`build_site` runs the README's docs command (`python -m sphinx -W -b html docs <out>`) and returns what it printed.
`check_site` opens each page over file:// with every request that is not a local file refused and recorded (the site
must work offline), lets MathJax finish, and reports what a reader would see wrong: console errors, a page script
that throws, a resource that failed to load, a request to the web, maths left as raw TeX (`$$`, `\\frac`, `\\(`) in
the visible text or not typeset by MathJax, an image that did not load (naturalWidth 0), a link to a local file or
anchor that does not exist. On a notebook's page it also checks the header (paper and authors' code links, the
"run it yourself" command), the run stamp when the committed notebook has one, the learning objectives, and that
every cell whose source is collapsed in JupyterLab (the exercise solutions) is behind a closed toggle.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

ROOT = Path(__file__).resolve().parents[2]
BUILD_COMMAND = "python -m sphinx -W -b html docs docs/_build/html"  # the README's command
PAPER = "https://arxiv.org/abs/2211.06088"
AUTHORS_CODE = "https://github.com/ChengpengChen/RepGhost"
NOTEBOOK_PAGES = "_generated/notebooks"
RAW_TEX = ("$$", "\\frac", "\\(", "\\)", "\\[", "\\begin{", "\\mathrm", "\\sqrt")


def build_site(out: Path, docs: Path = ROOT / "docs", timeout: float = 600) -> tuple[int, str, float]:
    """The README's build command with `out` as the output folder (doctrees beside it): (exit code, stderr +
    stdout, seconds)."""
    cmd = [sys.executable, "-m", "sphinx", "-W", "-b", "html", "-d", str(Path(out).parent / "doctrees"),
           str(docs), str(out)]
    t0 = time.monotonic()
    run = subprocess.run(cmd, cwd=Path(docs).parent, capture_output=True, text=True, timeout=timeout)
    return run.returncode, run.stderr + run.stdout[-1500:], time.monotonic() - t0  # warnings (stderr) first


def site_pages(site: Path) -> list[Path]:
    """Every page of the site (the theme's template fragments under _static are not pages)."""
    return sorted(p for p in Path(site).rglob("*.html") if "_static" not in p.relative_to(site).parts)


@dataclass
class NotebookExpect:
    """What a notebook's page must show, read from the committed notebook."""
    name: str               # e.g. 03_bn_fusion_proofs.ipynb
    stamp: str              # its RUN STAMP line ("" when the committed outputs have none)
    collapsed_cells: int    # cells with metadata.jupyter.source_hidden (the exercise solutions)


def notebook_expectations(path: Path) -> NotebookExpect:
    nb = json.loads(Path(path).read_text())
    text = "\n".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", [])
                     if o.get("output_type") == "stream").splitlines()
    stamp = next((line for line in text if line.startswith("RUN STAMP ")), "")
    hidden = sum(bool(c.get("metadata", {}).get("jupyter", {}).get("source_hidden")) for c in nb["cells"])
    return NotebookExpect(Path(path).name, stamp, hidden)


@dataclass
class PageView:
    """What one page showed in the browser."""
    page: str
    console_errors: list[str] = field(default_factory=list)
    web_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    raw_tex: list[str] = field(default_factory=list)          # visible text outside code holding raw TeX
    math_elements: int = 0                                    # Sphinx's .math spans/divs
    math_untypeset: int = 0                                   # .math elements without an mjx-container inside
    math_errors: list[str] = field(default_factory=list)      # MathJax's mjx-merror
    typeset: int = 0                                          # mjx-container elements
    images: int = 0
    broken_images: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)            # absolute hrefs of every <a>
    ids: list[str] = field(default_factory=list)
    text: str = ""                                            # the visible text
    collapsed: int = 0                                        # hide-input cells whose source is behind a closed toggle
    expanded: list[str] = field(default_factory=list)         # hide-input cells whose source shows


_PAGE_JS = r"""async (rawTex) => {
  // MathJax typesets after load: wait for its first pass (pages without maths do not load it)
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const imgs = Array.from(document.images);
  for (const img of imgs) { img.loading = 'eager'; }
  await Promise.all(imgs.map(img => img.decode().catch(() => null)));
  const broken = imgs.filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.getAttribute('src'));
  // visible text outside code, scripts and typeset maths
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const raw = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || el.closest(skip) || !el.checkVisibility()) continue;
    const t = node.textContent;
    for (const tok of rawTex) {
      const i = t.indexOf(tok);
      if (i >= 0) { raw.push(t.slice(Math.max(0, i - 40), i + 60).replace(/\s+/g, ' ')); break; }
    }
  }
  const maths = Array.from(document.querySelectorAll('.math'));
  const untypeset = maths.filter(m => !m.querySelector('mjx-container')).length;
  const merrors = Array.from(document.querySelectorAll('mjx-merror')).map(e => e.textContent.slice(0, 100));
  const cells = Array.from(document.querySelectorAll('.cell.tag_hide-input'));
  let collapsed = 0; const expanded = [];
  for (const cell of cells) {
    const input = cell.querySelector('.cell_input');
    const details = input && input.closest('details');
    if (input && details && !details.open && !input.checkVisibility()) collapsed += 1;
    else expanded.push((input ? input.innerText : cell.innerText).slice(0, 80));
  }
  const links = Array.from(document.querySelectorAll('a[href]')).map(a => a.href);
  const ids = Array.from(document.querySelectorAll('[id], a[name]')).map(e => e.id || e.getAttribute('name'));
  return {broken, images: imgs.length, raw, maths: maths.length, untypeset, merrors,
          typeset: document.querySelectorAll('mjx-container').length, collapsed, expanded, links, ids,
          text: document.body.innerText};
}"""


def view_page(context, path: Path) -> PageView:
    """Open `path` over file:// in a fresh page of `context` and report what it showed."""
    view = PageView(path.name)
    page = context.new_page()

    def route(r):
        url = r.request.url
        if url.startswith("file://"):
            r.continue_()
        else:  # the site must not reach the web at view time
            view.web_requests.append(url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and view.console_errors.append(m.text))
    page.on("pageerror", lambda e: view.console_errors.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: r.url.startswith("file://") and
            view.failed_requests.append(f"{r.url} ({r.failure})"))
    try:
        page.goto(path.resolve().as_uri(), wait_until="load", timeout=60_000)
        shown = page.evaluate(_PAGE_JS, list(RAW_TEX))
    finally:
        page.close()
    view.raw_tex, view.math_elements, view.math_untypeset = shown["raw"], shown["maths"], shown["untypeset"]
    view.math_errors, view.typeset = shown["merrors"], shown["typeset"]
    view.images, view.broken_images = shown["images"], shown["broken"]
    view.links, view.ids, view.text = shown["links"], shown["ids"], shown["text"]
    view.collapsed, view.expanded = shown["collapsed"], shown["expanded"]
    return view


_IDS = re.compile(r"""\b(?:id|name)\s*=\s*["']([^"']+)["']""")


def broken_links(view: PageView, page_path: Path, site: Path, ids_of: dict) -> list[str]:
    """Local hrefs of the page that leave the site, whose file does not exist, or whose #anchor is not an id of
    the target."""
    out = []
    for href in view.links:
        if not href.startswith("file://"):
            continue  # http(s) links point off the site (the paper, the authors' code): not followed offline
        url, frag = urldefrag(href)
        target = Path(unquote(urlparse(url).path))
        if Path(site).resolve() not in target.resolve().parents:
            out.append(f"link out of the site (breaks when the site is moved): {href}")
            continue
        if not target.exists():
            out.append(f"link to a missing file: {href}")
            continue
        if frag and target.suffix == ".html":
            if target.resolve() == page_path.resolve():
                ids = set(view.ids)
            else:
                if target not in ids_of:
                    ids_of[target] = set(_IDS.findall(target.read_text(errors="replace")))
                ids = ids_of[target]
            if unquote(frag) not in ids:
                out.append(f"link to a missing anchor: {href}")
    return out


def page_problems(view: PageView) -> list[str]:
    """Everything wrong with one page that holds for every page of the site."""
    out = [f"console error: {e[:200]}" for e in view.console_errors]
    out += [f"request to the web (the site must work offline): {u}" for u in view.web_requests]
    out += [f"failed to load: {u}" for u in view.failed_requests]
    out += [f"raw TeX in the visible text: ...{t}..." for t in view.raw_tex]
    if view.math_untypeset:
        out.append(f"{view.math_untypeset} of {view.math_elements} equations not typeset by MathJax")
    out += [f"MathJax error: {e}" for e in view.math_errors]
    out += [f"image not loaded (naturalWidth 0): {src}" for src in view.broken_images]
    return out


def notebook_problems(view: PageView, expect: NotebookExpect) -> list[str]:
    """What a notebook's page must show beyond any page: header, run stamp, objectives, collapsed solutions."""
    out = []
    for url, what in ((PAPER, "the paper"), (AUTHORS_CODE, "the authors' code")):
        if url not in view.links:
            out.append(f"no link to {what} ({url})")
    if f"jupyter lab notebooks/{expect.name}" not in view.text:
        out.append(f"no 'run it yourself' line (jupyter lab notebooks/{expect.name})")
    if expect.stamp and expect.stamp not in view.text:
        out.append(f"the run stamp of the committed notebook is not shown: {expect.stamp}")
    if not expect.stamp and "Run stamp:" not in view.text:
        out.append("no 'Run stamp:' line in the header")
    if "objectives" not in view.text.lower():
        out.append("no learning objectives shown")
    if view.expanded:
        out += [f"solution shown, not collapsed: {t!r}" for t in view.expanded]
    if view.collapsed != expect.collapsed_cells:
        out.append(f"{view.collapsed} collapsed cells on the page, the notebook has {expect.collapsed_cells}")
    return out


def check_site(browser, site: Path, notebooks: dict[str, NotebookExpect]) -> tuple[dict, dict]:
    """({page: PageView}, {page: its problems}) for every page of the site, pages relative to it (an empty list:
    all good). `notebooks` maps a notebook page's stem (03_bn_fusion_proofs) to what it must show; a notebook
    page without an expectation, and an expectation without a page, are problems."""
    site = Path(site)
    views, found, ids_of = {}, {}, {}
    for path in site_pages(site):
        rel = path.relative_to(site).as_posix()
        context = browser.new_context(viewport={"width": 1280, "height": 900})  # each page as a first visit
        try:
            views[rel] = view = view_page(context, path)
        finally:
            context.close()
        problems = page_problems(view) + broken_links(view, path, site, ids_of)
        if rel.startswith(NOTEBOOK_PAGES + "/"):
            expect = notebooks.get(path.stem)
            problems += notebook_problems(view, expect) if expect else ["a notebook page with no notebook"]
        found[rel] = problems
    missing = set(notebooks) - {Path(p).stem for p in found if p.startswith(NOTEBOOK_PAGES + "/")}
    for stem in sorted(missing):
        found[f"{NOTEBOOK_PAGES}/{stem}.html"] = ["the notebook has no page"]
    return views, found


def screenshot(browser, page_path: Path, out: Path, selector: str, text: str, width: int = 1200,
               height: int = 760, offset: int = 90) -> Path:
    """A viewport PNG of `page_path`, typeset by MathJax, scrolled so that the first `selector` element whose text
    contains `text` sits `offset` px below the top, or, when it holds a figure (a notebook cell's output image),
    so that the figure is in the middle."""
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.goto(Path(page_path).resolve().as_uri(), wait_until="load")
        page.evaluate(_PAGE_JS, list(RAW_TEX))
        found = page.evaluate("""([selector, text, offset]) => {
          const el = Array.from(document.querySelectorAll(selector)).find(e => e.innerText.includes(text));
          if (!el) return false;
          const img = el.querySelector('.cell_output img');  // a figure: centre it, its code above
          const box = (img || el).getBoundingClientRect();
          const top = img ? box.top + box.height / 2 - window.innerHeight / 2 : box.top - offset;
          window.scrollTo(0, top + window.scrollY);
          return true; }""", [selector, text, offset])
        if not found:
            raise ValueError(f"no {selector} containing {text!r} on {page_path}")
        page.wait_for_timeout(300)
        page.screenshot(path=str(out))
    finally:
        context.close()
    return Path(out)
