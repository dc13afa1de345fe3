"""The house keeps its promises: environment.yml == pyproject.toml deps, CI runs the README's commands."""
import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
INSTALL = 'pip install -e ".[dev]"'
TEST = "python -m pytest tests && python -m pytest --nbval --nbval-current-env notebooks"


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    pip_section = (ROOT / "environment.yml").read_text().split("- pip:", 1)[1]
    listed = {line.strip() for line in re.findall(r"^\s+- (\S.*)$", pip_section, flags=re.M)} - {"-e ."}
    assert listed == declared, f"only in environment.yml: {listed - declared}; only in pyproject: {declared - listed}"


def test_ci_runs_the_readme_commands():
    readme, ci = (ROOT / "README.md").read_text(), (ROOT / ".ci" / "run").read_text()
    for command in (INSTALL, TEST):
        assert command in readme, f"README does not show {command!r}"
        assert command in ci, f".ci/run does not run {command!r}"


def test_top_level_layout():
    for name in ["README.md", "notebooks", "repghost_mini", "data", "tests", "environment.yml", "pyproject.toml",
                 ".ci/run", "benchmarks"]:
        assert (ROOT / name).exists(), name


def test_the_linter_runs_first_and_the_fast_subset_is_documented():
    """CI lints before it tests; the README shows the everyday commands; every browser test is also `slow`, so
    `-m "not slow"` (which replaces pyproject's `-m "not browser"`) still leaves the browser out."""
    readme, ci = (ROOT / "README.md").read_text(), (ROOT / ".ci" / "run").read_text()
    assert "ruff check ." in ci and ci.index("ruff check .") < ci.index(TEST)
    assert "ruff check ." in readme and 'python -m pytest tests -m "not slow"' in readme
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    assert any(m.startswith("slow:") for m in markers)
    for module in sorted((ROOT / "tests" / "browser").glob("test_*.py")):
        text = module.read_text()
        if "pytest.mark.browser" in text:
            assert "pytestmark = [pytest.mark.browser, pytest.mark.slow]" in text, module.name
