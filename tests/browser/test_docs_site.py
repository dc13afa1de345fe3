"""The notebooks read as a book (issue 24): the Sphinx site built with the README's command, opened page by page.

The site is built once per session, into a temporary folder, with `python -m sphinx -W -b html docs <tmp>` (warnings
are errors), then every page is opened from disk (file://) in headless Chromium with all web requests refused:
no console error, every equation typeset, every image loaded, every local link and anchor resolving, and on a
notebook's page its header (paper, authors' code, "run it yourself"), run stamp, objectives and collapsed solutions
(tests/browser/book.py). A planted broken page proves each check fails, and a small site built from a stamped
notebook proves a run stamp in the committed outputs reaches the page.
"""
import base64
import json
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from .book import (
    ROOT,
    NotebookExpect,
    broken_links,
    build_site,
    check_site,
    notebook_expectations,
    notebook_problems,
    page_problems,
    site_pages,
    view_page,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # slow too: `-m "not slow"` leaves them out

NOTEBOOKS = sorted(ROOT.glob("notebooks/*.ipynb"))


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    pytest.importorskip("sphinx", reason="the docs build needs the docs extra: pip install -e '.[docs]'")
    pytest.importorskip("myst_nb", reason="the docs build needs the docs extra: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("book") / "html"
    code, log, seconds = build_site(out)
    assert code == 0, f"the docs build failed (exit {code}):\n{log[:4000]}"
    print(f"\nsite built in {seconds:.1f} s: {len(site_pages(out))} pages")
    return out, log


def expectations() -> dict:
    return {p.stem: notebook_expectations(p) for p in NOTEBOOKS}


def committed_figures(path: Path) -> int:
    nb = json.loads(path.read_text())
    return sum("image/png" in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", []))


def test_the_readme_command_builds_every_page_without_warnings(site):
    out, log = site
    assert "WARNING" not in log and "ERROR" not in log, log[:4000]
    pages = {p.relative_to(out).as_posix() for p in site_pages(out)}
    groups = ("core", "measure", "training", "deploy", "teaching", "paper")
    wanted = {"index.html", "_generated/README.html", "_generated/data/README.html", "provenance.html",
              "api/index.html"} | {f"api/{g}.html" for g in groups}
    wanted |= {f"_generated/notebooks/{p.stem}.html" for p in NOTEBOOKS}
    assert wanted <= pages, sorted(wanted - pages)
    # the API page documents the whole curated API
    import repghost_mini

    api = (out / "api" / "index.html").read_text()
    undocumented = [n for n in repghost_mini.__all__ if not n.startswith("__") and
                    f'id="repghost_mini.{n}"' not in api and f'id="module-repghost_mini.{n}"' not in api
                    and f'href="{n}.html"' not in api]
    assert not undocumented, undocumented
    # no copy of the offline data's provenance files in the site or the docs
    assert not list(out.rglob("PROVENANCE*")) and not list((ROOT / "docs").rglob("PROVENANCE*"))


def test_every_page_reads_well_offline(browser, site):
    out, _ = site
    views, problems = check_site(browser, out, expectations())
    bad = {page: found for page, found in problems.items() if found}
    assert not bad, json.dumps(bad, indent=1)
    # the checks saw what they check: equations typeset (notebook 03's derivations, the docstrings' LaTeX on the
    # API pages), every committed figure as a loaded image, every solution collapsed
    assert views["_generated/notebooks/03_bn_fusion_proofs.html"].typeset >= 20
    assert views["api/core.html"].typeset >= 3
    for path in NOTEBOOKS:
        view = views[f"_generated/notebooks/{path.stem}.html"]
        assert view.images >= committed_figures(path), path.name
        assert view.collapsed == notebook_expectations(path).collapsed_cells >= 1, path.name
    assert sum(v.math_elements for v in views.values()) == sum(v.math_elements - v.math_untypeset
                                                               for v in views.values())


PLANTED = ('<p>planted: $$\\frac{a}{b}$$</p>'
           '<p><span class="math notranslate">\\sqrt{x}</span></p>'
           '<img src="missing.png" alt="planted">'
           '<a href="no_such_page.html">broken</a> <a href="#no-such-anchor">broken anchor</a>'
           '<a href="../../../../README.md">out of the site</a>'
           '<script>console.error("planted console error")</script>'
           '<script src="https://cdn.example.invalid/planted.js"></script>')


def test_a_planted_broken_page_fails_every_check(browser, site, tmp_path):
    out, _ = site
    planted_site = tmp_path / "html"
    shutil.copytree(out, planted_site)
    page = planted_site / "_generated" / "notebooks" / "03_bn_fusion_proofs.html"
    html = page.read_text()
    html = html.replace("</article>", PLANTED + "</article>", 1)
    html = html.replace("https://arxiv.org/abs/2211.06088", "https://example.invalid/paper")  # no paper link
    html = html.replace("notebooks/03_bn_fusion_proofs.ipynb</span>", "notebooks/elsewhere.ipynb</span>")
    html = html.replace('<details class="admonition hide above-input">',
                        '<details class="admonition hide above-input" open>', 1)  # one solution expanded
    assert html.count(PLANTED) == 1 and " open>" in html
    page.write_text(html)
    expect = NotebookExpect("03_bn_fusion_proofs.ipynb", "RUN STAMP run=planted | cpu=x", 6)

    context = browser.new_context()
    try:
        view = view_page(context, page)
    finally:
        context.close()
    found = page_problems(view) + broken_links(view, page, planted_site, {}) + notebook_problems(view, expect)
    text = "\n".join(found)
    for expected in ["console error: planted console error",
                     "request to the web (the site must work offline): https://cdn.example.invalid/planted.js",
                     "failed to load: file://", "missing.png",
                     "raw TeX in the visible text:", "$$\\frac{a}{b}$$",
                     "raw TeX in the visible text: ...\\sqrt{x}", "1 of ", "equations not typeset by MathJax",
                     "image not loaded (naturalWidth 0): missing.png",
                     "link to a missing file: file://", "no_such_page.html",
                     "link to a missing anchor: file://", "#no-such-anchor",
                     "link out of the site (breaks when the site is moved): file://",
                     "no link to the paper (https://arxiv.org/abs/2211.06088)",
                     "no 'run it yourself' line (jupyter lab notebooks/03_bn_fusion_proofs.ipynb)",
                     "the run stamp of the committed notebook is not shown: RUN STAMP run=planted",
                     "solution shown, not collapsed:",
                     "5 collapsed cells on the page, the notebook has 6"]:
        assert expected in text, f"{expected!r} not reported; found:\n{text}"


def _png(width=40, height=20) -> str:
    rows = b"".join(b"\x00" + bytes([200, 60, 60]) * width for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return base64.b64encode(raw).decode()


STAMP = "RUN STAMP run=20261205T000000Z-abc123 | cpu=Test CPU (AVX2) | cores=2 threads=2 | torch=2.5 | 2026-12-05 UTC"


def stamped_notebook() -> dict:
    def code(source, outputs, **meta):
        return {"cell_type": "code", "id": f"c{len(source)}", "metadata": meta, "execution_count": 1,
                "source": source, "outputs": outputs}

    def stream(text):
        return {"output_type": "stream", "name": "stdout", "text": text}

    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "cells": [
                {"cell_type": "markdown", "id": "m1", "metadata": {},
                 "source": "# 01 · A stamped notebook\n\n**Learning objectives.** "
                           "Read $$\\frac{a}{b} = c$$ and $x^2$."},
                code("print(repghost_mini.teaching.run_stamp())", [stream(STAMP + "\n")]),
                code("plt.plot([0, 1])", [{"output_type": "display_data", "metadata": {},
                                            "data": {"image/png": _png(), "text/plain": "<Figure>"}}]),
                code("solution_answer = 42", [stream("ok\n")], jupyter={"source_hidden": True}),
            ]}


def test_a_run_stamp_in_the_committed_outputs_reaches_the_page(browser, tmp_path):
    """A small site (the real docs/conf.py and extension, one stamped notebook): the stamp shows in the page's
    header and in the cell's output, and the whole page passes every check."""
    pytest.importorskip("myst_nb", reason="the docs build needs the docs extra: pip install -e '.[docs]'")
    repo = tmp_path / "repo"
    docs = repo / "docs"
    docs.mkdir(parents=True)
    shutil.copy(ROOT / "docs" / "conf.py", docs)
    for folder in ("_ext", "_static"):
        shutil.copytree(ROOT / "docs" / folder, docs / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (docs / "index.md").write_text("# Test book\n\n```{toctree}\n:glob:\n\n_generated/notebooks/*\n```\n")
    (repo / "notebooks").mkdir()
    (repo / "notebooks" / "01_stamped.ipynb").write_text(json.dumps(stamped_notebook()))
    out = tmp_path / "build" / "html"
    code, log, _ = build_site(out, docs=docs)
    assert code == 0 and "WARNING" not in log, log[:4000]

    expect = {"01_stamped": NotebookExpect("01_stamped.ipynb", STAMP, 1)}
    views, problems = check_site(browser, out, expect)
    assert not any(problems.values()), problems
    view = views["_generated/notebooks/01_stamped.html"]
    assert view.text.count(STAMP) == 2  # the header and the first cell's output
    assert view.typeset >= 2 and view.images >= 1 and view.collapsed == 1
    assert "solution_answer" not in view.text
