"""Sphinx configuration of the repghost_mini book: README, the notebooks, the API and the data pages.

Build (offline, warnings are errors), from the repository root:

    python -m sphinx -W -b html docs docs/_build/html

The notebooks are rendered from their committed outputs and never executed here (``nb_execution_mode = "off"``).
Sphinx reads only files under ``docs/``, so ``_ext/repghost_book.py`` copies README.md, data/README.md,
notebooks/*.ipynb, the benchmark result tables and the images README shows into ``docs/_generated/`` (gitignored,
same relative layout, so README's links work unchanged) before reading; nothing is edited in the originals.
"""
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

project = "repghost_mini"
author = "repghost_mini contributors"
copyright = "repghost_mini contributors; RepGhost: Chen et al. 2022"

extensions = [
    "myst_nb",                  # Markdown (MyST) + notebooks; brings myst_parser
    "sphinx.ext.autodoc",
    "sphinx-mathjax-offline",   # MathJax 3 copied into _static: no CDN at view time
    "repghost_book",            # docs/_ext: sources copied in, notebook headers, collapsed solutions, docstring LaTeX
]

root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints",
                    # the device page's npm packages and built files (_ext/repghost_book.py adds the latter to
                    # html_extra_path): not pages
                    "device_lab/node_modules", "device_lab/_site",
                    # the ledger and the guide are read as _generated/docs/... (copied like README), so that the
                    # links to them (README, notebooks) and from them resolve on the site as in the repository
                    "ledger.md", "guide.md"]

# --- MyST / notebooks --------------------------------------------------------------------------------------------
nb_execution_mode = "off"                     # render the committed outputs; the docs build never runs a notebook
nb_ipywidgets_js = {}                         # no require.js / widget manager from a CDN: a widget output (tqdm's
                                              # bar, gone after the run in JupyterLab too) is not drawn
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3                      # README's [Data](#data) and similar links resolve
nb_merge_streams = True
suppress_warnings = [
    # Notebook 01 opens its "Before you start" box with an H3 right under the H1 title (a choice of the notebook,
    # which renders fine); MyST reports the skipped level. Remove this line once no notebook skips a level.
    "myst.header",
]

# --- API pages ------------------------------------------------------------------------------------------------
autodoc_member_order = "bysource"            # with __all__: the curated order (concepts, then verbs)
autodoc_default_options = {}                 # :members: where a page asks for them
autodoc_inherit_docstrings = False          # forward() without its own docstring is not shown with torch's text
autodoc_typehints = "signature"
add_module_names = False
nitpicky = False

# --- Maths: MathJax 3 from _static (sphinx-mathjax-offline), typesetting only what Sphinx marked as maths ----------
# Sphinx writes every equation as \(...\) or \[...\] in a .math element; without $$ as a delimiter, a stray
# "$$...$$" that escaped the conversion stays visible as raw TeX (and the browser test reports it) instead of
# being typeset by accident on some pages and not on others.
mathjax3_config = {"tex": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]]}}

# --- HTML -----------------------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "repghost_mini: RepGhost, read as a book"
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_theme_options = {
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "navigation_with_keys": False,
}
html_context = {"default_mode": "auto"}  # else a first visit logs "Got invalid theme mode" to the console
html_last_updated_fmt = None
