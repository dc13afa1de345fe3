"""nbval on a fresh clone: a notebook whose data set can be neither found nor downloaded is skipped, with the
one-line reason from ``load_dataset``, instead of failing in every cell after the one that loads the data.

The data set a notebook needs is read from its settings cell (``DATASET = "..."``), so this stays in step with
the notebooks. Bad data that *is* found still fails the notebook (only ``FileNotFoundError`` skips).
"""
import json
import re

import pytest

_DATASET = re.compile(r"""^DATASET\s*=\s*["']([\w-]+)["']""", re.MULTILINE)


def _dataset_of(path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    for cell in cells:
        if cell.get("cell_type") == "code":
            found = _DATASET.search("".join(cell.get("source", [])))
            if found:
                return found.group(1)
    return ""


def _why_missing(dataset: str) -> str:
    import repghost_mini as rm

    try:
        rm.load_dataset(dataset, train_per_class=1, test_per_class=1)
    except FileNotFoundError as err:
        return f"data set {dataset!r} is not available: {err}"
    return ""


def pytest_collection_modifyitems(config, items):
    reasons = {}
    for item in items:
        path = item.path
        if path.suffix != ".ipynb":
            continue
        if path not in reasons:
            dataset = _dataset_of(path)
            reasons[path] = _why_missing(dataset) if dataset else ""
        if reasons[path]:
            item.add_marker(pytest.mark.skip(reason=reasons[path]))
