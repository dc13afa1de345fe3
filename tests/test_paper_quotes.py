"""repghost_mini.paper: every number attributed to the paper is a verbatim quote of it (issue #19)."""
import dataclasses
import os
from pathlib import Path

import pytest

from repghost_mini import paper
from repghost_mini.core.networks import REPGHOSTNET_CFG
from repghost_mini.measure.counting import PAPER_TABLE3

PAPER_TEXT = Path(os.environ.get("REPGHOST_MINI_PAPER")
                  or Path(__file__).resolve().parents[2] / "shared/seed/000_b30cd4f87d9371fa.txt")
needs_paper = pytest.mark.skipif(not PAPER_TEXT.is_file(),
                                 reason=f"the paper's text is not at {PAPER_TEXT}; set REPGHOST_MINI_PAPER to "
                                        f"its path to check the quotes")


@needs_paper
def test_every_quote_is_verbatim_in_the_paper():
    missing = paper.check_quotes(PAPER_TEXT)
    assert missing == [], "not found verbatim in the paper: " + "; ".join(
        f"{k} ({paper.QUOTES[k].where}): {paper.QUOTES[k].text!r}" for k in missing)


def test_check_quotes_reports_what_is_missing(tmp_path):
    text = tmp_path / "paper.txt"
    text.write_text("Base learning rate\n   is 0.6 and\tcosine anneals for 300 epochs", encoding="utf-8")
    missing = paper.check_quotes(text)
    assert "recipe.lr" not in missing  # found across a line break
    assert "recipe.batch" in missing and len(missing) == len(paper.QUOTES) - 1


def test_quotes_are_short_normalised_and_keyed():
    for key, q in paper.QUOTES.items():
        assert q.key == key and q.where
        assert q.text == paper.normalise(q.text) and 0 < len(q.text) <= 200, key
    with pytest.raises(dataclasses.FrozenInstanceError):
        paper.QUOTES["recipe.lr"].text = "Base learning rate is 6"  # type: ignore[misc]


def test_quote_lookup():
    assert paper.quote("recipe.lr") == "Base learning rate is 0.6"
    with pytest.raises(ValueError, match="did you mean recipe.lr"):
        paper.quote("recipe.lrr")


def test_paper_table3_agrees_with_quotes():
    """PAPER_TABLE3 (counting.py) and the quoted Table 3 rows give the same params and FLOPs.

    The two widths without a Table 3 row are the authors' release numbers, as counting.py says.
    """
    not_quoted = set()
    for (arch, width), (params_m, macs_m) in PAPER_TABLE3.items():
        if f"table3.{arch}_{width:g}x" not in paper.QUOTES:
            not_quoted.add((arch, width))
            continue
        row = paper.table3(arch, width)
        assert (row["params_m"], row["flops_m"]) == (params_m, macs_m), (arch, width)
    assert not_quoted == {("repghostnet", 0.8), ("repghostnet", 2.0)}


def test_table3_rows():
    assert paper.table3("repghostnet", 0.5) == dict(params_m=2.3, flops_m=43, latency_ms=25.1, top1=66.9, top5=86.9)
    assert paper.table3("ghostnet", 1.3)["latency_ms"] == 117.6
    with pytest.raises(ValueError, match="no row repghostnet 0.8x"):
        paper.table3("repghostnet", 0.8)


def test_table2_agrees_with_repghostnet_cfg():
    bottlenecks = [row for stage in REPGHOSTNET_CFG for row in stage]
    quoted = [paper.quote(f"table2.bneck{i:02d}").split()[-4:] for i in range(1, len(bottlenecks) + 1)]
    assert f"table2.bneck{len(bottlenecks) + 1:02d}" not in paper.QUOTES
    for (_, mid, out, se, stride), cells in zip(bottlenecks, quoted, strict=True):
        assert cells == [str(mid), str(out), "1" if se else "-", str(stride)]


def test_table5_rows():
    assert paper.table5("repghost_res50", 2) == dict(params_m=7.1, flops_b=1.2, mnn_latency_ms=331.6,
                                                     trt_latency_ms=38.9, top1=73.6, top5=91.5)
    assert paper.table5("ghost_res50", 2)["params_m"] == 14.0
    with pytest.raises(ValueError, match="no row repghost_res50 s=4"):
        paper.table5("repghost_res50", 4)


def test_table7_rows():
    assert paper.table7(1.0) == dict(top1=74.2, latency_ms=62.2, top1_no_shortcut=72.7, latency_no_shortcut_ms=60.5)
    assert paper.table7(2) == dict(top1=78.8, latency_ms=190.0, top1_no_shortcut=77.9, latency_no_shortcut_ms=186.7)
    with pytest.raises(ValueError, match="0.5x, 1.5x, 1x, 2x"):
        paper.table7(1.3)
