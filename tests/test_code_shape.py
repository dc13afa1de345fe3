"""The shape of the code: no function longer than 80 lines (the house rule), the paper core self-contained."""
import ast
from pathlib import Path

import repghost_mini

PACKAGE = Path(repghost_mini.__file__).parent
MAX_LINES = 80


def _long_functions(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_LINES:
                yield f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}() has {length} lines"


def test_no_function_is_longer_than_80_lines():
    files = sorted(PACKAGE.rglob("*.py"))
    too_long = [msg for path in files for msg in _long_functions(path)]
    assert not too_long, "split these functions: " + "; ".join(too_long)
