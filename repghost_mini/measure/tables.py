"""The one table formatter: GitHub Markdown tables for reports, benchmarks and the command line."""
from __future__ import annotations

from numbers import Number
from typing import Any, List, Mapping, Optional, Sequence, Union

from ..errors import UserError

__all__ = ["markdown_table"]

Columns = Union[Sequence[str], Mapping[str, str]]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def markdown_table(rows: Sequence[Union[Mapping[str, Any], Sequence[Any]]], columns: Optional[Columns] = None,
                   align: Optional[str] = None) -> str:
    """A GitHub Markdown table.

    ``rows`` are dicts (e.g. :func:`repghost_mini.deploy.benchmark_models` rows) or sequences of cells. For dicts,
    ``columns`` picks the keys to show (a ``{key: title}`` mapping renames them; default: every key whose value
    is not a list, titles with ``_ms`` -> `` ms``); for sequences it is the header. Floats print with two
    decimals (format them yourself for anything else). ``align`` is the separator row without its first
    ``|`` (``"---|---:|"``); by default number columns are right-aligned. Sequence rows may be empty (a header
    only).
    """
    if not rows and (columns is None or isinstance(columns, Mapping)):
        raise UserError("markdown_table got no rows; run the measurement first (e.g. benchmark_models).")
    if rows and isinstance(rows[0], Mapping):
        keys = list(columns) if columns is not None else [k for k, v in rows[0].items() if not isinstance(v, list)]
        titles = [columns[k] if isinstance(columns, Mapping) else k.replace("_ms", " ms").replace("_", " ")
                  for k in keys]
        body: List[List[Any]] = [[row[k] for k in keys] for row in rows]  # type: ignore[index]
    else:
        if columns is None:
            raise UserError("markdown_table needs columns (the header) when the rows are sequences of cells.")
        titles, body = list(columns), [list(row) for row in rows]
    if align is None:  # a header-only table (no rows) gets left-aligned columns
        first = body[0] if body else [""] * len(titles)
        align = "".join("---:|" if isinstance(v, Number) and not isinstance(v, bool) else "---|" for v in first)
    lines = ["| " + " | ".join(titles) + " |", "|" + align]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in body]
    return "\n".join(lines)
