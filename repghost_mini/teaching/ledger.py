"""The ledger: which of the paper's claims held here, gathered from the notebooks' ``RESULT`` lines.

A reproduction report (the ML Reproducibility Challenge's) lists the paper's claims one by one, each with the
measured value and whether it held. Here every claim is a :class:`repghost_mini.paper.Claim` (its words are the
paper's quotes), and each notebook prints its measurement of a claim with :func:`result`, for example::

    RESULT nb04 mnn latency RepGhostNet/GhostNet 1.0x: 0.78 (95% CI 0.74 to 0.82) [claim table3.latency: same direction]

:func:`ledger_page` reads the committed notebooks and writes one page: claim, the paper's words, ours, status.
A status is one of :data:`STATUSES`:

* ``reproduced``: our number agrees with the paper's (equal outputs, equal counts, the paper's value inside our
  interval);
* ``same direction``: the ranking the paper states holds here, at another magnitude;
* ``reversed``: this machine ranks the other way (the notebook says why);
* ``cannot rank``: the measurement's interval includes "no difference";
* ``not attempted``: no notebook measures it (the claim says why).

A claim measured several times (two runtimes, say) takes the first status of ``reversed``, ``cannot rank``,
``same direction``, ``reproduced`` among its measurements: the ledger never reports more than every measurement
supports.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, NamedTuple, Sequence

from ..errors import UserError
from ..paper import CLAIMS, QUOTES
from .runs import committed_stamps, printed_lines

__all__ = ["STATUSES", "Result", "result", "status_of", "read_results", "ledger_page", "ledger_counts"]

#: The statuses, in the order the ledger lists them (reversals first).
STATUSES = ("reversed", "cannot rank", "same direction", "reproduced", "not attempted")
_MEASURED = STATUSES[:4]
_LINE = re.compile(r"^RESULT (?P<notebook>\S+) (?P<what>.+?): (?P<value>.*) "
                   r"\[claim (?P<claim>[\w.]+): (?P<status>[a-z ]+)\]$")


class Result(NamedTuple):
    """One measurement of a claim, as a notebook printed it."""

    notebook: str
    what: str
    value: str
    claim: str
    status: str


def result(notebook: str, what: str, value: str, claim: str, status: str) -> str:
    """Print (and return) the ``RESULT`` line of a measurement of the paper's claim ``claim`` (a key of
    :data:`repghost_mini.paper.CLAIMS`) with its ``status`` (one of the first four :data:`STATUSES`)."""
    if claim not in CLAIMS:
        raise UserError(f"no claim named {claim!r}; the claims are {', '.join(CLAIMS)}.")
    if status not in _MEASURED:
        raise UserError(f"status must be one of {', '.join(_MEASURED)} for a measurement, got {status!r}.")
    line = f"RESULT {notebook} {what}: {value} [claim {claim}: {status}]"
    if not _LINE.match(line):
        raise UserError(f"the RESULT line {line!r} cannot be read back; keep ': ' out of what and '[' out of value.")
    print(line)
    return line


def status_of(verdict: str, paper: str) -> str:
    """The status of a ranking measured here: ``verdict`` from :func:`repghost_mini.compare` (``"lower"``,
    ``"higher"``, ``"cannot rank"``) against ``paper``, the direction the paper states for the same ratio."""
    if verdict not in ("lower", "higher", "cannot rank") or paper not in ("lower", "higher"):
        raise UserError(f"verdict must be 'lower', 'higher' or 'cannot rank' and paper 'lower' or 'higher', got "
                        f"{verdict!r} and {paper!r}.")
    if verdict == "cannot rank":
        return "cannot rank"
    return "same direction" if verdict == paper else "reversed"


def read_results(paths: Sequence[Path]) -> List[Result]:
    """Every claim-naming ``RESULT`` line in the committed outputs of the notebooks at ``paths``."""
    found = [Result(**match.groupdict()) for path in paths for _, line in printed_lines(path)
             if (match := _LINE.match(line.strip()))]
    unknown = sorted({r.claim for r in found} - set(CLAIMS))
    if unknown:
        raise UserError(f"the notebooks name claims that repghost_mini.paper.CLAIMS does not have: {unknown}.")
    return found


def _claim_status(results: List[Result], claim: str) -> str:
    statuses = {r.status for r in results if r.claim == claim}
    return next((s for s in _MEASURED if s in statuses), "not attempted")


def ledger_counts(results: List[Result]) -> Dict[str, int]:
    """How many claims have each status."""
    counts = dict.fromkeys(STATUSES, 0)
    for key in CLAIMS:
        counts[_claim_status(results, key)] += 1
    return counts


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def ledger_page(paths: Sequence[Path]) -> str:
    """The ledger as a Markdown page: the headline ``RESULT ledger`` line, then one row per claim (reversals
    first), the paper's words quoted, every measurement of the claim with the notebook that made it; the run
    stamp of the first notebook says where they were measured."""
    results = read_results(paths)
    stamps = [s["stamp"] for s in committed_stamps(paths).values() if s["stamp"]]
    stamp = stamps[0][len("RUN STAMP "):] if stamps else None
    counts = ledger_counts(results)
    headline = (f"RESULT ledger: {len(CLAIMS)} claims: {counts['reproduced']} reproduced, "
                f"{counts['same direction']} same direction, {counts['reversed']} reversed, "
                f"{counts['cannot rank']} cannot rank, {counts['not attempted']} not attempted")
    order = sorted(CLAIMS, key=lambda k: STATUSES.index(_claim_status(results, k)))
    rows = []
    for key in order:
        claim, status = CLAIMS[key], _claim_status(results, key)
        words = "<br>".join(f"\u201c{_cell(QUOTES[q].text)}\u201d ({QUOTES[q].where})" for q in claim.quotes)
        mine = [r for r in results if r.claim == key]
        ours = "<br>".join(f"{r.notebook}, {_cell(r.what)}: {_cell(r.value)} ({r.status})" for r in mine)
        rows.append(f"| **{status}** | {_cell(claim.about)} (`{key}`) | {words} | "
                    f"{ours or _cell(claim.not_attempted or 'no notebook measures it yet')} |")
    lines = [
        "# What held: the paper's claims, measured here", "",
        "Every claim of the RepGhost paper that this project can test, with the paper's own words, what the "
        "notebooks measured and a status: **reproduced** (our number agrees), **same direction** (the ranking "
        "holds at another magnitude), **reversed** (this machine ranks the other way; the notebook says why), "
        "**cannot rank** (the interval includes no difference) or **not attempted** (and why). A claim measured "
        "more than once takes the least favourable status of its measurements. Reversals come first.", "",
        "The paper measured an ARM phone (MNN, one thread); these numbers come from the x86 CPU that executed the "
        "notebooks" + (f" (`{stamp}`)" if stamp else "") + ": a ratio can carry over, a millisecond cannot.", "",
        "Written by `python -m repghost_mini ledger` from the committed notebooks; a test fails when it is out of "
        "date.", "",
        "```text", headline, "```", "",
        "| status | claim | the paper | here |", "|---|---|---|---|", *rows, "",
    ]
    return "\n".join(lines)
