"""The docs page "Time it on your device" ranks latencies with a JavaScript port of ``repghost_mini.compare``
(docs/device_lab/device_lab.js): on fixed samples, run with node, it gives the same ratio, interval, verdict,
printed sentence and Student-t quantiles as the Python one, and refuses the same unusable samples.
"""
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from repghost_mini import UserError, compare
from repghost_mini.measure.ranking import ROUNDING, t_quantile

JS = Path(__file__).resolve().parents[1] / "docs" / "device_lab" / "device_lab.js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="the JavaScript compare is checked with node, which is not "
                                                     "installed (apt-get install -y nodejs)")

rng = np.random.default_rng(35)
CASES = {
    "docstring example": ([25.0, 25.4, 24.8, 25.1], [31.5, 31.9, 31.2, 32.0]),
    "cannot rank": ([10.0, 10.4, 9.8, 10.1, 10.3], [10.1, 10.2, 10.0, 9.9, 10.4]),
    "higher, unequal sizes": ([12.0, 12.3, 11.9], [10.0, 10.1, 9.9, 10.2, 10.0, 10.05]),
    "three seeds of top-1": ([66.9, 67.2, 66.5], [66.4, 66.1, 66.8]),
    "20 interleaved rounds": (list(25 + rng.gamma(2.0, 0.4, 20)), list(31 + rng.gamma(2.0, 0.5, 20))),
    "137 rounds (numpy's pairwise sum in blocks)": (list(10 + rng.normal(0, 0.3, 137)),
                                                    list(10.2 + rng.normal(0, 0.3, 131))),
    "identical values (the ROUNDING floor)": ([5.0] * 4, [5.0] * 4),
    "a rounding difference only": ([1.0, 1.0, 1.0], [1.0 + 4e-16, 1.0 + 4e-16, 1.0 + 4e-16]),
    "a count against a count": ([3.0, 3.0], [4.0, 4.0, 4.0]),
    "near the largest float (scaled)": ([1.0e308, 1.1e308, 1.05e308], [1.5e308, 1.6e308, 1.55e308]),
    "tiny values": ([1e-300, 1.1e-300, 1.05e-300], [2e-300, 2.1e-300, 2.2e-300]),
    "denominator indistinguishable from 0": ([1.0, 1.2, 0.9], [-5.0, 5.3, 0.1]),
    "90% confidence": ([25.0, 25.4, 24.8, 25.1], [25.3, 25.6, 25.2, 25.4], 0.9),
}
BAD = {"one value": ([1.0], [1.0, 2.0]), "nan": ([1.0, float("nan")], [1.0, 2.0]),
       "mean not positive": ([-1.0, 0.5], [1.0, 2.0]), "a count of 0": ([0.0, 0.0], [1.0, 2.0])}
#: (p, df) points; df up to 2000 covers the page (at most 1000 rounds). For df of 1e4 and more the two incomplete
#: betas, summed over thousands of continued-fraction terms, drift apart by 1e-12 to 1e-9 (neither is exact there).
T_POINTS = [(0.975, 2), (0.975, 10), (0.975, 3.7), (0.95, 1), (0.995, 0.5), (0.6, 2000), (0.975, 200), (0.025, 7.3),
            (0.975, float("inf")), (0.999, 25.5)]

def run_node(payload: dict) -> dict:
    script = f"""
import {{ compare, formatInterval, sentence, tQuantile }} from {json.dumps(JS.as_uri())};
import {{ readFileSync }} from 'node:fs';
const input = JSON.parse(readFileSync(0, 'utf8'), (k, v) => (v === 'inf' ? Infinity : v === 'nan' ? NaN : v));
const out = {{ cases: {{}}, bad: {{}}, t: [] }};
for (const [name, [a, b, conf]] of Object.entries(input.cases)) {{
  const c = compare(a, b, conf ?? 0.95);
  out.cases[name] = {{ ...c, text: formatInterval(c), sentence: sentence(c, 'A', 'B') }};
}}
for (const [name, [a, b]] of Object.entries(input.bad)) {{
  try {{ compare(a, b); out.bad[name] = 'accepted'; }} catch (err) {{ out.bad[name] = err.message; }}
}}
for (const [p, df] of input.t) out.t.push(tQuantile(p, df));
process.stdout.write(JSON.stringify(out, (k, v) => (v === Infinity ? 'inf' : v)));
"""
    def plain(v):  # JSON has no inf or nan: written as strings, read back by the reviver above
        if isinstance(v, float) and not math.isfinite(v):
            return "nan" if math.isnan(v) else "inf"
        return [plain(x) for x in v] if isinstance(v, (list, tuple)) else {k: plain(x) for k, x in v.items()} \
            if isinstance(v, dict) else v

    text = json.dumps(plain(payload), allow_nan=False)
    run = subprocess.run([NODE, "--input-type=module", "-e", script], input=text, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout, object_hook=lambda d: {k: math.inf if v == "inf" else v for k, v in d.items()})


@pytest.fixture(scope="module")
def node_out():
    return run_node({"cases": {k: [list(map(float, v[0])), list(map(float, v[1])), *v[2:]]
                               for k, v in CASES.items()},
                     "bad": BAD, "t": [[p, df] for p, df in T_POINTS]})


@pytest.mark.parametrize("name", list(CASES))
def test_js_compare_gives_pythons_ratio_interval_verdict_and_sentence(node_out, name):
    a, b, *conf = CASES[name]
    py = compare(a, b, *conf)
    js = node_out["cases"][name]
    assert js["verdict"] == py.verdict, (js, py)
    assert (js["n_a"], js["n_b"]) == (py.n_a, py.n_b)
    for key in ("ratio", "low", "high"):
        want, got = getattr(py, key), js[key]
        assert got == want or math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-15), (key, got, want)
    assert js["sentence"] == py.sentence("A", "B", lower="faster", higher="slower"), (js["sentence"], py)


def test_the_cases_cover_every_verdict_and_the_special_branches(node_out):
    verdicts = {compare(*CASES[name][:2], *CASES[name][2:]).verdict for name in CASES}
    assert verdicts == {"lower", "higher", "cannot rank"}
    unbounded = node_out["cases"]["denominator indistinguishable from 0"]
    assert (unbounded["low"], unbounded["high"]) == (0.0, math.inf)
    # without the floor two identical samples would get a zero-width interval; with it, "cannot rank"
    assert node_out["cases"]["identical values (the ROUNDING floor)"]["verdict"] == "cannot rank"
    assert node_out["cases"]["a rounding difference only"]["verdict"] == "cannot rank" and ROUNDING == 1e-12
    assert math.isfinite(node_out["cases"]["near the largest float (scaled)"]["high"])


def test_js_t_quantile_matches_python(node_out):
    for (p, df), got in zip(T_POINTS, node_out["t"], strict=True):
        assert math.isclose(got, t_quantile(p, df), rel_tol=1e-11), (p, df, got, t_quantile(p, df))


def test_js_compare_refuses_what_python_refuses(node_out):
    for name, (a, b) in BAD.items():
        with pytest.raises(UserError):
            compare(a, b)
        assert node_out["bad"][name] != "accepted", name
