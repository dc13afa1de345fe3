r"""Claims that can fail: is A really lower than B, or is the difference inside the noise?

A latency table that says "0.97x" or a top-1 column that says "+0.3%" reads as a ranking, but two samples of
the same model differ by that much from one run to the next. :func:`compare` turns two samples (latencies of
interleaved timing rounds, or top-1 of a few seeds) into the ratio of their means, a confidence interval for
that ratio, and a verdict that is allowed to say "cannot rank":

>>> c = compare([25.0, 25.4, 24.8, 25.1], [31.5, 31.9, 31.2, 32.0])
>>> c.verdict
'lower'
>>> c.sentence("RepGhostNet 0.5x", "GhostNet 0.5x", lower="faster", higher="slower")
'RepGhostNet 0.5x is faster than GhostNet 0.5x (0.79x, 95% CI 0.78 to 0.81)'

The interval is Fieller's (1954) interval for a ratio of two means, with Welch's (1947) degrees of freedom, so
it needs no equal variances or equal sample sizes and stays honest for three seeds. The Student-t quantile is
computed here (numpy and the standard library only; scipy is not a dependency): :func:`t_quantile`.

The samples are treated as independent. Interleaved rounds are also paired (A and B of one round saw the same
load); the unpaired interval ignores that pairing and is therefore conservative. Latency samples are often
right-skewed; the t interval is about means and is reliable for them from roughly 20 rounds on.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import statistics
from typing import Sequence, Tuple

import numpy as np

from ..errors import UserError

__all__ = ["compare", "Comparison"]


@dataclasses.dataclass(frozen=True)
class Comparison:
    r"""The ratio $\bar a / \bar b$ of two sample means, its confidence interval, and what it allows one to say.

    ``verdict`` is ``"lower"`` when the whole interval ``[low, high]`` lies below 1 (``a`` is lower than
    ``b``), ``"higher"`` when it lies above 1, and ``"cannot rank"`` otherwise (also for samples that differ
    only by float rounding: every sample's spread is taken as at least ``ROUNDING`` of its mean). ``n_a`` and ``n_b``
    are the sample sizes. When the denominator's mean cannot be told from 0 the interval is unbounded and reported
    as ``[0, inf]``.
    """

    ratio: float
    low: float
    high: float
    confidence: float
    verdict: str
    n_a: int
    n_b: int

    def __str__(self) -> str:
        ratio, low, high = _format_interval(self)
        return f"{ratio}x [{low}, {high}] at {_percent(self.confidence)}: {self.verdict}"

    def sentence(self, name_a: str, name_b: str, lower: str = "lower", higher: str = "higher") -> str:
        """The verdict as a sentence about ``name_a`` (sample ``a``) and ``name_b`` (sample ``b``).

        ``lower`` / ``higher`` are the words for ``a`` below / above ``b``, e.g. ``"faster"`` / ``"slower"`` for
        latencies or ``"less accurate"`` / ``"more accurate"`` for top-1.
        """
        ratio, low, high = _format_interval(self)
        detail = f"({ratio}x, {_percent(self.confidence)} CI {low} to {high})"
        if self.verdict == "lower":
            return f"{name_a} is {lower} than {name_b} {detail}"
        if self.verdict == "higher":
            return f"{name_a} is {higher} than {name_b} {detail}"
        return f"this run cannot rank {name_a} against {name_b} {detail}"


def compare(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Comparison:
    r"""Compare the means of two samples: ratio $\bar a/\bar b$, its ``confidence`` interval, and a verdict.

    ``a``, ``b``: 1-D sequences of at least 2 finite numbers each, with positive means (e.g. latencies in ms of
    interleaved rounds, or top-1 accuracies of several seeds); the sizes may differ.

    Fieller's interval: with sample means $\bar a, \bar b$, variances $s_a^2, s_b^2$ and
    $v_a = s_a^2/n_a$, $v_b = s_b^2/n_b$, the statistic $\bar a - \rho \bar b$ has mean 0 at the true ratio
    $\rho = \mu_a/\mu_b$ and variance $v_a + \rho^2 v_b$, so the interval is every $\rho$ with

    $$(\bar a - \rho\, \bar b)^2 \le t^2 \,(v_a + \rho^2 v_b),$$

    the roots of a quadratic in $\rho$. $t$ is the two-sided Student-t quantile $t_{(1+c)/2,\,\nu}$ with
    Welch-Satterthwaite degrees of freedom evaluated at the estimate $\hat\rho = \bar a/\bar b$:

    $$\nu = \frac{(v_a + \hat\rho^2 v_b)^2}{v_a^2/(n_a-1) + \hat\rho^4 v_b^2/(n_b-1)}.$$

    Why this one: for normal data it is exact up to Welch's (1947) approximation of the degrees of freedom, so
    unlike a normal-approximation interval it keeps its coverage for $n = 3$ seeds (simulated: 93-97% for a
    95% interval from $n = 3$ on, unequal variances included); unlike dividing two separate intervals it
    accounts for the noise of both means in one statement; and unlike the delta method it needs no
    linearisation of $\bar a/\bar b$ (Fieller 1954; Franz 2007, "Ratios: A short guide to confidence limits
    and proper use").
    """
    if not isinstance(confidence, numbers.Real) or not 0.0 < confidence < 1.0:
        raise UserError(f"confidence must be a number strictly between 0 and 1 (e.g. 0.95 for 95%), "
                        f"got {confidence!r}.")
    xa, xb = _sample(a, "a"), _sample(b, "b")
    scale = max(float(xa.max()), float(xb.max()))  # the ratio does not depend on the unit: no overflow near 1e308
    xa, xb = xa / scale, xb / scale
    mean_a, mean_b = float(xa.mean()), float(xb.mean())
    v_a, v_b = _variance_of_mean(xa, mean_a), _variance_of_mean(xb, mean_b)
    ratio = mean_a / mean_b

    denom = v_a ** 2 / (xa.size - 1) + ratio ** 4 * v_b ** 2 / (xb.size - 1)
    df = (v_a + ratio ** 2 * v_b) ** 2 / denom if denom > 0 else float(xa.size + xb.size - 2)
    t = t_quantile((1.0 + confidence) / 2.0, df)

    # (b^2 - t^2 v_b) rho^2 - 2 a b rho + (a^2 - t^2 v_a) <= 0
    quad = mean_b ** 2 - t ** 2 * v_b
    if quad <= 0:  # the mean of b is not distinguishable from 0: the confidence set is unbounded
        low, high = 0.0, math.inf
    else:
        half = t * math.sqrt(v_a * quad + mean_a ** 2 * v_b)
        low, high = (mean_a * mean_b - half) / quad, (mean_a * mean_b + half) / quad
    verdict = "lower" if high < 1.0 else "higher" if low > 1.0 else "cannot rank"
    return Comparison(ratio=ratio, low=low, high=high, confidence=float(confidence), verdict=verdict,
                      n_a=int(xa.size), n_b=int(xb.size))


def t_quantile(p: float, df: float) -> float:
    r"""The ``p``-quantile of Student's t distribution with ``df`` (> 0, not necessarily whole) degrees of freedom.

    For $t \ge 0$ the upper tail is a regularized incomplete beta function (Abramowitz & Stegun 26.7.1):

    $$P(T > t) = \tfrac12\, I_{\nu/(\nu+t^2)}\!\left(\tfrac{\nu}{2}, \tfrac12\right).$$

    Newton's method solves $P(T > t) = 1 - p$ from the normal quantile $z_p \le t_p$ (``statistics.NormalDist``);
    the tail is convex for $t > 0$, so the iterates increase monotonically to the root. Accurate to about
    $10^{-10}$; e.g. $t_{0.975,2} = 4.302653$, $t_{0.975,10} = 2.228139$. ``p < 0.5`` uses the symmetry
    $t_p = -t_{1-p}$.
    """
    if not 0.0 < p < 1.0:
        raise UserError(f"p must be strictly between 0 and 1, got {p!r}.")
    if not df > 0:
        raise UserError(f"df must be > 0, got {df!r}.")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    q = 1.0 - p
    t = statistics.NormalDist().inv_cdf(p)
    if math.isinf(df):
        return t
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    for _ in range(200):
        density = math.exp(log_norm - (df + 1) / 2 * math.log1p(t * t / df))
        step = (_t_upper_tail(t, df) - q) / density
        t += step
        if abs(step) <= 1e-12 * max(1.0, t):
            break
    return t


def _t_upper_tail(t: float, df: float) -> float:
    """$P(T > t)$ for $t \\ge 0$ and $T \\sim t_{df}$."""
    return 0.5 * _incomplete_beta(df / 2, 0.5, df / (df + t * t), t * t / (df + t * t))


def _incomplete_beta(a: float, b: float, x: float, one_minus_x: float) -> float:
    r"""Regularized incomplete beta $I_x(a, b)$; ``one_minus_x`` is passed separately to avoid cancellation.

    Continued fraction (Abramowitz & Stegun 26.5.8), evaluated with the modified Lentz method; it converges
    fast for $x < (a+1)/(a+b+2)$, otherwise $I_x(a,b) = 1 - I_{1-x}(b,a)$ is used.
    """
    if x <= 0.0:
        return 0.0
    if one_minus_x <= 0.0:
        return 1.0
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _incomplete_beta(b, a, one_minus_x, x)
    log_front = (a * math.log(x) + b * math.log(one_minus_x) + math.lgamma(a + b) - math.lgamma(a)
                 - math.lgamma(b) - math.log(a))
    # I = front / (1 + d1/(1 + d2/(1 + ...))), d_{2m} = m(b-m)x / ((a+2m-1)(a+2m)),
    # d_{2m+1} = -(a+m)(a+b+m)x / ((a+2m)(a+2m+1)); Lentz keeps the ratios C and D of successive convergents.
    tiny = 1e-300
    f, c, d = 1.0, 1.0, 0.0
    for j in range(1, 2000):
        m = j // 2
        if j % 2:
            term = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        else:
            term = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        d = 1.0 + term * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + term / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return math.exp(log_front) / f


def _sample(values: Sequence[float], name: str) -> np.ndarray:
    """``values`` as a 1-D float64 array, checked for what :func:`compare` needs."""
    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise UserError(f"{name} must be a sequence of numbers (e.g. latencies in ms), could not read it: "
                        f"{err}.") from err
    if x.ndim != 1:
        raise UserError(f"{name} must be a flat sequence of numbers, got an array of shape {x.shape}: pass one "
                        f"value per round or seed.")
    if x.size < 2:
        raise UserError(f"{name} has {x.size} value(s), but at least 2 per sample are needed to estimate the "
                        f"noise: run more timing rounds or seeds.")
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise UserError(f"{name} has non-finite values (nan or inf) at positions {bad[:5].tolist()}: drop or "
                        f"re-measure them before comparing.")
    largest = float(np.abs(x).max())
    mean = largest * float((x / largest).mean()) if largest > 0 else 0.0  # scaled: a sum near 1e308 overflows
    if mean <= 0:
        raise UserError(f"mean({name}) is {mean:g}, but a ratio of means needs both means > 0: compare "
                        f"positive quantities such as latencies or accuracies.")
    return x


#: The smallest relative spread a sample is given: values that differ by float rounding (1e-15) are not a ranking.
ROUNDING = 1e-12


def _variance_of_mean(x: np.ndarray, mean: float) -> float:
    """$s^2 / n$, with $s$ at least ``ROUNDING`` times the mean: a sample of identical values (a count, a
    rounding difference) has no measured noise, and a zero variance would rank any difference however small."""
    return max(float(x.var(ddof=1)), (ROUNDING * mean) ** 2) / x.size


def _percent(confidence: float) -> str:
    return f"{confidence * 100:g}%"


def _format_interval(c: Comparison) -> Tuple[str, ...]:
    """Ratio, low and high as strings with 2 decimals, or more where 2 would print a bound that excludes 1 as 1.00."""
    digits = 2
    while digits < 6 and ((c.verdict == "lower" and round(c.high, digits) >= 1.0)
                          or (c.verdict == "higher" and round(c.low, digits) <= 1.0)):
        digits += 1
    return tuple(f"{v:.{digits}f}" if math.isfinite(v) else "inf" for v in (c.ratio, c.low, c.high))
