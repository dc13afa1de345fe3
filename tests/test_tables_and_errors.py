"""The one table formatter, and the one line between a user error (one line, exit 2) and a bug (traceback)."""
import pytest

import repghost_mini as r
from repghost_mini import cli
from repghost_mini.errors import UserError, user_errors


def test_markdown_table_from_dicts_and_from_cells():
    rows = [{"model": "a", "batch": 1, "median_ms": 1.234, "samples_ms": [1.0]},
            {"model": "b", "batch": 2, "median_ms": 10.0, "samples_ms": [2.0]}]
    assert r.measure.markdown_table(rows).splitlines() == [
        "| model | batch | median ms |", "|---|---:|---:|", "| a | 1 | 1.23 |", "| b | 2 | 10.00 |"]
    assert r.measure.markdown_table(rows, {"model": "net"}).splitlines()[0] == "| net |"
    cells = r.measure.markdown_table([["x", "1.0"]], ["name", "value"], "---|---:|").splitlines()
    assert cells == ["| name | value |", "|---|---:|", "| x | 1.0 |"]
    with pytest.raises(UserError, match="no rows"):
        r.measure.markdown_table([])


def test_user_errors_turns_only_the_named_kinds_into_user_errors():
    with pytest.raises(UserError, match="gone"):
        with user_errors(FileNotFoundError):
            raise FileNotFoundError("gone")
    with pytest.raises(KeyError):
        with user_errors(FileNotFoundError):
            raise KeyError("a bug stays a bug")


def test_cli_prints_user_errors_in_one_line_and_lets_bugs_raise(monkeypatch, capsys):
    def user_problem(args):
        raise UserError("the file is missing;\n  check the path.")

    def bug(args):
        raise ValueError("internal inconsistency")

    monkeypatch.setitem(cli._COMMANDS, "bench", (user_problem,) + cli._COMMANDS["bench"][1:])
    assert cli.main(["bench", "x"]) == 2
    assert capsys.readouterr().err == "repghost-mini bench: error: the file is missing; check the path.\n"
    monkeypatch.setitem(cli._COMMANDS, "bench", (bug,) + cli._COMMANDS["bench"][1:])
    with pytest.raises(ValueError, match="internal inconsistency"):
        cli.main(["bench", "x"])
