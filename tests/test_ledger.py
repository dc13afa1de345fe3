"""Issue #33: the ledger of the paper's claims and one latency story that agrees with itself, read from the
committed notebooks (RESULT ... [claim ...: status] lines and LATENCY records)."""
import json
from pathlib import Path

import pytest

import repghost_mini as rm
from repghost_mini.cli import main
from repghost_mini.teaching import ledger

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PAGE = ROOT / "docs" / "ledger.md"


def notebook(tmp_path, name, lines):
    """A notebook whose one cell printed ``lines``."""
    cell = {"cell_type": "code", "execution_count": 1, "id": "a", "metadata": {}, "source": [],
            "outputs": [{"output_type": "stream", "name": "stdout", "text": [line + "\n" for line in lines]}]}
    path = tmp_path / name
    path.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_every_claim_quotes_the_paper_and_every_unmeasured_one_says_why():
    for claim in rm.paper.CLAIMS.values():
        assert claim.quotes and all(q in rm.paper.QUOTES for q in claim.quotes), claim.key
    assert sum(c.not_attempted is not None for c in rm.paper.CLAIMS.values()) >= 2  # ImageNet top-1, COCO


def test_a_result_line_reads_back(capsys, tmp_path):
    line = rm.teaching.result("nb04", "mnn latency RepGhostNet 1.0x / GhostNet 1.0x", "0.78 (95% CI 0.74 to 0.82)",
                              "table3.latency", "same direction")
    assert capsys.readouterr().out.strip() == line
    found = ledger.read_results([notebook(tmp_path, "a.ipynb", ["RESULT nb01 plain line: 1.0", line])])
    assert found == [ledger.Result("nb04", "mnn latency RepGhostNet 1.0x / GhostNet 1.0x",
                                   "0.78 (95% CI 0.74 to 0.82)", "table3.latency", "same direction")]


@pytest.mark.parametrize("claim, status, word", [
    ("table9.nothing", "reproduced", "no claim named"),
    ("table3.latency", "not attempted", "status must be one of"),
    ("table3.latency", "faster", "status must be one of"),
])
def test_a_result_with_an_unknown_claim_or_status_is_refused(claim, status, word):
    with pytest.raises(rm.UserError, match=word):
        rm.teaching.result("nb04", "x", "1", claim, status)


@pytest.mark.parametrize("verdict, paper, status", [
    ("lower", "lower", "same direction"), ("higher", "lower", "reversed"), ("cannot rank", "higher", "cannot rank"),
])
def test_status_of_a_verdict(verdict, paper, status):
    assert rm.teaching.status_of(verdict, paper) == status


def test_a_claim_takes_the_least_favourable_status_and_reversals_come_first(tmp_path):
    lines = ["RESULT nb04 a: 1 [claim table3.latency: same direction]",
             "RESULT nb07 b: 2 [claim table3.latency: reversed]",
             "RESULT nb02 c: 3 [claim sec3.2.fusion: reproduced]"]
    page = ledger.ledger_page([notebook(tmp_path, "a.ipynb", lines)])
    rows = [line for line in page.splitlines() if line.startswith("| **")]
    assert len(rows) == len(rm.paper.CLAIMS)
    assert rows[0].startswith("| **reversed** |") and "`table3.latency`" in rows[0]
    assert "nb04, a: 1 (same direction)<br>nb07, b: 2 (reversed)" in rows[0]
    assert rows[-1].startswith("| **not attempted** |")
    n = len(rm.paper.CLAIMS)
    assert f"RESULT ledger: {n} claims: 1 reproduced, 0 same direction, 1 reversed, 0 cannot rank, {n - 2} not attempted" \
        in page


def test_the_committed_ledger_page_is_up_to_date_with_the_committed_notebooks(capsys):
    assert PAGE.is_file(), "docs/ledger.md is missing: python -m repghost_mini ledger"
    assert main(["ledger", "--check", "--out", str(PAGE)]) == 0, "python -m repghost_mini ledger"
    out = capsys.readouterr().out
    assert out.startswith("RESULT ledger: ") and "(up to date)" in out
    results = ledger.read_results(NOTEBOOKS)
    measured = {r.claim for r in results}
    # every claim that no notebook measures says why; the ones the notebooks measure are many
    assert all(rm.paper.CLAIMS[k].not_attempted for k in set(rm.paper.CLAIMS) - measured), \
        sorted(set(rm.paper.CLAIMS) - measured)
    assert len(measured) >= 12


def test_an_out_of_date_page_is_reported_in_one_line(tmp_path, capsys):
    stale = tmp_path / "ledger.md"
    stale.write_text("# an old ledger\n")
    assert main(["ledger", "--check", "--out", str(stale)]) == 2
    assert "out of date" in capsys.readouterr().err


def test_two_measurements_of_one_latency_in_one_run_agree():
    problems = rm.teaching.latency_disagreements(NOTEBOOKS)
    assert not problems, "\n".join(problems)
    printed = [line for path in NOTEBOOKS for cell in json.loads(path.read_text())["cells"]
               for output in cell.get("outputs", []) for line in "".join(output.get("text", "")).splitlines()]
    records = [line for line in printed if line.startswith("LATENCY {")]
    assert len(records) >= 20, "the notebooks print (almost) no LATENCY records"


def test_disagreeing_latencies_are_named(tmp_path):
    def record(mean, low, high):
        return "LATENCY " + json.dumps({"runtime": "mnn", "model": "ghostnet_100", "batch": 1, "threads": 1,
                                        "image_size": 224, "mean_ms": mean, "low_ms": low, "high_ms": high,
                                        "rounds": 8})
    a = notebook(tmp_path, "04.ipynb", [record(12.5, 11.0, 14.0)])
    b = notebook(tmp_path, "07.ipynb", [record(8.0, 7.5, 8.5)])
    c = notebook(tmp_path, "08.ipynb", [record(13.0, 12.0, 14.5)])
    problems = rm.teaching.latency_disagreements([a, b, c])
    assert len(problems) == 2 and all("ghostnet_100 in mnn" in p for p in problems)
    assert "12.5 ms [11.0, 14.0] in 04.ipynb but 8.0 ms [7.5, 8.5] in 07.ipynb" in problems[0]


def test_latency_records_carry_the_key_and_the_interval():
    rows = [{"runtime": "torch", "model": "m", "batch": 1, "threads": 1, "image_size": 32,
             "samples_ms": [1.0, 1.2, 1.1, 0.9]}]
    (line,) = rm.deploy.latency_records(rows)
    record = json.loads(line[len("LATENCY "):])
    assert record["mean_ms"] == 1.05 and record["low_ms"] < 1.05 < record["high_ms"] and record["rounds"] == 4
    assert {k: record[k] for k in ("runtime", "model", "batch", "threads", "image_size")} == \
        {"runtime": "torch", "model": "m", "batch": 1, "threads": 1, "image_size": 32}
