"""Unit checks of the docs build's wiring (these run in the plain `python -m pytest tests`, no Sphinx or browser).

The README shows the one docs command and CI runs it before the browser suite; the `docs` extra names what it
needs; the book's Sphinx extension (docs/_ext/repghost_book.py) turns the docstrings' LaTeX into reST maths, tags
collapsed notebook cells for myst-nb and puts the header with the run stamp on a notebook's page.
"""
import importlib.util
import json
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
DOCS_BUILD = "python -m sphinx -W -b html docs docs/_build/html"
BROWSER = 'python -m pytest -m "browser and not long_notebook"'  # CI's browser run


def book():
    spec = importlib.util.spec_from_file_location("repghost_book", ROOT / "docs" / "_ext" / "repghost_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_shows_and_ci_runs_the_docs_build_before_the_browser_suite():
    readme, ci = (ROOT / "README.md").read_text(), (ROOT / ".ci" / "run").read_text()
    assert DOCS_BUILD in readme, f"README does not show {DOCS_BUILD!r}"
    assert '".[docs]"' in readme and '".[docs]"' in ci
    assert DOCS_BUILD in ci and ci.index(DOCS_BUILD) < ci.index(BROWSER)


def test_docs_extra_names_the_offline_toolchain():
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["docs"]
    names = {spec.split(">")[0].split("=")[0] for spec in extra}
    assert names == {"sphinx", "myst-nb", "sphinx-book-theme", "sphinx-mathjax-offline"}
    assert all(">=" in spec for spec in extra)
    assert {"docs/_build/", "docs/_generated/"} <= set((ROOT / ".gitignore").read_text().splitlines())


def test_docstring_latex_becomes_rest_maths_outside_literals():
    convert = book().latex_to_rest
    lines = ["BN in eval mode is affine per channel $c$:", "", "$$\\mathrm{BN}(z)_c = \\gamma_c z_c + \\beta_c .$$",
             "", "Set ``$REPGHOST_MINI_DATA`` or ``a $x$ b``; the largest |INT8 logit - fp32 logit|."]
    out = convert(lines)
    assert out[0] == "BN in eval mode is affine per channel :math:`c`:"
    assert ".. math::" in out and "   \\mathrm{BN}(z)_c = \\gamma_c z_c + \\beta_c ." in out
    assert out[-1] == "Set ``$REPGHOST_MINI_DATA`` or ``a $x$ b``; the largest \\|INT8 logit - fp32 logit\\|."
    two_lines = convert(["    $$W'_c = \\frac{a}{b}, \\qquad", "      b'_c = 0.$$", "    next"])
    assert two_lines[:4] == ["    .. math::", "", "       W'_c = \\frac{a}{b}, \\qquad", "       b'_c = 0."]
    assert two_lines[-1] == "    next"
    table = ["+---+---+", "| a | b |"]
    assert convert(table) == table


def test_notebook_page_gets_header_stamp_and_collapsed_solutions():
    ext = book()
    stamp = "RUN STAMP run=r1 | cpu=c | cores=2 threads=2 | torch=2 | 2026-12-05 00:00 UTC"
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# 03 · Title\n\n**Learning objectives.** ..."},
        {"cell_type": "code", "metadata": {}, "source": "stamp()", "outputs": [
            {"output_type": "stream", "name": "stdout", "text": stamp + "\n"}]},
        {"cell_type": "code", "metadata": {"jupyter": {"source_hidden": True}}, "source": "solution_x = 1",
         "outputs": []}]}
    page = ext.notebook_for_page("03_x.ipynb", json.loads(json.dumps(nb)))
    title, header, intro = page["cells"][:3]
    assert title["source"] == "# 03 · Title" and intro["source"].strip().startswith("**Learning objectives.**")
    for text in (ext.PAPER, ext.AUTHORS_CODE, "jupyter lab notebooks/03_x.ipynb", f"`{stamp}`"):
        assert text in header["source"], text
    assert page["cells"][-1]["metadata"]["tags"] == ["hide-input"]
    unstamped = ext.notebook_for_page("03_x.ipynb", {"cells": nb["cells"][:1]})
    assert "none in the committed outputs" in unstamped["cells"][1]["source"]


def test_docstring_simple_tables_are_redrawn_to_fit_their_cells():
    ext = book()
    table = ["==  ====  =====", " a  b     c", "==  ====  =====",
             " x  :class:`LongerThanItsColumn`  $y$ and  more", "==  ====  =====", ""]
    out = ext.relayout_simple_tables(ext.latex_to_rest(table))
    assert out[0] == "=  " + "=" * len(":class:`LongerThanItsColumn`") + "  " + "=" * len(":math:`y` and  more")
    assert out[0] == out[2] == out[4]
    assert out[3] == "x  :class:`LongerThanItsColumn`  :math:`y` and  more"
    assert out[1].split() == ["a", "b", "c"] and out[5] == ""


def test_every_file_of_every_group_has_its_section_on_the_api_pages():
    import pkgutil

    import repghost_mini

    for group in ("core", "measure", "training", "deploy", "teaching"):
        page = (ROOT / "docs" / "api" / f"{group}.rst").read_text()
        files = [name for _, name, _ in pkgutil.iter_modules(getattr(repghost_mini, group).__path__)]
        missing = [f for f in files if f".. automodule:: repghost_mini.{group}.{f}\n" not in page]
        assert not missing, f"docs/api/{group}.rst has no section for {missing}"
    index = (ROOT / "docs" / "api" / "index.rst").read_text()
    assert ".. automodule:: repghost_mini\n   :members:" in index
    assert all(f"   {g}\n" in index for g in ("core", "measure", "training", "deploy", "teaching", "paper"))
