r"""Learner-facing helpers for the notebooks: a comparison that explains, and checkers for the fusion exercises.

:func:`compare` is in the spirit of nn-zero-to-hero's ``cmp``: one line saying whether two tensors are
exactly equal, equal up to rounding, and how far apart they are.

The checkers (:func:`check_fold_bn`, :func:`check_identity_kernel`, :func:`check_pad_kernel`,
:func:`check_repghost_module_params`) call a learner's function on several cases (float64 and float32,
convs with and without bias, groups > 1, BatchNorms with randomized statistics) and compare with the
library's own :mod:`repghost_mini.core.fusion` functions. Their contract:

* correct function -> prints ``"<name>: all N cases pass"`` and returns ``True``;
* the function raises ``NotImplementedError`` (an exercise stub) -> prints ``"<name>: not attempted yet"``
  and returns ``False``, so an untouched notebook still runs green;
* anything wrong -> raises ``AssertionError`` whose message names the case and says precisely what is
  wrong: the shape, dtype or device (expected vs got), which output channel / kernel position differs with
  expected and got values, and a hint when the result matches a common mistake (forgotten ``eps``,
  flipped bias sign, off-centre one, ...).

Sec. 3.2 "Fast Inference" of the paper: every branch of a RepGhost module is turned into a
$k\times k$ depthwise kernel and a bias, then the branches are added (Eq. 2).
"""
from __future__ import annotations

import copy
import math
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.fusion import fold_bn, identity_kernel, pad_kernel
from ..core.modules import RepGhostModule
from ..core.reparam import randomize_bn_stats_
from ..measure.counting import count_params

__all__ = ["compare", "check_fold_bn", "check_identity_kernel", "check_pad_kernel",
           "check_repghost_module_params", "check_answer", "numeric_hint",
           "check_fuse_module_d", "check_choice", "check_feature_shapes", "answer_digest", "check_hidden_choice",
           "check_bytes_moved"]

#: Tolerances used by the checkers (and by :func:`compare` by default), per dtype: (rtol, atol).
TOLERANCES = {torch.float64: (1e-10, 1e-12), torch.float32: (1e-5, 1e-6), torch.float16: (1e-3, 1e-4),
              torch.bfloat16: (1e-2, 1e-3)}


def _tolerances(dtype: torch.dtype, rtol: Optional[float], atol: Optional[float]) -> Tuple[float, float]:
    default = TOLERANCES.get(dtype, (1e-5, 1e-6))
    return (default[0] if rtol is None else rtol, default[1] if atol is None else atol)


def compare(name: str, ours: Tensor, ref: Tensor, rtol: Optional[float] = None, atol: Optional[float] = None) -> bool:
    """Print ``"name | exact: bool | allclose: bool | max diff: x"`` and return the allclose result.

    ``rtol``/``atol`` default to :data:`TOLERANCES` for the dtype (float64: 1e-10 / 1e-12, float32: 1e-5 /
    1e-6). A shape, dtype or device mismatch prints what differs instead and returns ``False``.
    """
    for label, t in (("ours", ours), ("ref", ref)):
        if not isinstance(t, Tensor):
            raise TypeError(f"compare({name!r}, ...) expects tensors, but {label} is a {type(t).__name__}; "
                            "wrap numbers with torch.tensor(...) first.")
    ours, ref = ours.detach(), ref.detach()
    problem = None
    if ours.shape != ref.shape:
        problem = f"shape mismatch: ours {tuple(ours.shape)} vs ref {tuple(ref.shape)}"
    elif ours.dtype != ref.dtype:
        problem = (f"dtype mismatch: ours {ours.dtype} vs ref {ref.dtype} (cast one with .to(other.dtype) "
                   "to compare values)")
    elif ours.device != ref.device:
        problem = f"device mismatch: ours on {ours.device} vs ref on {ref.device}"
    if problem is not None:
        print(f"{name:<34} | {problem}")
        return False
    r, a = _tolerances(ref.dtype, rtol, atol)
    exact = bool(torch.equal(ours, ref))
    close = bool(torch.allclose(ours, ref, rtol=r, atol=a))
    diff = (ours.double() - ref.double()).abs().max().item() if ref.numel() else 0.0
    print(f"{name:<34} | exact: {exact!s:<5} | allclose: {close!s:<5} | max diff: {diff:.2e}")
    return close


# ----------------------------------------------------------------------------------------------- internals
class _NotAttempted(Exception):
    pass


def _call(fn: Callable, name: str, case: str, *args, **kwargs):
    """Call the learner's function; a NotImplementedError means 'not attempted', other errors are reported."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise _NotAttempted() from None
    except Exception as err:  # the learner's bug: say where it happened
        raise AssertionError(f"{name} [{case}]: your function raised {type(err).__name__}: {err}") from err


def _run(name: str, cases: Sequence[Tuple[str, Callable[[], None]]]) -> bool:
    try:
        for _, run_case in cases:
            run_case()
    except _NotAttempted:
        print(f"{name}: not attempted yet (the function raises NotImplementedError) -- fill it in and re-run.")
        return False
    print(f"{name}: all {len(cases)} cases pass")
    return True


def _describe_position(index: Tuple[int, ...], axes: Sequence[str]) -> str:
    parts = [f"{axis} {i}" for axis, i in zip(axes, index, strict=False)]
    if len(index) == 4:  # kernel: (out, in, row, col)
        parts = parts[:2] + [f"kernel position (row {index[2]}, col {index[3]})"]
    return ", ".join(parts)


def _check_tensor(name: str, case: str, what: str, got, expected: Tensor, axes: Sequence[str],
                  hints: Sequence[Tuple[str, Tensor]] = ()) -> None:
    """Raise AssertionError saying precisely how ``got`` differs from ``expected`` (type, shape, dtype, values)."""
    where = f"{name} [{case}]: {what}"
    if not isinstance(got, Tensor):
        raise AssertionError(f"{where} should be a torch.Tensor, got {type(got).__name__}.")
    if got.shape != expected.shape:
        raise AssertionError(f"{where} has the wrong shape: expected {tuple(expected.shape)}, got {tuple(got.shape)}.")
    if got.dtype != expected.dtype:
        raise AssertionError(f"{where} has the wrong dtype: expected {expected.dtype} (the dtype of the inputs), got "
                             f"{got.dtype}; build new tensors with dtype=... / .to(kernel) instead of the default.")
    if got.device != expected.device:
        raise AssertionError(f"{where} is on the wrong device: expected {expected.device}, got {got.device}.")
    got = got.detach()
    rtol, atol = _tolerances(expected.dtype, None, None)
    bad = ~torch.isclose(got, expected, rtol=rtol, atol=atol)
    if not bad.any():
        return
    index = tuple(int(i) for i in bad.nonzero()[0])
    channels = sorted({int(i) for i in bad.nonzero()[:, 0]})
    shown = ", ".join(map(str, channels[:8])) + (", ..." if len(channels) > 8 else "")
    msg = (f"{where} differs at {_describe_position(index, axes)}: expected {expected[index].item():.6g}, got "
           f"{got[index].item():.6g} ({int(bad.sum())} of {bad.numel()} entries differ, in {axes[0]}s [{shown}]; "
           f"max |diff| {(got - expected).abs().max().item():.3g}).")
    for hint, candidate in hints:
        if candidate.shape == got.shape and torch.allclose(got, candidate.to(got), rtol=rtol, atol=atol):
            msg += f" Hint: {hint}"
            break
    raise AssertionError(msg)


def _random_bn(channels: int, dtype: torch.dtype, seed: int, eps: float = 1e-5) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels, eps=eps).to(dtype)
    return randomize_bn_stats_(bn, seed).eval()


# ------------------------------------------------------------------------------------------------ fold_bn
def _fold_bn_hints(kernel: Tensor, bias: Optional[Tensor], bn: nn.BatchNorm2d, part: int):
    """Results of common wrong fold_bn implementations, to name the mistake when the learner's matches one."""
    mean, var = bn.running_mean.to(kernel), bn.running_var.to(kernel)
    gamma, beta = bn.weight.detach().to(kernel), bn.bias.detach().to(kernel)
    b = bias if bias is not None else torch.zeros_like(mean)
    std = (var + bn.eps).sqrt()
    scale = gamma / std

    def pack(k_scale, b_new):
        return (kernel * k_scale.reshape(-1, 1, 1, 1), b_new)[part]

    return [
        ("you forgot eps: divide by sqrt(running_var + eps), not sqrt(running_var).",
         pack(gamma / var.sqrt(), beta + gamma / var.sqrt() * (b - mean))),
        ("you forgot the square root: the BN scale is gamma / sqrt(running_var + eps).",
         pack(gamma / (var + bn.eps), beta + gamma / (var + bn.eps) * (b - mean))),
        ("the bias sign is flipped: b' = beta + scale * (b - mean), so the mean is subtracted.",
         pack(scale, beta + scale * (mean - b))),
        ("the bias sign is flipped: b' = beta + scale * (b - mean), so the mean is subtracted.",
         pack(scale, beta - scale * (b - mean))),
        ("the conv's own bias is missing: it passes through BN too, b' = beta + scale * (b - mean).",
         pack(scale, beta - scale * mean)),
        ("the conv bias is not scaled: b' = beta + scale * (b - mean), not beta + b - scale * mean.",
         pack(scale, beta + b - scale * mean)),
        ("beta is missing from the bias: b' = beta + scale * (b - mean).", pack(scale, scale * (b - mean))),
        ("the scale uses the std, not gamma / std: the scale is gamma / sqrt(running_var + eps).",
         pack(1 / std, beta + (b - mean) / std)),
    ]


def check_fold_bn(fn: Callable) -> bool:
    r"""Check ``fn(kernel, bias, bn) -> (kernel', bias')`` against :func:`repghost_mini.fold_bn`.

    $W'_c = \frac{\gamma_c}{\sqrt{\sigma_c^2+\epsilon}} W_c$,
    $b'_c = \beta_c + \frac{\gamma_c}{\sqrt{\sigma_c^2+\epsilon}}(b_c-\mu_c)$.
    Cases: dense 3x3 conv with and without bias (``bias=None``), a grouped and a depthwise conv, BN with
    ``eps=1e-3`` and tiny variances, float32. Also checks that the inputs are not modified in place.
    See the module docstring for the pass / not attempted / AssertionError contract.
    """
    name = "fold_bn"
    axes = ("output channel", "input channel")

    def case(label: str, c_out: int, c_in_per_group: int, k: int, with_bias: bool, dtype: torch.dtype, seed: int,
             eps: float = 1e-5, tiny_var: bool = False):
        def run() -> None:
            g = torch.Generator().manual_seed(seed)
            kernel = torch.randn(c_out, c_in_per_group, k, k, generator=g, dtype=torch.float64).to(dtype)
            bias = torch.randn(c_out, generator=g, dtype=torch.float64).to(dtype) if with_bias else None
            bn = _random_bn(c_out, dtype, seed, eps)
            if tiny_var:
                with torch.no_grad():
                    bn.running_var.mul_(1e-3)
            kernel_before, bias_before = kernel.clone(), None if bias is None else bias.clone()
            bn_before = {key: v.clone() for key, v in bn.state_dict().items()}
            got = _call(fn, name, label, kernel, bias, bn)
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                length = f" of length {len(got)}" if isinstance(got, (tuple, list)) else ""
                raise AssertionError(f"{name} [{label}]: should return a pair (kernel, bias), got "
                                     f"{type(got).__name__}{length}.")
            if not torch.equal(kernel, kernel_before) or (bias is not None and not torch.equal(bias, bias_before)):
                raise AssertionError(f"{name} [{label}]: your function changed the input kernel or bias in place "
                                     "(e.g. kernel *= scale); return new tensors instead (kernel * scale).")
            if any(not torch.equal(v, bn.state_dict()[key]) for key, v in bn_before.items()):
                raise AssertionError(f"{name} [{label}]: your function changed the BatchNorm's parameters or "
                                     "statistics; folding must only read them.")
            exp_k, exp_b = fold_bn(kernel, bias, bn)
            exp_k, exp_b = exp_k.detach(), exp_b.detach()
            _check_tensor(name, label, "the returned kernel", got[0], exp_k, axes,
                          _fold_bn_hints(kernel, bias, bn, 0))
            _check_tensor(name, label, "the returned bias", got[1], exp_b, axes[:1],
                          _fold_bn_hints(kernel, bias, bn, 1))
        return label, run

    cases = [
        case("float64, 3x3 conv 4->6 with bias", 6, 4, 3, True, torch.float64, 0),
        case("float64, 3x3 conv 4->6, bias=None", 6, 4, 3, False, torch.float64, 1),
        case("float64, grouped 3x3 conv 8->6, groups=2, bias=None", 6, 4, 3, False, torch.float64, 2),
        case("float64, depthwise 5x5 conv on 8 channels with bias", 8, 1, 5, True, torch.float64, 3),
        case("float64, 1x1 conv, BN with eps=1e-3 and tiny running_var", 5, 3, 1, True, torch.float64, 4,
             eps=1e-3, tiny_var=True),
        case("float32, 3x3 conv 3->16 with bias", 16, 3, 3, True, torch.float32, 5),
        case("float32, depthwise 3x3 conv on 16 channels, bias=None", 16, 1, 3, False, torch.float32, 6),
    ]
    return _run(name, cases)


# ---------------------------------------------------------------------------------------- identity_kernel
def check_identity_kernel(fn: Callable) -> bool:
    """Check ``fn(channels, kernel_size, dtype=...) -> (C, 1, k, k)`` against
    :func:`repghost_mini.core.identity_kernel`.

    Also checks the lesson itself: a depthwise conv (``groups=C``, ``padding=k // 2``) with the kernel returns
    its input. Cases: k = 1, 3, 5, 7, float32 and float64. Contract as in the module docstring.
    """
    name = "identity_kernel"
    axes = ("output channel", "input channel")

    def case(channels: int, k: int, dtype: torch.dtype):
        label = f"{channels} channels, {k}x{k}, {str(dtype).replace('torch.', '')}"

        def run() -> None:
            got = _call(fn, name, label, channels, k, dtype=dtype)
            expected = identity_kernel(channels, k, dtype=dtype)
            if isinstance(got, Tensor) and channels > 1 and got.shape == (channels, channels, k, k):
                raise AssertionError(
                    f"{name} [{label}]: the kernel has the wrong shape: expected {tuple(expected.shape)}, got "
                    f"{tuple(got.shape)}. That is the dense layout; a depthwise conv (groups=C) sees 1 input "
                    "channel per group, so the second dimension is C_in / groups = 1.")
            hints = []
            if k > 1:
                corner = torch.zeros_like(expected)
                corner[:, 0, 0, 0] = 1
                hints.append((f"the 1 sits in the corner (0, 0); it must be at the centre ({k // 2}, {k // 2}) so "
                              f"that with padding {k // 2} output pixel (i, j) reads input pixel (i, j).", corner))
                hints.append(("every kernel entry is 1: that sums a neighbourhood (a box blur); only the centre "
                              "entry may be 1.", torch.ones_like(expected)))
            _check_tensor(name, label, "the kernel", got, expected, axes, hints)
            x = torch.randn(2, channels, 6, 6, generator=torch.Generator().manual_seed(k), dtype=torch.float64)
            y = F.conv2d(x.to(dtype), got.detach(), padding=k // 2, groups=channels)
            if not torch.equal(y, x.to(dtype)):
                raise AssertionError(f"{name} [{label}]: a depthwise conv with your kernel does not return its input "
                                     f"(max |diff| {(y - x.to(dtype)).abs().max().item():.3g}).")
        return label, run

    cases = [case(4, 3, torch.float32), case(2, 1, torch.float32), case(6, 5, torch.float64),
             case(3, 7, torch.float64), case(16, 3, torch.float64)]
    return _run(name, cases)


# --------------------------------------------------------------------------------------------- pad_kernel
def check_pad_kernel(fn: Callable) -> bool:
    """Check ``fn(kernel, kernel_size) -> padded kernel`` against :func:`repghost_mini.core.pad_kernel`.

    The small kernel must sit at the centre, surrounded by zeros, so that a conv with padding
    ``kernel_size // 2`` equals the small conv with padding ``k0 // 2``. Cases: 1x1 -> 3x3 (dense and depthwise),
    3x3 -> 5x5, 1x1 -> 5x5, 3x3 -> 3x3 (no-op), float32 and float64. Contract as in the module docstring.
    """
    name = "pad_kernel"
    axes = ("output channel", "input channel")

    def case(c_out: int, c_in: int, k0: int, k: int, dtype: torch.dtype, seed: int):
        label = f"({c_out}, {c_in}, {k0}, {k0}) -> {k}x{k}, {str(dtype).replace('torch.', '')}"

        def run() -> None:
            g = torch.Generator().manual_seed(seed)
            kernel = torch.randn(c_out, c_in, k0, k0, generator=g, dtype=torch.float64).to(dtype)
            before = kernel.clone()
            got = _call(fn, name, label, kernel, k)
            if not torch.equal(kernel, before):
                raise AssertionError(f"{name} [{label}]: your function changed the input kernel in place; return a "
                                     "new tensor.")
            expected = pad_kernel(kernel, k)
            if isinstance(got, Tensor) and got.shape == expected.shape and got.dtype == expected.dtype:
                p = (k - k0) // 2
                for i in range(k - k0 + 1):
                    for j in range(k - k0 + 1):
                        if (i, j) == (p, p):
                            continue
                        candidate = torch.zeros_like(expected)
                        candidate[..., i:i + k0, j:j + k0] = kernel
                        if torch.equal(got.detach(), candidate):
                            raise AssertionError(
                                f"{name} [{label}]: the {k0}x{k0} kernel is placed with its top-left corner at "
                                f"(row {i}, col {j}) but must be centred, at (row {p}, col {p}): pad (k - k0) // 2 "
                                f"= {p} zeros on every side, e.g. F.pad(kernel, [{p}, {p}, {p}, {p}]).")
            _check_tensor(name, label, "the padded kernel", got, expected, axes)
        return label, run

    cases = [case(6, 4, 1, 3, torch.float64, 0), case(8, 1, 1, 3, torch.float64, 1), case(4, 4, 3, 5, torch.float64, 2),
             case(3, 2, 1, 5, torch.float32, 3), case(5, 5, 3, 3, torch.float32, 4)]
    return _run(name, cases)


# ------------------------------------------------------------------------------ parameter-count exercise
def check_repghost_module_params(fn: Callable) -> bool:
    """Check ``fn(in_channels, out_channels, dw_size, fused) -> int``: parameters of a RepGhost module.

    ``fused=False``: module d of Fig. 3 (training form, ``branches=("bn",)``); ``fused=True``: module e.
    Compared with :func:`repghost_mini.count_params` of the real modules; a wrong answer lists the module's
    parameter tensors so you can see which part you missed. Contract as in the module docstring.
    """
    name = "repghost_module_params"

    def case(cin: int, cout: int, k: int, fused: bool):
        label = f"in={cin}, out={cout}, dw_size={k}, fused={fused}"

        def run() -> None:
            got = _call(fn, name, label, cin, cout, k, fused)
            module = RepGhostModule(cin, cout, k).eval()
            if fused:
                module = module.fuse()
            expected = count_params(module)
            if isinstance(got, bool) or not isinstance(got, int) and not (isinstance(got, Tensor) and got.numel() == 1):
                raise AssertionError(f"{name} [{label}]: should return an int, got {type(got).__name__}.")
            if int(got) != expected:
                parts = ", ".join(n for n, _ in module.named_parameters())
                raise AssertionError(f"{name} [{label}]: {numeric_hint(int(got), expected)} Count every "
                                     f"parameter tensor of the module: {parts}.")
        return label, run

    cases = [case(c, o, k, f) for c, o, k in ((16, 8, 3), (24, 36, 3), (40, 120, 5)) for f in (False, True)]
    return _run(name, cases)


#: Factors a wrong answer is often off by, with what they usually mean (checked in this order).
_FACTOR_HINTS = ((4.0, "a float32 number is 4 bytes: did you mix up elements and bytes?"),
                 (8.0, "a byte is 8 bits: did you mix up bits and bytes?"),
                 (1024.0, "1 KiB = 1024 bytes, 1 MiB = 1024^2 bytes: check the unit."),
                 (1000.0, "check the unit (k, M, G are factors of 1000)."),
                 (1e6, "check the unit (k, M, G are factors of 1000)."),
                 (100.0, "a percentage is 100 x a fraction: check which one is asked for."),
                 (2.0, "did you count both operands / both halves, or one too many?"),
                 (3.0, "check how many tensors are read and written."),
                 (1.5, "check how many tensors are read and written."))


def numeric_hint(got: float, expected: float) -> str:
    """One sentence about how ``got`` differs from ``expected`` without revealing ``expected``: the sign, a
    common factor (units, bytes per float, both operands) or just "too large" / "too small"."""
    if expected == 0:
        return f"your answer {got:.6g} should be zero."
    if got == 0:
        return "your answer is 0, but the right one is not."
    if (got > 0) != (expected > 0):
        return f"your answer {got:.6g} has the wrong sign."
    ratio = got / expected
    for factor, why in _FACTOR_HINTS:
        for r, word in ((factor, "large"), (1 / factor, "small")):
            if abs(ratio / r - 1) < 0.01:
                return f"your answer {got:.6g} is about {factor:g}x too {word}: {why}"
    size = "large" if ratio > 1 else "small"
    how = "slightly " if abs(ratio - 1) < 0.1 else ("far " if max(ratio, 1 / ratio) > 10 else "")
    return f"your answer {got:.6g} is {how}too {size}."


def check_answer(question: str, got, expected, rel_tol: float = 0.0) -> bool:
    """Check a numeric answer: ``None`` -> "not attempted yet" (returns False); right -> prints "correct" and
    returns True; wrong -> AssertionError with a hint from :func:`numeric_hint` (too large / too small, off by a
    common factor such as 4 bytes per float32), never the expected value itself.

    ``rel_tol`` allows a relative error (e.g. 0.01 for "to 1%"); 0 means the answer must be equal.
    """
    if got is None:
        print(f"{question}: not attempted yet -- replace None with your answer and re-run.")
        return False
    if isinstance(got, Tensor):
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        raise AssertionError(f"{question}: the answer should be a number, got {type(got).__name__}.")
    if abs(got - expected) > rel_tol * abs(expected):
        tol = f" (answers within {100 * rel_tol:g}% count as right)" if rel_tol else ""
        raise AssertionError(f"{question}: not yet -- {numeric_hint(got, expected)}{tol}")
    print(f"{question}: correct")
    return True


# ------------------------------------------------------------------------------- capstone: fuse module d
def _fuse_d_hints(module: RepGhostModule) -> List[Tuple[str, Tuple[Tensor, Tensor]]]:
    """(kernel, bias) of common wrong fusions of module d, each with the sentence that names the mistake."""
    dw, dw_bn = module.cheap_operation[0], module.cheap_operation[1]
    C, k = module.out_channels, module.dw_size
    w = dw.weight.detach()
    k_dw, b_dw = fold_bn(w, None, dw_bn)
    hints = [("only the dconv + BN branch is there: add the re-parameterization branches (Eq. 2).", (k_dw, b_dw)),
             ("the dconv's own BatchNorm is not folded: fold it into the dconv kernel first (fold_bn).",
              (w, torch.zeros(C, dtype=w.dtype)))]
    if module.fusion_bn is not None:
        bn = module.fusion_bn[0]
        gamma, beta, mean, var = bn.weight.detach(), bn.bias.detach(), bn.running_mean, bn.running_var
        s = gamma / torch.sqrt(var + bn.eps)
        one_hot = identity_kernel(C, k, dtype=w.dtype)
        corner = torch.zeros_like(one_hot)
        corner[:, 0, 0, 0] = s
        s_no_eps = gamma / var.sqrt()
        hints += [
            ("the BN branch was added as a plain identity: its kernel is the one-hot kernel scaled by "
             "s = gamma / sqrt(running_var + eps).", (k_dw + one_hot, b_dw + beta - s * mean)),
            ("the BN branch's kernel is there but its bias beta - s * mean is missing.",
             (k_dw + one_hot * s.reshape(-1, 1, 1, 1), b_dw)),
            ("the BN branch's bias has the wrong sign: it is beta - s * mean.",
             (k_dw + one_hot * s.reshape(-1, 1, 1, 1), b_dw + beta + s * mean)),
            ("the BN branch's s sits in the corner of the kernel; it must be at the centre.",
             (k_dw + corner, b_dw + beta - s * mean)),
            ("you forgot eps in the BN branch: s = gamma / sqrt(running_var + eps).",
             (k_dw + one_hot * s_no_eps.reshape(-1, 1, 1, 1), b_dw + beta - s_no_eps * mean)),
        ]
    return [(h, (kk.detach(), bb.detach())) for h, (kk, bb) in hints]


def _module_d_cases():
    """(label, module d in eval mode with randomized BN statistics) for the capstone checker."""
    specs = [("module d (branches=('bn',)), 3x3, float64", ("bn",), 3, torch.float64, 0),
             ("module d, 5x5 depthwise, float64", ("bn",), 5, torch.float64, 1),
             ("module d, float32", ("bn",), 3, torch.float32, 2),
             ("all Table 6 branches (identity, bn, dconv1x1), float64", ("identity", "bn", "dconv1x1"), 3,
              torch.float64, 3)]
    for label, branches, k, dtype, seed in specs:
        torch.manual_seed(seed)
        module = RepGhostModule(6, 8, dw_size=k, branches=branches).to(dtype)
        randomize_bn_stats_(module, seed)
        yield label, module.eval()


def check_fuse_module_d(fn: Callable) -> bool:
    r"""Capstone (Sec. 3.2, Eq. 2): check ``fn(module) -> (kernel, bias)``, the learner's fusion of a
    :class:`RepGhostModule` (module d, eval mode) into the one depthwise conv of module e.

    ``kernel`` must have shape ``(C, 1, k, k)`` and ``bias`` ``(C,)``, with the module's dtype. The checker compares
    them with the depthwise conv of ``module.fuse()`` (module e), then builds module e from them and compares its
    output with module d's. Cases: the paper's module d (``branches=("bn",)``) at 3x3 and 5x5, in float64 and
    float32, and a module with all three Table 6 branches. A wrong result names the mistake when it matches a
    common one (BN branch missing, added as identity, bias missing or sign flipped, eps forgotten, dconv's BN not
    folded). Contract as in the module docstring.
    """
    name = "fuse_module_d"
    axes = ("output channel", "input channel")

    def case(label: str, module: RepGhostModule):
        def run() -> None:
            before = {key: v.clone() for key, v in module.state_dict().items()}
            got = _call(fn, name, label, module)
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise AssertionError(f"{name} [{label}]: should return a pair (kernel, bias), got "
                                     f"{type(got).__name__}.")
            if any(not torch.equal(v, module.state_dict()[key]) for key, v in before.items()):
                raise AssertionError(f"{name} [{label}]: your function changed the module's weights or BN "
                                     "statistics; fusion must only read them.")
            fused = module.fuse()
            exp_k = fused.cheap_operation.weight.detach()
            exp_b = fused.cheap_operation.bias.detach()
            hints = _fuse_d_hints(module)
            _check_tensor(name, label, "the fused kernel", got[0], exp_k, axes,
                          [(h, kb[0]) for h, kb in hints if not torch.allclose(kb[0], exp_k)])
            _check_tensor(name, label, "the fused bias", got[1], exp_b, axes[:1],
                          [(h, kb[1]) for h, kb in hints if not torch.allclose(kb[1], exp_b)])
            mine = copy.deepcopy(fused)
            with torch.no_grad():
                mine.cheap_operation.weight.copy_(got[0])
                mine.cheap_operation.bias.copy_(got[1])
            x = torch.randn(2, module.in_channels, 7, 7, generator=torch.Generator().manual_seed(0),
                            dtype=torch.float64).to(exp_k.dtype)
            with torch.no_grad():
                ref, out = module(x), mine(x)
            r, a = _tolerances(ref.dtype, None, None)
            if not torch.allclose(out, ref, rtol=10 * r, atol=10 * a):
                raise AssertionError(f"{name} [{label}]: module e built from your kernel and bias does not match "
                                     f"module d (max |diff| {(out - ref).abs().max().item():.3g}).")
        return label, run

    return _run(name, [case(label, m) for label, m in _module_d_cases()])


def check_choice(question: str, got: Optional[str], correct: str, why_not: dict) -> bool:
    """Check a multiple-choice answer (a letter): ``None`` -> "not attempted yet"; right -> "correct";
    wrong -> AssertionError with the reason that option fails (``why_not[option]``), never the right letter."""
    if got is None:
        print(f"{question}: not attempted yet -- replace None with a letter and re-run.")
        return False
    options = sorted(set(why_not) | {correct})
    if not isinstance(got, str) or got.strip().lower() not in options:
        raise AssertionError(f"{question}: answer with one of the letters {', '.join(options)} (a string), "
                             f"got {got!r}.")
    got = got.strip().lower()
    if got != correct:
        raise AssertionError(f"{question}: not ({got}) -- {why_not[got]}")
    print(f"{question}: correct")
    return True


def answer_digest(question: str, letter: str) -> str:
    """A short fingerprint of the right ``letter`` of ``question`` (first 12 hex digits of a SHA-256), for
    :func:`check_hidden_choice`: a notebook can then check a multiple-choice answer without writing the letter."""
    import hashlib

    return hashlib.sha256(f"{question}|{letter.strip().lower()}".encode()).hexdigest()[:12]


def check_hidden_choice(question: str, got: Optional[str], digest: str, why_not: dict) -> bool:
    """:func:`check_choice` whose right letter is not written in the exercise cell: ``digest`` is
    :func:`answer_digest` of it, and ``why_not`` holds a reason for *every* option (the right one's is never
    shown), so neither the cell nor the list of reasons gives the answer away."""
    if got is None:
        print(f"{question}: not attempted yet -- replace None with one of {', '.join(sorted(why_not))} and re-run.")
        return False
    options = sorted(why_not)
    if not isinstance(got, str) or got.strip().lower() not in options:
        raise AssertionError(f"{question}: answer with one of {', '.join(options)} (a string), got {got!r}.")
    got = got.strip().lower()
    if answer_digest(question, got) != digest:
        raise AssertionError(f"{question}: not ({got}) -- {why_not[got]}")
    print(f"{question}: correct")
    return True


def check_bytes_moved(pairs, batch_size: int, cat=None, add_operands=None, add_output=None,
                      bytes_per_number: int = 4) -> bool:
    r"""Check the bytes read plus written by all ``pairs``' concatenations and adds at ``batch_size`` (notebook 01).

    ``pairs`` are ``(shape_x1, shape_x2)`` as from :func:`repghost_mini.measure.ghostnet_concat_shapes` (batch
    dimension replaced by ``batch_size``). The expected totals are counted from the tensors each statement of
    :func:`repghost_mini.measure.time_concat_vs_add` reads and writes, never printed: ``cat`` (``torch.cat`` of
    x1, x2), ``add_operands`` (``x1 + x2``) and ``add_output`` (an add of two tensors of the concatenated shape).
    Each answer goes through :func:`check_answer` (hints such as "4x too large"). Returns True when all three
    are right; ``None`` answers count as not attempted.
    """
    def numbers(shape):
        return batch_size * math.prod(shape[1:])

    expected = {"cat": 0, "add_operands": 0, "add_output": 0}
    for s1, s2 in pairs:
        x1, x2 = numbers(s1), numbers(s2)
        out = x1 + x2
        expected["cat"] += x1 + x2 + out                   # read both inputs, write the output
        expected["add_operands"] += x1 + x2 + x1           # read both inputs, write one of their shape
        expected["add_output"] += 2 * out + out            # read two output-shaped tensors, write one
    got = {"cat": cat, "add_operands": add_operands, "add_output": add_output}
    labels = {"cat": "cat bytes", "add_operands": "add(x1, x2) bytes", "add_output": "output-shape add bytes"}
    results = [check_answer(f"bytes moved at batch {batch_size}, {labels[k]}", got[k], bytes_per_number * v)
               for k, v in expected.items()]
    return all(results)


def check_feature_shapes(fn: Callable) -> bool:
    """Check ``fn(height, width, feature_info) -> [(C, H_i, W_i), ...]``: the maps ``features_only`` returns.

    Compared with a real :class:`~repghost_mini.core.networks.FeatureNet` run on ``(1, 3, height, width)``, for odd
    and even sizes, several widths and ``small_input``; a wrong answer names the map and what is off (channels
    or spatial size, with a hint on rounding) without giving the expected shape away.
    """
    from ..core.networks import repghostnet
    name = "feature_shapes"

    def case(width: float, h: int, w: int, small: bool):
        label = f"width={width}, {h}x{w}" + (", small_input" if small else "")

        def run() -> None:
            feats = repghostnet(width, features_only=True, out_indices=range(5), small_input=small).eval()
            with torch.no_grad():
                expected = [tuple(m.shape[1:]) for m in feats(torch.zeros(1, 3, h, w))]
            got = _call(fn, name, label, h, w, feats.feature_info)
            if not isinstance(got, (list, tuple)) or len(got) != len(expected):
                raise AssertionError(f"{name} [{label}]: return one (C, H, W) tuple per entry of feature_info "
                                     f"({len(expected)} entries).")
            for i, (g, e, info) in enumerate(zip(got, expected, feats.feature_info, strict=True)):
                g = tuple(int(v) for v in g)
                if len(g) != 3 or g[0] != e[0]:
                    raise AssertionError(f"{name} [{label}]: map {i} has the wrong channel count -- read it from "
                                         "feature_info's num_chs.")
                if g[1:] != e[1:]:
                    hint = ("off by one: each stride-2 conv with padding k // 2 rounds *up*, so use ceil, not floor"
                            if all(abs(a - b) <= 1 for a, b in zip(g[1:], e[1:], strict=True)) else
                            "divide the image size by the map's reduction (its total stride)")
                    raise AssertionError(f"{name} [{label}]: map {i} (reduction {info['reduction']}) has the wrong "
                                         f"spatial size: {hint}.")
        return label, run

    cases = [case(wd, h, w, s) for wd, h, w, s in ((1.0, 64, 96, False), (0.5, 75, 101, False),
                                                   (1.3, 33, 47, True))]
    return _run(name, cases)
