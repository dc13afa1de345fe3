"""The repghost_mini book's own Sphinx extension: everything the site needs that configuration alone cannot say.

1. ``config-inited``: copy the pages that live outside ``docs/`` (README.md, data/README.md, notebooks/*.ipynb,
   benchmarks/results/**/*.md, the images README shows) into ``docs/_generated/`` in the same relative layout, so
   README's links (``notebooks/01_concat_cost.ipynb``, ``docs/jupyterlab_training.png``, ``#data``) resolve as they
   do on a code host. Files are rewritten only when their bytes changed (incremental builds stay incremental) and
   copies whose original is gone are deleted. The offline data's PROVENANCE.md files are never copied (they are
   not part of the repository); ``provenance.md`` summarises them.
2. ``source-read`` of a notebook page (the page only; the copy and the ``_sources`` download stay as committed):
   a header under the title with the paper and the authors' code, the "run it yourself" command and the notebook's
   run stamp (or a note that its committed outputs have none); cells whose source is collapsed in JupyterLab
   (``metadata.jupyter.source_hidden``, the exercise solutions) get myst-nb's ``hide-input`` tag, so their code is
   behind a closed toggle on the page as in JupyterLab, and ``outputs_hidden`` maps to ``hide-output``.
3. ``autodoc-process-docstring``: the library's docstrings are reST with LaTeX between ``$...$`` / ``$$...$$``
   (labml style); outside double-backtick literals these become ``:math:`` roles and ``.. math::`` blocks, so
   MathJax typesets them, and an absolute value ``|a - b|`` is escaped (reST would read a substitution). The
   docstrings themselves are not edited.
4. ``autodoc-skip-member``: each object is documented once; a group page (api/core, ...) leaves out the names
   the top-level page (``repghost_mini.__all__``) documents.
5. The page "Time it on your device" (``docs/device_lab/``): ``config-inited`` adds the folder its files are built
   into (``device_lab/_site``, gitignored) to ``html_extra_path``; ``builder-inited`` (HTML builders) runs
   ``device_lab/build_assets.py`` (onnxruntime-web's WASM files from ``node_modules``, the ONNX models, images and
   manifest, re-exported only when their sources changed). Without ``npm ci --prefix docs/device_lab`` the build
   stops with one sentence saying so. A docs folder without ``device_lab/`` builds as before.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

PAPER = "https://arxiv.org/abs/2211.06088"
AUTHORS_CODE = "https://github.com/ChengpengChen/RepGhost"
GENERATED = "_generated"
#: repository files the site renders, relative to the repository root (globs)
SOURCES = ("README.md", "data/README.md", "notebooks/*.ipynb", "benchmarks/results/**/*.md", "docs/*.png",
           "docs/ledger.md", "docs/guide.md")
NOTEBOOK_DOCS = GENERATED + "/notebooks/"


# --- 1. sources ---------------------------------------------------------------------------------------------------
def repository_root(srcdir: Path) -> Path:
    return Path(srcdir).resolve().parent


def sync_sources(app, config) -> None:
    srcdir = Path(app.srcdir)
    root, dest = repository_root(srcdir), srcdir / GENERATED
    wanted = {}
    for pattern in SOURCES:
        for path in sorted(root.glob(pattern)):
            if path.is_file() and dest not in path.parents:
                wanted[path.relative_to(root)] = path
    for rel, path in wanted.items():
        target = dest / rel
        data = path.read_bytes()
        if not target.is_file() or target.read_bytes() != data:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    if dest.is_dir():
        for target in sorted(dest.rglob("*"), reverse=True):
            if target.is_file() and target.relative_to(dest) not in wanted:
                target.unlink()
            elif target.is_dir() and not any(target.iterdir()):
                target.rmdir()


# --- 2. notebook pages --------------------------------------------------------------------------------------------
def stamp_lines(nb: dict) -> dict:
    """The notebook's ``RUN STAMP`` and ``NOTEBOOK TIME`` lines from its stream outputs ("" where none), as
    ``repghost_mini.teaching.committed_stamps`` reads them."""
    text = "\n".join("".join(out.get("text", "")) for cell in nb.get("cells", []) for out in cell.get("outputs", [])
                     if out.get("output_type") == "stream").splitlines()
    return {key: next((line for line in text if line.startswith(prefix)), "")
            for key, prefix in (("stamp", "RUN STAMP "), ("time", "NOTEBOOK TIME "))}


def header_markdown(name: str, nb: dict) -> str:
    lines = stamp_lines(nb)
    if lines["stamp"]:
        stamp = f"`{lines['stamp']}`" + (f" · `{lines['time']}`" if lines["time"] else "")
    else:
        stamp = ("*none in the committed outputs* (the notebooks are stamped when they are all executed "
                 "together: `python -m repghost_mini notebooks --execute`)")
    return "\n".join([
        "```{admonition} About this page",
        ":class: note nb-header",
        "",
        f"**Paper:** Chen et al., *RepGhost: A Hardware-Efficient Ghost Module via Re-parameterization*, "
        f"[arXiv 2211.06088]({PAPER}) · **authors' code:** [github.com/ChengpengChen/RepGhost]({AUTHORS_CODE})",
        "",
        f"**Run it yourself:** `jupyter lab notebooks/{name}` (from a clone, after `pip install -e \".[dev]\"`; "
        "this page shows the committed outputs, never re-executed by the docs build)",
        "",
        f"**Run stamp:** {stamp}",
        "```",
    ])


def notebook_for_page(name: str, nb: dict) -> dict:
    """The notebook as the page shows it: a header cell under the title, collapsed cells tagged for myst-nb."""
    cells = nb.get("cells", [])
    for cell in cells:
        hidden = cell.get("metadata", {}).get("jupyter", {})
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if hidden.get("source_hidden") and "hide-input" not in tags:
            tags.append("hide-input")
        if hidden.get("outputs_hidden") and "hide-output" not in tags:
            tags.append("hide-output")
    header = {"cell_type": "markdown", "id": "repghost-book-header", "metadata": {},
              "source": header_markdown(name, nb)}
    first = cells[0] if cells else None
    if first and first["cell_type"] == "markdown":
        source = "".join(first["source"])
        title, _, rest = source.partition("\n")
        if title.startswith("# "):  # header right under the title; the objectives follow in the rest of the cell
            first["source"] = title
            rest_cell = {"cell_type": "markdown", "id": "repghost-book-intro", "metadata": dict(first["metadata"]),
                         "source": rest}
            nb["cells"] = [first, header, rest_cell] + cells[1:]
            return nb
    nb["cells"] = [header] + cells
    return nb


def on_source_read(app, docname: str, source: list) -> None:
    if docname.startswith(NOTEBOOK_DOCS) and source[0].lstrip().startswith("{"):
        name = docname[len(NOTEBOOK_DOCS):] + ".ipynb"
        source[0] = json.dumps(notebook_for_page(name, json.loads(source[0])))
    elif docname.startswith(GENERATED + "/") and not re.match(r"\s*# ", source[0]):
        # a generated table (benchmarks/results/*.md) starts without a heading: its path is its title
        source[0] = f"# `{docname[len(GENERATED) + 1:]}.md`\n\n" + source[0]


# --- 3. LaTeX in docstrings ---------------------------------------------------------------------------------------
_LITERAL = re.compile(r"(``.+?``)", re.S)
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE = re.compile(r"(?<![\w$\\])\$(?=\S)([^$\n]+?)(?<=\S)\$(?![\w$])")


def _math_outside_literals(text: str, display) -> str:
    parts = _LITERAL.split(text)
    return "".join(part if i % 2 else display(part) for i, part in enumerate(parts))


def latex_to_rest(lines: list[str]) -> list[str]:
    """``$$...$$`` -> a ``.. math::`` block at the indentation of its line; ``$...$`` -> ``:math:`...```."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        start = line.find("$$")
        if start >= 0 and "``" not in line[:start]:
            block = [line]
            while "$$" not in "\n".join(block)[start + 2:] and i + 1 < len(lines):
                i += 1
                block.append(lines[i])
            joined = "\n".join(block)
            match = _DISPLAY.search(joined)
            if match:
                indent = " " * (len(line) - len(line.lstrip()))
                before, after = joined[:match.start()].strip(), joined[match.end():].strip()
                if before:
                    out += [indent + _inline(before), ""]
                out += [indent + ".. math::", ""]
                out += [indent + "   " + part.strip() for part in match.group(1).strip().splitlines()]
                out += [""]
                if after and after not in ".,;:":
                    out += [indent + _inline(after)]
                i += 1
                continue
        out.append(_inline(line))
        i += 1
    return out


_PIPES = re.compile(r"(?<![\w\\|])\|(?=\S)([^|\n`]+?)(?<=\S)\|(?![\w|])")


def _plain(text: str) -> str:
    """Text outside literals and maths: ``$x$`` -> ``:math:`x```; ``|a - b|`` (an absolute value, not a
    substitution: the docstrings define none) -> escaped bars."""
    pieces = re.split(r"(:math:`[^`]*`)", _INLINE.sub(lambda m: f":math:`{m.group(1)}`", text))
    return "".join(p if i % 2 else _PIPES.sub(lambda m: f"\\|{m.group(1)}\\|", p) for i, p in enumerate(pieces))


def _inline(text: str) -> str:
    if text.lstrip().startswith(("|", "+")):  # a line block or a grid table row: bars are syntax there
        return text
    return _math_outside_literals(text, _plain)


def skip_top_level_on_group_pages(app, what, name, obj, skip, options):
    """Each object is documented once: a group page (api/core, ...) leaves out what the top-level API page
    (api/index, ``repghost_mini.__all__``) documents, and says so in its introduction."""
    import repghost_mini

    if what == "module" and app.env.docname != "api/index" and name in repghost_mini.__all__ \
            and getattr(repghost_mini, name, None) is obj:
        return True
    return None


_BORDER = re.compile(r"^(\s*)(=+(?: +=+)+)\s*$")


def relayout_simple_tables(lines: list[str]) -> list[str]:
    """Re-draw every reST simple table (``====  ====`` borders) to the width of its cells. Cells are the parts of a
    row between runs of two or more spaces (the last column takes the rest of the line). Needed because
    ``:math:`...``` is longer than ``$...$``, which would push a cell across its column's border, and because a
    cell written wider than its border ("Malformed table") renders correctly once the border follows it."""
    out, i = [], 0
    while i < len(lines):
        top = _BORDER.match(lines[i])
        if not top:
            out.append(lines[i])
            i += 1
            continue
        indent, ncols = top.group(1), len(top.group(2).split())
        starts = [m.start() for m in re.finditer(r"=+", lines[i])]
        block, borders, j = [lines[i]], 1, i + 1
        while j < len(lines):  # a simple table: top border, rows, [separator, rows], bottom border + blank/end
            block.append(lines[j])
            if _BORDER.match(lines[j]):
                borders += 1
                if j + 1 == len(lines) or not lines[j + 1].strip() or borders == 3:
                    break
            j += 1
        rows = []
        for line in block:
            if _BORDER.match(line):
                rows.append(None)
            elif not line.strip():
                rows.append([])
            else:
                lead = len(line) - len(line.lstrip())  # a row may start in a later column (a continuation)
                first = sum(start <= lead for start in starts[1:])
                cells = re.split(r"\s{2,}", line.strip(), maxsplit=ncols - 1 - first)
                rows.append([""] * first + cells + [""] * (ncols - first - len(cells)))
        widths = [max([len(r[k]) for r in rows if r] + [1]) for k in range(ncols)]
        for row in rows:
            if row is None:
                out.append(indent + "  ".join("=" * w for w in widths))
            elif not row:
                out.append("")
            else:
                out.append((indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))).rstrip())
        i = j + 1
    return out


def on_docstring(app, what, name, obj, options, lines: list[str]) -> None:
    lines[:] = relayout_simple_tables(latex_to_rest(lines))


# --- 5. the device page -------------------------------------------------------------------------------------------
DEVICE_LAB = "device_lab"
DEVICE_LAB_SITE = DEVICE_LAB + "/_site"   # relative to docs/: what build_assets.py writes, copied into the site


def _device_lab_script(srcdir) -> Path:
    return Path(srcdir) / DEVICE_LAB / "build_assets.py"


def add_device_lab_extra_path(app, config) -> None:
    """Copy the device page's built files into the site (before Sphinx checks that html_extra_path exists)."""
    if _device_lab_script(app.srcdir).is_file():
        (Path(app.srcdir) / DEVICE_LAB_SITE).mkdir(parents=True, exist_ok=True)
        if DEVICE_LAB_SITE not in config.html_extra_path:
            config.html_extra_path = list(config.html_extra_path) + [DEVICE_LAB_SITE]


def build_device_lab(app) -> None:
    """Run device_lab/build_assets.py for an HTML build; a problem stops the build with its one sentence (a
    SystemExit: Sphinx would wrap an ExtensionError in a traceback and ask to report a bug in Sphinx)."""
    script = _device_lab_script(app.srcdir)
    if app.builder.format != "html" or not script.is_file():
        return
    import importlib.util

    from sphinx.util import logging

    spec = importlib.util.spec_from_file_location("repghost_device_lab_assets", script)
    assets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(assets)
    log = logging.getLogger(__name__)
    try:
        assets.build(Path(app.srcdir) / DEVICE_LAB_SITE, log=log.info)
    except assets.AssetError as err:
        raise SystemExit(f"docs build stopped: {err}") from None


def setup(app):
    app.connect("config-inited", sync_sources)
    app.connect("config-inited", add_device_lab_extra_path)
    app.connect("builder-inited", build_device_lab)
    app.connect("source-read", on_source_read)
    app.connect("autodoc-process-docstring", on_docstring)
    app.connect("autodoc-skip-member", skip_top_level_on_group_pages)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
