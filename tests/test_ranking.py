"""compare(): a ratio of means with a confidence interval, and a verdict that may say "cannot rank" (issue #19)."""
import dataclasses
import math

import numpy as np
import pytest

from repghost_mini.measure.ranking import Comparison, compare, t_quantile

DRAWS = 1000


@pytest.mark.parametrize("n_a,n_b", [(3, 3), (5, 20), (50, 50)])
@pytest.mark.parametrize("noise", [0.01, 0.3])
def test_same_distribution_cannot_rank(n_a, n_b, noise):
    rng = np.random.default_rng(19)
    samples = zip(rng.normal(1.0, noise, (DRAWS, n_a)), rng.normal(1.0, noise, (DRAWS, n_b)), strict=True)
    verdicts = [compare(a, b).verdict for a, b in samples]
    assert verdicts.count("cannot rank") / DRAWS >= 0.90  # about 0.95 for a 95% interval


@pytest.mark.parametrize("n_a,n_b", [(3, 3), (5, 20)])
def test_planted_difference_is_ranked(n_a, n_b):
    rng = np.random.default_rng(7)
    small, large = rng.normal(1.0, 0.05, (DRAWS, n_a)), rng.normal(1.3, 0.05, (DRAWS, n_b))
    lower = [compare(a, b).verdict for a, b in zip(small, large, strict=True)]
    higher = [compare(b, a).verdict for a, b in zip(small, large, strict=True)]
    assert lower.count("lower") / DRAWS >= 0.99
    assert higher.count("higher") / DRAWS >= 0.99


@pytest.mark.parametrize("n_a,n_b,sd_a,sd_b", [(5, 20, 0.1, 0.1), (5, 20, 0.2, 0.05), (3, 3, 0.05, 0.05),
                                               (30, 30, 0.1, 0.2)])
def test_interval_covers_true_ratio(n_a, n_b, sd_a, sd_b):
    rng = np.random.default_rng(2022)
    mu_a, mu_b = 1.0, 1.25
    hits = 0
    for a, b in zip(rng.normal(mu_a, sd_a, (DRAWS, n_a)), rng.normal(mu_b, sd_b, (DRAWS, n_b)), strict=True):
        c = compare(a, b)
        hits += c.low <= mu_a / mu_b <= c.high
    assert 0.92 <= hits / DRAWS <= 0.98  # 95% +- 4 standard errors of 1000 draws


def test_confidence_widens_interval():
    a, b = [1.0, 1.1, 0.9, 1.05], [1.2, 1.3, 1.25, 1.1]
    c90, c99 = compare(a, b, 0.90), compare(a, b, 0.99)
    assert c99.low < c90.low < c90.ratio < c90.high < c99.high
    assert c90.ratio == pytest.approx(np.mean(a) / np.mean(b))


@pytest.mark.parametrize("p,df,expected", [(0.975, 2, 4.302653), (0.975, 10, 2.228139), (0.975, 1000, 1.962339),
                                           (0.975, 1, 12.706205), (0.95, 5, 2.015048), (0.995, 3, 5.840909)])
def test_t_quantile_tabulated(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=1e-6)
    assert t_quantile(1 - p, df) == pytest.approx(-expected, abs=1e-6)


@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.999])
def test_t_quantile_closed_forms(p):
    assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-10)  # Cauchy
    assert t_quantile(p, 2) == pytest.approx((2 * p - 1) * math.sqrt(2 / (1 - (2 * p - 1) ** 2)), rel=1e-10)
    assert t_quantile(p, math.inf) == pytest.approx(t_quantile(p, 1e9), rel=1e-6)


def test_fields_and_str():
    c = compare([25.0, 25.4, 24.8, 25.1], [31.5, 31.9, 31.2, 32.0])
    assert [f.name for f in dataclasses.fields(Comparison)] == ["ratio", "low", "high", "confidence", "verdict",
                                                                "n_a", "n_b"]
    assert (c.verdict, c.n_a, c.n_b, c.confidence) == ("lower", 4, 4, 0.95)
    assert str(c) == f"{c.ratio:.2f}x [{c.low:.2f}, {c.high:.2f}] at 95%: lower"
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.ratio = 1.0  # type: ignore[misc]


def test_str_never_prints_an_excluded_1_as_1():
    c = Comparison(ratio=0.99, low=0.985, high=0.9996, confidence=0.95, verdict="lower", n_a=50, n_b=50)
    assert str(c) == "0.9900x [0.9850, 0.9996] at 95%: lower"


def test_sentences():
    kw = dict(lower="faster", higher="slower")
    lower = Comparison(0.83, 0.80, 0.86, 0.95, "lower", 20, 20)
    higher = Comparison(1.20, 1.10, 1.31, 0.95, "higher", 20, 20)
    tie = Comparison(0.98, 0.90, 1.07, 0.95, "cannot rank", 3, 3)
    assert lower.sentence("RepGhostNet", "GhostNet", **kw) == ("RepGhostNet is faster than GhostNet "
                                                               "(0.83x, 95% CI 0.80 to 0.86)")
    assert higher.sentence("RepGhostNet", "GhostNet", **kw) == ("RepGhostNet is slower than GhostNet "
                                                                "(1.20x, 95% CI 1.10 to 1.31)")
    assert tie.sentence("RepGhostNet", "GhostNet", **kw) == ("this run cannot rank RepGhostNet against GhostNet "
                                                             "(0.98x, 95% CI 0.90 to 1.07)")
    assert lower.sentence("a", "b") == "a is lower than b (0.83x, 95% CI 0.80 to 0.86)"


def test_zero_spread_and_unbounded_interval():
    exact = compare([2.0, 2.0], [4.0, 4.0])  # no measured spread: the interval is the float-rounding floor around 0.5
    assert exact.ratio == 0.5 and exact.verdict == "lower"
    assert exact.low == pytest.approx(0.5, abs=1e-10) and exact.high == pytest.approx(0.5, abs=1e-10)
    assert exact.low < 0.5 < exact.high
    wild = compare([1.0, 1.1, 0.9], [0.1, 5.0, 0.2])  # the mean of b cannot be told from 0
    assert (wild.low, wild.high, wild.verdict) == (0.0, math.inf, "cannot rank")
    assert "inf" in str(wild)


@pytest.mark.parametrize("a,b,confidence,match", [
    ([1.0], [1.0, 2.0], 0.95, "at least 2 per sample.*run more timing rounds or seeds"),
    ([1.0, 2.0], [], 0.95, "at least 2 per sample"),
    ([1.0, float("nan")], [1.0, 2.0], 0.95, r"non-finite.*positions \[1\].*drop or re-measure"),
    ([1.0, 2.0], [1.0, float("inf")], 0.95, "non-finite"),
    ([-1.0, -2.0], [1.0, 2.0], 0.95, r"mean\(a\).*both means > 0"),
    ([1.0, 2.0], [-3.0, 1.0], 0.95, r"mean\(b\)"),
    ([1.0, 2.0], [1.0, 2.0], 95, "between 0 and 1.*0.95 for 95%"),
    ([1.0, 2.0], [1.0, 2.0], 0.0, "between 0 and 1"),
    ([1.0, 2.0], [1.0, 2.0], float("nan"), "between 0 and 1"),
    ([[1.0, 2.0], [3.0, 4.0]], [1.0, 2.0], 0.95, "flat sequence.*one value per round or seed"),
    (["fast", "slow"], [1.0, 2.0], 0.95, "sequence of numbers"),
])
def test_bad_input(a, b, confidence, match):
    with pytest.raises(ValueError, match=match):
        compare(a, b, confidence)
