// "Time it on your device": the paper's latency comparison (RepGhostNet vs GhostNet, fused vs training form) run
// in the reader's browser with onnxruntime-web's WebAssembly backend, one thread, batch 1, 224 px; and the shipped
// CIFAR-10 reference model classifying a few test images.
//
// Timing, the way repghost_mini does it (measure/timing.py, deploy/latency.py): interleaved rounds (A B C, A B C,
// ...), each sample the median of `runs` consecutive warm runs of one model (after `warmup` runs), medians over
// rounds, and `compare` -- a port of repghost_mini.measure.compare (Fieller's interval for a ratio of means with
// Welch's degrees of freedom, its own Student-t quantile, every sample's spread at least ROUNDING of its mean,
// samples scaled by their largest value) -- for the ratio, its 95% interval and a verdict.
//
// Query string: ?width=1.0 (default 0.5), ?rounds=20&runs=10&warmup=3, ?autorun=1 (start without a click).
// The page exposes what it did on `window.deviceLab` (logits of the reference model, samples, results).
//
// This file is also a plain ES module for node (tests/test_compare_js.py imports `compare` and `tQuantile`): it
// touches the DOM only from main().

// --- compare: a port of repghost_mini/measure/ranking.py --------------------------------------------------------

/** The smallest relative spread a sample is given (ranking.py ROUNDING). */
export const ROUNDING = 1e-12;

/** Python's math.lgamma for x > 0: Stirling's series from x = 15 on (where df/2 of a long run lands; the error
 * is the rounding of (x - 1/2) log x - x), below that Lanczos (g = 7, n = 9; relative error ~1e-15). */
function lgamma(x) {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lgamma(1 - x);
  if (x >= 15) {
    const r = 1 / x, r2 = r * r;
    const series = r * (1 / 12 - r2 * (1 / 360 - r2 * (1 / 1260 - r2 * (1 / 1680 - r2 / 1188))));
    return (x - 0.5) * (Math.log(x) - 1) - 0.5 + 0.5 * Math.log(2 * Math.PI) + series;
  }
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
    -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
    1.5056327351493116e-7];
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** statistics.NormalDist().inv_cdf(p): Wichura's AS241 (PPND16), as CPython implements it. */
function normalInvCdf(p) {
  const q = p - 0.5;
  if (Math.abs(q) <= 0.425) {
    const r = 0.180625 - q * q;
    const num = (((((((2.5090809287301226727e+3 * r + 3.3430575583588128105e+4) * r + 6.7265770927008700853e+4) * r
      + 4.5921953931549871457e+4) * r + 1.3731693765509461125e+4) * r + 1.9715909503065514427e+3) * r
      + 1.3314166789178437745e+2) * r + 3.3871328727963666080e+0) * q;
    const den = (((((((5.2264952788528545610e+3 * r + 2.8729085735721942674e+4) * r + 3.9307895800092710610e+4) * r
      + 2.1213794301586595867e+4) * r + 5.3941960214247511077e+3) * r + 6.8718700749205790830e+2) * r
      + 4.2313330701600911252e+1) * r + 1.0);
    return num / den;
  }
  let r = q <= 0 ? p : 1 - p;
  r = Math.sqrt(-Math.log(r));
  let x;
  if (r <= 5.0) {
    r -= 1.6;
    const num = ((((((7.74545014278341407640e-4 * r + 2.27238449892691845833e-2) * r + 2.41780725177450611770e-1) * r
      + 1.27045825245236838258e+0) * r + 3.64784832476320460504e+0) * r + 5.76949722146069140550e+0) * r
      + 4.63033784615654529590e+0) * r + 1.42343711074968357734e+0;
    const den = ((((((1.05075007164441684324e-9 * r + 5.47593808499534494600e-4) * r + 1.51986665636164571966e-2) * r
      + 1.48103976427480074590e-1) * r + 6.89767334985100004550e-1) * r + 1.67638483018380384940e+0) * r
      + 2.05319162663775882187e+0) * r + 1.0;
    x = num / den;
  } else {
    r -= 5.0;
    const num = ((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r + 1.24266094738807843860e-3) * r
      + 2.65321895265761230930e-2) * r + 2.96560571828504891230e-1) * r + 1.78482653991729133580e+0) * r
      + 5.46378491116411436990e+0) * r + 6.65790464350110377720e+0;
    const den = ((((((2.04426310338993978564e-15 * r + 1.42151175831644588870e-7) * r + 1.84631831751005468180e-5) * r
      + 7.86869131145613259100e-4) * r + 1.48753612908506148525e-2) * r + 1.36929880922735805310e-1) * r
      + 5.99832206555887937690e-1) * r + 1.0;
    x = num / den;
  }
  return q < 0 ? -x : x;
}

/** Regularized incomplete beta I_x(a, b), continued fraction with the modified Lentz method (ranking.py). */
function incompleteBeta(a, b, x, oneMinusX) {
  if (x <= 0) return 0;
  if (oneMinusX <= 0) return 1;
  if (x > (a + 1) / (a + b + 2)) return 1 - incompleteBeta(b, a, oneMinusX, x);
  const logFront = a * Math.log(x) + b * Math.log(oneMinusX) + lgamma(a + b) - lgamma(a) - lgamma(b) - Math.log(a);
  const tiny = 1e-300;
  let f = 1, c = 1, d = 0;
  for (let j = 1; j < 2000; j++) {
    const m = Math.floor(j / 2);
    const term = j % 2
      ? -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
      : m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
    d = 1 + term * d;
    d = 1 / (Math.abs(d) > tiny ? d : tiny);
    c = 1 + term / c;
    c = Math.abs(c) > tiny ? c : tiny;
    f *= c * d;
    if (Math.abs(c * d - 1) < 1e-15) break;
  }
  return Math.exp(logFront) / f;
}

function tUpperTail(t, df) {
  return 0.5 * incompleteBeta(df / 2, 0.5, df / (df + t * t), t * t / (df + t * t));
}

/** The p-quantile of Student's t with df (> 0, not necessarily whole) degrees of freedom (ranking.t_quantile). */
export function tQuantile(p, df) {
  if (!(p > 0 && p < 1)) throw new RangeError(`p must be strictly between 0 and 1, got ${p}.`);
  if (!(df > 0)) throw new RangeError(`df must be > 0, got ${df}.`);
  if (p < 0.5) return -tQuantile(1 - p, df);
  const q = 1 - p;
  let t = normalInvCdf(p);
  if (df === Infinity) return t;
  const logNorm = lgamma((df + 1) / 2) - lgamma(df / 2) - 0.5 * Math.log(df * Math.PI);
  for (let i = 0; i < 200; i++) {
    const density = Math.exp(logNorm - (df + 1) / 2 * Math.log1p(t * t / df));
    const step = (tUpperTail(t, df) - q) / density;
    t += step;
    if (Math.abs(step) <= 1e-12 * Math.max(1, t)) break;
  }
  return t;
}

/** numpy's float64 sum (np.add.reduce): pairwise summation with 8 accumulators, so a port of its mean and
 * variance rounds exactly like numpy does (numpy/_core/src/umath/loops_utils.h.src, pairwise_sum). */
function pairwiseSum(x, start = 0, n = x.length) {
  if (n < 8) {
    let res = -0.0;
    for (let i = start; i < start + n; i++) res += x[i];
    return res;
  }
  if (n <= 128) {
    const r = x.slice(start, start + 8);
    const whole = n - (n % 8);
    for (let i = 8; i < whole; i += 8) {
      for (let j = 0; j < 8; j++) r[j] += x[start + i + j];
    }
    let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (let i = whole; i < n; i++) res += x[start + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(x, start, n2) + pairwiseSum(x, start + n2, n - n2);
}

function mean(x) {
  return pairwiseSum(x) / x.length;  // x.mean()
}

function varianceDdof1(x) {
  // x.var(ddof=1): squared deviations from numpy's own mean, summed the same way, divided by n - 1
  const m = mean(x);
  return pairwiseSum(x.map((v) => (v - m) * (v - m))) / (x.length - 1);
}

function checkSample(values, name) {
  if (!Array.isArray(values) && !ArrayBuffer.isView(values)) {
    throw new TypeError(`${name} must be a sequence of numbers (e.g. latencies in ms).`);
  }
  const x = Array.from(values, Number);
  if (x.length < 2) {
    throw new RangeError(`${name} has ${x.length} value(s), but at least 2 per sample are needed to estimate the ` +
      'noise: run more timing rounds.');
  }
  if (x.some((v) => !Number.isFinite(v))) throw new RangeError(`${name} has non-finite values.`);
  const largest = Math.max(...x.map(Math.abs));
  const m = largest > 0 ? largest * mean(x.map((v) => v / largest)) : 0;
  if (m <= 0) throw new RangeError(`mean(${name}) is ${m}, but a ratio of means needs both means > 0.`);
  return x;
}

function varianceOfMean(x, m) {
  return Math.max(varianceDdof1(x), (ROUNDING * m) ** 2) / x.length;
}

/**
 * Ratio mean(a)/mean(b), its `confidence` interval (Fieller, Welch df) and a verdict: "lower" when the whole
 * interval is below 1, "higher" when above, "cannot rank" otherwise -- repghost_mini.measure.compare.
 */
export function compare(a, b, confidence = 0.95) {
  if (!(typeof confidence === 'number' && confidence > 0 && confidence < 1)) {
    throw new RangeError(`confidence must be a number strictly between 0 and 1, got ${confidence}.`);
  }
  let xa = checkSample(a, 'a'), xb = checkSample(b, 'b');
  const scale = Math.max(Math.max(...xa), Math.max(...xb));  // the ratio does not depend on the unit
  xa = xa.map((v) => v / scale);
  xb = xb.map((v) => v / scale);
  const meanA = mean(xa), meanB = mean(xb);
  const vA = varianceOfMean(xa, meanA), vB = varianceOfMean(xb, meanB);
  const ratio = meanA / meanB;
  const denom = vA ** 2 / (xa.length - 1) + ratio ** 4 * vB ** 2 / (xb.length - 1);
  const df = denom > 0 ? (vA + ratio ** 2 * vB) ** 2 / denom : xa.length + xb.length - 2;
  const t = tQuantile((1 + confidence) / 2, df);
  const quad = meanB ** 2 - t ** 2 * vB;
  let low, high;
  if (quad <= 0) {
    low = 0; high = Infinity;
  } else {
    const half = t * Math.sqrt(vA * quad + meanA ** 2 * vB);
    low = (meanA * meanB - half) / quad;
    high = (meanA * meanB + half) / quad;
  }
  const verdict = high < 1 ? 'lower' : low > 1 ? 'higher' : 'cannot rank';
  return { ratio, low, high, confidence, verdict, n_a: xa.length, n_b: xb.length };
}

/** Python's round(x, digits) for the comparisons below (round half to even on the decimal value). */
function pyRound(x, digits) {
  return Number(x.toFixed(digits));
}

/** Ratio, low, high as strings with 2 decimals, or more where 2 would print a bound that excludes 1 as 1.00. */
export function formatInterval(c) {
  let digits = 2;
  while (digits < 6 && ((c.verdict === 'lower' && pyRound(c.high, digits) >= 1)
    || (c.verdict === 'higher' && pyRound(c.low, digits) <= 1))) digits += 1;
  return [c.ratio, c.low, c.high].map((v) => (Number.isFinite(v) ? v.toFixed(digits) : 'inf'));
}

export function median(values) {
  const s = Array.from(values).sort((p, q) => p - q);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

// --- the page ---------------------------------------------------------------------------------------------------

const NAMES = { fused: 'RepGhostNet (fused)', unfused: 'RepGhostNet (training form)', ghostnet: 'GhostNet' };
const ORDER = ['fused', 'unfused', 'ghostnet'];
const PAIRS = [
  { key: 'repghost_vs_ghost', a: 'fused', b: 'ghostnet', label: 'RepGhostNet / GhostNet', paper: true },
  { key: 'fused_vs_unfused', a: 'fused', b: 'unfused', label: 'fused / training form', paper: false },
];
// WebAssembly SIMD (onnxruntime-web's wasm needs it): a module with one v128 function (wasm-feature-detect's test).
const SIMD_MODULE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0,
  65, 0, 253, 15, 253, 98, 11]);

const state = (globalThis.deviceLab = globalThis.deviceLab || {});

function $(id) { return document.getElementById(id); }

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function params() {
  const q = new URLSearchParams(location.search);
  const int = (name, fallback, lo, hi) => {
    const v = Number.parseInt(q.get(name), 10);
    return Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : fallback;
  };
  return {
    width: q.get('width') || null,
    rounds: int('rounds', 20, 2, 1000),
    runs: int('runs', 10, 1, 1000),
    warmup: int('warmup', 3, 0, 100),
    autorun: q.get('autorun') === '1',
  };
}

/** A sentence for the reader, in the box of one section (kind: "error", "note", "ok"). */
function say(id, text, kind = 'note') {
  const box = $(id);
  box.textContent = text;
  box.className = `dl-message dl-${kind}`;
  box.hidden = false;
  if (kind === 'error') (state.errors = state.errors || []).push(text);
}

function wasmProblem() {
  if (typeof WebAssembly !== 'object' || typeof WebAssembly.instantiate !== 'function') {
    return 'This browser cannot run WebAssembly (or it is switched off), so nothing can be timed or classified ' +
      'here: try a recent Chrome, Firefox, Safari or Edge, with WebAssembly enabled.';
  }
  if (!WebAssembly.validate(SIMD_MODULE)) {
    return 'This browser runs WebAssembly but not WebAssembly SIMD, which onnxruntime-web needs: update the ' +
      'browser (Chrome 91+, Firefox 89+, Safari 16.4+) and reload.';
  }
  return null;
}

async function fetchBytes(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new Error(`The ${what} (${url}) could not be downloaded (${err.message}): check the connection and reload.`);
  }
  if (!response.ok) {
    throw new Error(`The ${what} is missing from this site: ${url} answered HTTP ${response.status}. ` +
      'Rebuild the docs (python -m sphinx -W -b html docs docs/_build/html) and serve the built folder again.');
  }
  return new Uint8Array(await response.arrayBuffer());
}

let ortPromise = null;
function loadOrt() {
  if (!ortPromise) {
    const base = new URL('assets/ort/', import.meta.url).href;
    ortPromise = import(`${base}ort.wasm.min.mjs`).then((ort) => {
      ort.env.wasm.numThreads = 1;        // the paper's setting: one thread
      ort.env.wasm.proxy = false;         // run on this thread (no worker hop in the timings)
      ort.env.wasm.wasmPaths = base;
      ort.env.logLevel = 'error';
      return ort;
    }, (err) => {
      ortPromise = null;
      throw new Error(`onnxruntime-web could not be loaded from ${base}ort.wasm.min.mjs (${err.message}): ` +
        'the site was built without it; run `npm ci --prefix docs/device_lab` and rebuild the docs.');
    });
  }
  return ortPromise;
}

async function session(ort, bytes) {
  return ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
}

function deviceInfo(ort) {
  const nav = globalThis.navigator || {};
  return {
    userAgent: nav.userAgent,
    platform: (nav.userAgentData && nav.userAgentData.platform) || nav.platform || null,
    mobile: nav.userAgentData ? nav.userAgentData.mobile : null,
    hardwareConcurrency: nav.hardwareConcurrency ?? null,
    deviceMemoryGB: nav.deviceMemory ?? null,
    onnxruntimeWeb: ort ? ort.env.versions.web : null,
    backend: 'wasm (SIMD), 1 thread',
    crossOriginIsolated: globalThis.crossOriginIsolated ?? null,
  };
}

function fmt(x, digits = 2) { return Number.isFinite(x) ? x.toFixed(digits) : 'inf'; }

function verdictWord(v) { return v === 'lower' ? 'faster' : v === 'higher' ? 'slower' : 'cannot rank'; }

/** Comparison.sentence(nameA, nameB, lower="faster", higher="slower") of ranking.py. */
export function sentence(c, nameA, nameB) {
  const [r, lo, hi] = formatInterval(c);
  const detail = `(${r}x, ${Number((c.confidence * 100).toPrecision(6))}% CI ${lo} to ${hi})`;
  if (c.verdict === 'lower') return `${nameA} is faster than ${nameB} ${detail}`;
  if (c.verdict === 'higher') return `${nameA} is slower than ${nameB} ${detail}`;
  return `this run cannot rank ${nameA} against ${nameB} ${detail}`;
}

// --- classification ---------------------------------------------------------------------------------------------

async function pixels(url, size) {
  const blob = new Blob([await fetchBytes(url, 'CIFAR-10 image')], { type: 'image/png' });
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const canvas = document.createElement('canvas');
  canvas.width = size; canvas.height = size;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingEnabled = bitmap.width !== size;
  ctx.drawImage(bitmap, 0, 0, size, size);
  return ctx.getImageData(0, 0, size, size).data;  // RGBA
}

function softmax(logits) {
  const m = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - m));
  const s = e.reduce((p, q) => p + q, 0);
  return e.map((v) => v / s);
}

async function classify(manifest) {
  const card = manifest.classifier;
  const size = card.image_size, n = card.images.length, plane = size * size;
  const ort = await loadOrt();
  const input = new Float32Array(n * 3 * plane);
  for (let i = 0; i < n; i++) {
    const rgba = await pixels(card.images[i].file, size);
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < plane; p++) {
        input[(i * 3 + c) * plane + p] = (rgba[p * 4 + c] / 255 - card.mean[c]) / card.std[c];
      }
    }
  }
  const model = await session(ort, await fetchBytes(card.file, `reference model file`));
  const out = await model.run({ input: new ort.Tensor('float32', input, [n, 3, size, size]) });
  const data = out.output.data, k = card.class_names.length;
  const logits = [];
  for (let i = 0; i < n; i++) logits.push(Array.from(data.slice(i * k, (i + 1) * k)));
  state.logits = logits;
  state.imageFiles = card.images.map((img) => img.file);
  const grid = $('dl-classify-results');
  grid.replaceChildren();
  logits.forEach((row, i) => {
    const probs = softmax(row);
    const top = probs.map((p, j) => [p, j]).sort((p, q) => q[0] - p[0]).slice(0, 3);
    const truth = card.images[i].class;
    const list = el('ol', { class: 'dl-top3' });
    for (const [p, j] of top) {
      const name = card.class_names[j];
      list.append(el('li', { class: name === truth ? 'dl-correct' : '' }, `${name} ${(100 * p).toFixed(1)}%`));
    }
    grid.append(el('figure', { class: 'dl-image' },
      el('img', { src: card.images[i].file, alt: `CIFAR-10 test image of a ${truth}`, width: '64', height: '64' }),
      el('figcaption', {}, el('span', { class: 'dl-truth' }, `label: ${truth}`), list)));
  });
  say('dl-classify-message', `${card.model} (fused, ${card.top1}% top-1 on the ${card.top1_split}) ran on ` +
    `${n} test images in this browser; green marks the label.`, 'ok');
  state.classified = true;
}

// --- timing -----------------------------------------------------------------------------------------------------

function progress(done, total, text) {
  const bar = $('dl-progress');
  bar.max = total; bar.value = done;
  $('dl-progress-box').hidden = false;
  $('dl-progress-text').textContent = text;
}

const nextFrame = () => new Promise((resolve) => setTimeout(resolve, 0));

/** One sample: `warmup` runs, then the median (ms) of `runs` consecutive timed runs of one model. */
async function sample(model, feeds, runs, warmup) {
  for (let i = 0; i < warmup; i++) await model.run(feeds);
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await model.run(feeds);
    times.push(performance.now() - t0);
  }
  return median(times);
}

function resultsTable(result) {
  const rows = ORDER.map((key) => el('tr', {},
    el('td', {}, NAMES[key]),
    el('td', { class: 'dl-num' }, fmt(result.medians_ms[key])),
    el('td', { class: 'dl-num' }, fmt(Math.min(...result.samples_ms[key]))),
    el('td', { class: 'dl-num' }, fmt(Math.max(...result.samples_ms[key])))));
  return el('table', { class: 'dl-table' },
    el('thead', {}, el('tr', {}, el('th', {}, `model (${result.width}x)`), el('th', {}, 'median ms'),
      el('th', {}, 'fastest round'), el('th', {}, 'slowest round'))),
    el('tbody', {}, ...rows));
}

function ratiosTable(result) {
  const rows = PAIRS.map((pair) => {
    const c = result.comparisons[pair.key];
    const [r, lo, hi] = formatInterval(c);
    return el('tr', { 'data-pair': pair.key },
      el('td', {}, pair.label),
      el('td', { class: 'dl-num' }, `${r}x`),
      el('td', { class: 'dl-num' }, `${lo} to ${hi}`),
      el('td', { class: `dl-verdict dl-${c.verdict.replace(' ', '-')}` }, verdictWord(c.verdict)),
      el('td', { class: 'dl-num' }, pair.paper ? `${fmt(result.paper.ratio)}x` : '—'));
  });
  return el('table', { class: 'dl-table' },
    el('thead', {}, el('tr', {}, el('th', {}, 'ratio of mean latencies'), el('th', {}, 'this device'),
      el('th', {}, '95% CI'), el('th', {}, 'verdict'), el('th', {}, 'paper (phone, MNN)'))),
    el('tbody', {}, ...rows));
}

async function runTiming(manifest, opts, width) {
  const models = manifest.widths[width];
  const button = $('dl-run');
  button.disabled = true;
  $('dl-timing-message').hidden = true;
  $('dl-results').replaceChildren();
  state.result = null;
  try {
    progress(0, 1, 'loading onnxruntime-web ...');
    const ort = await loadOrt();
    const sessions = {};
    for (const [i, key] of ORDER.entries()) {
      progress(i, ORDER.length, `downloading ${NAMES[key]} (${(models[key].bytes / 1e6).toFixed(1)} MB) ...`);
      const bytes = await fetchBytes(models[key].file, `model file for ${NAMES[key]} ${width}x`);
      sessions[key] = await session(ort, bytes);
    }
    const size = manifest.image_size;
    const x = new Float32Array(3 * size * size);
    for (let i = 0; i < x.length; i++) x[i] = Math.random() * 2 - 1;
    const feeds = { input: new ort.Tensor('float32', x, [1, 3, size, size]) };
    const samples = Object.fromEntries(ORDER.map((k) => [k, []]));
    const total = opts.rounds * ORDER.length;
    const started = performance.now();
    for (let round = 0; round < opts.rounds; round++) {
      for (const [i, key] of ORDER.entries()) {
        progress(round * ORDER.length + i, total,
          `round ${round + 1} of ${opts.rounds}: ${NAMES[key]} (${opts.warmup} warm-up + ${opts.runs} timed runs)`);
        await nextFrame();  // let the page draw the progress between samples, never inside one
        samples[key].push(await sample(sessions[key], feeds, opts.runs, opts.warmup));
      }
    }
    progress(total, total, `done: ${opts.rounds} rounds in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const medians = Object.fromEntries(ORDER.map((k) => [k, median(samples[k])]));
    const comparisons = Object.fromEntries(PAIRS.map((p) => [p.key, compare(samples[p.a], samples[p.b])]));
    const result = {
      page: 'repghost_mini: Time it on your device',
      date: new Date().toISOString(),
      width: Number(width), batch: 1, image_size: size, threads: 1,
      rounds: opts.rounds, runs_per_sample: opts.runs, warmup_runs: opts.warmup,
      sample: 'median of the timed runs of one model in one round (ms)',
      device: deviceInfo(ort),
      models: Object.fromEntries(ORDER.map((k) => [k, { name: `${NAMES[k]} ${width}x`, file: models[k].file,
        params: models[k].params }])),
      medians_ms: medians,
      samples_ms: samples,
      comparisons: Object.fromEntries(PAIRS.map((p) => [p.key, { ...comparisons[p.key],
        verdict_word: verdictWord(comparisons[p.key].verdict),
        sentence: sentence(comparisons[p.key], `${NAMES[p.a]} ${width}x`, `${NAMES[p.b]} ${width}x`) }])),
      paper: manifest.paper.widths[width],
      library_version: manifest.library_version,
    };
    state.result = result;
    showResult(result);
  } catch (err) {
    say('dl-timing-message', err.message, 'error');
    $('dl-progress-box').hidden = true;
  } finally {
    button.disabled = false;
  }
}

function showResult(result) {
  const box = $('dl-results');
  const p = result.paper;
  box.replaceChildren(
    resultsTable(result),
    ratiosTable(result),
    el('ul', { class: 'dl-sentences' }, ...PAIRS.map((pair) => el('li', {}, result.comparisons[pair.key].sentence))),
    el('p', {}, `The paper (${p.where}) measured RepGhostNet ${result.width}x at ${p.repghostnet_ms} ms and GhostNet ` +
      `${result.width}x at ${p.ghostnet_ms} ms on an ARM phone in MNN (${fmt(p.ratio)}x). Only the ratios can be set ` +
      'beside each other: milliseconds depend on the device and the runtime.'),
    el('button', { id: 'dl-copy', type: 'button' }, 'Copy the results as JSON'),
    el('span', { id: 'dl-copy-status', class: 'dl-small', role: 'status' }),
    el('details', {}, el('summary', {}, 'the results as JSON'),
      el('pre', { id: 'dl-json' }, JSON.stringify(result, null, 1))));
  $('dl-copy').addEventListener('click', () => copyResults(result));
}

async function copyResults(result) {
  const text = JSON.stringify(result, null, 1);
  const status = $('dl-copy-status');
  try {
    if (!navigator.clipboard || !globalThis.isSecureContext) throw new Error('no clipboard API');
    await navigator.clipboard.writeText(text);
    status.textContent = ' copied.';
  } catch (err) {
    // http:// from another device is not a secure context: fall back to a selected text area
    const area = el('textarea', { readonly: '' });
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand && document.execCommand('copy');
    area.remove();
    status.textContent = ok ? ' copied.' : ' this browser does not allow copying here: open "the results as JSON" ' +
      'below and copy the text by hand.';
  }
}

// --- start --------------------------------------------------------------------------------------------------------

export async function main() {
  const opts = params();
  state.ready = false;
  state.errors = [];
  try {
    $('dl-device').textContent = `${navigator.userAgent} · ${navigator.hardwareConcurrency ?? '?'} logical cores`;
    const problem = wasmProblem();
    if (problem) {
      say('dl-timing-message', problem, 'error');
      say('dl-classify-message', problem, 'error');
      return;
    }
    let manifest;
    try {
      manifest = JSON.parse(new TextDecoder().decode(await fetchBytes('assets/manifest.json', 'list of models')));
    } catch (err) {
      say('dl-timing-message', err.message, 'error');
      return;
    }
    state.manifest = manifest;
    const widths = Object.keys(manifest.widths);
    let width = opts.width ?? manifest.default_width;
    if (!widths.includes(width)) {
      const near = widths.find((w) => Number(w) === Number(width));
      if (near) width = near;
      else {
        say('dl-timing-message', `There are no models of width ${width} on this site; the widths are ` +
          `${widths.join(', ')} (for example ?width=${widths[widths.length - 1]}).`, 'error');
        width = manifest.default_width;
      }
    }
    const select = $('dl-width');
    select.replaceChildren(...widths.map((w) => {
      const mb = ORDER.reduce((s, k) => s + manifest.widths[w][k].bytes, 0) / 1e6;
      const option = el('option', { value: w }, `${w}x (downloads ${mb.toFixed(0)} MB of models)`);
      option.selected = w === width;
      return option;
    }));
    select.addEventListener('change', () => {
      const q = new URLSearchParams(location.search);
      q.set('width', select.value);
      location.search = q.toString();
    });
    $('dl-settings').textContent = `${opts.rounds} interleaved rounds × 3 models, each sample the median of ` +
      `${opts.runs} runs after ${opts.warmup} warm-up runs (change with ?rounds=, ?runs=, ?warmup=)`;
    $('dl-paper').textContent = `${manifest.paper.widths[width].ratio.toFixed(2)}x at ${width}x ` +
      `(Table 3: ${manifest.paper.widths[width].repghostnet_ms} ms / ${manifest.paper.widths[width].ghostnet_ms} ms)`;
    $('dl-run').disabled = false;
    $('dl-run').addEventListener('click', () => runTiming(manifest, opts, width));
    state.width = width;
    state.ready = true;
    const classified = classify(manifest).catch((err) => say('dl-classify-message', err.message, 'error'));
    if (opts.autorun) {
      await classified;
      await runTiming(manifest, opts, width);
    }
  } catch (err) {
    say('dl-timing-message', `The page failed: ${err.message}`, 'error');
  }
}
