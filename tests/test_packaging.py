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
