"""Checkers of repghost_mini.teaching.exercises: accept the library's own functions, name the mistake of wrong ones."""
import pytest
import torch
import torch.nn.functional as F

import repghost_mini as r
from repghost_mini.teaching.exercises import (
    check_answer,
    check_choice,
    check_fold_bn,
    check_fuse_module_d,
    check_identity_kernel,
    check_pad_kernel,
    check_repghost_module_params,
    compare,
)


def _scale(bn, eps):
    return bn.weight / (bn.running_var + eps).sqrt()


def _bias(bias, bn):
    return torch.zeros_like(bn.running_mean) if bias is None else bias


def test_checkers_accept_the_library_functions(capsys):
    assert check_fold_bn(r.fold_bn)
    assert check_identity_kernel(r.core.identity_kernel)
    assert check_pad_kernel(r.core.pad_kernel)
    out = capsys.readouterr().out
    assert "fold_bn: all 7 cases pass" in out and "identity_kernel: all" in out and "pad_kernel: all" in out


def test_module_params_checker_accepts_correct_formula(capsys):
    def params(cin, cout, k, fused):
        if fused:  # 1x1 conv + bias, depthwise kxk + bias
            return cin * cout + cout + cout * k * k + cout
        # 1x1 conv, BN (gamma, beta), depthwise kxk, its BN, fusion BN
        return cin * cout + 2 * cout + cout * k * k + 2 * cout + 2 * cout
    assert check_repghost_module_params(params)
    with pytest.raises(AssertionError, match=r"your answer 128 is too small\..*fusion_bn") as err:
        check_repghost_module_params(lambda cin, cout, k, fused: cin * cout)
    assert "248" not in str(err.value)  # the expected count is never printed


def test_stubs_are_reported_as_not_attempted(capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError
    for checker in (check_fold_bn, check_identity_kernel, check_pad_kernel, check_repghost_module_params):
        assert checker(stub) is False
    assert capsys.readouterr().out.count("not attempted yet") == 4
    assert check_answer("Q1", None, 3) is False


def test_fold_bn_forgetting_eps():
    def no_eps(kernel, bias, bn):
        s = _scale(bn, 0.0)
        return kernel * s.reshape(-1, 1, 1, 1), bn.bias + s * (_bias(bias, bn) - bn.running_mean)
    with pytest.raises(AssertionError, match=r"kernel differs at output channel 0.*Hint: you forgot eps"):
        check_fold_bn(no_eps)


def test_fold_bn_wrong_bias_sign():
    def flipped(kernel, bias, bn):
        s = _scale(bn, bn.eps)
        return kernel * s.reshape(-1, 1, 1, 1), bn.bias + s * (bn.running_mean - _bias(bias, bn))
    with pytest.raises(AssertionError, match=r"returned bias differs at output channel 0: expected .*, got .*"
                                             r"Hint: the bias sign is flipped"):
        check_fold_bn(flipped)


def test_fold_bn_dropping_the_conv_bias():
    def no_conv_bias(kernel, bias, bn):
        s = _scale(bn, bn.eps)
        return kernel * s.reshape(-1, 1, 1, 1), bn.bias - s * bn.running_mean
    with pytest.raises(AssertionError, match="conv's own bias is missing"):
        check_fold_bn(no_conv_bias)


def test_fold_bn_in_place_and_dtype_and_arity():
    def in_place(kernel, bias, bn):
        s = _scale(bn, bn.eps).detach()
        return kernel.mul_(s.reshape(-1, 1, 1, 1)), bn.bias + s * (_bias(bias, bn) - bn.running_mean)
    with pytest.raises(AssertionError, match="changed the input kernel or bias in place"):
        check_fold_bn(in_place)

    def to_float32(kernel, bias, bn):
        k, b = r.fold_bn(kernel, bias, bn)
        return k.float(), b.float()
    with pytest.raises(AssertionError, match=r"wrong dtype: expected torch.float64 .*got torch.float32"):
        check_fold_bn(to_float32)
    with pytest.raises(AssertionError, match=r"should return a pair \(kernel, bias\)"):
        check_fold_bn(lambda kernel, bias, bn: kernel)


def test_fold_bn_ignoring_bias_none_reports_the_exception():
    def needs_bias(kernel, bias, bn):
        s = _scale(bn, bn.eps)
        return kernel * s.reshape(-1, 1, 1, 1), bn.bias + s * (bias - bn.running_mean)
    with pytest.raises(AssertionError, match=r"\[float64, 3x3 conv 4->6, bias=None\]: your function raised TypeError"):
        check_fold_bn(needs_bias)


def test_identity_kernel_off_centre():
    def corner(channels, k, dtype=torch.float32):
        kernel = torch.zeros(channels, 1, k, k, dtype=dtype)
        kernel[:, 0, 0, 0] = 1
        return kernel
    with pytest.raises(AssertionError, match=r"kernel position \(row 0, col 0\): expected 0, got 1.*"
                                             r"Hint: the 1 sits in the corner \(0, 0\); "
                                             r"it must be at the centre \(1, 1\)"):
        check_identity_kernel(corner)


def test_identity_kernel_dense_layout_and_dtype():
    with pytest.raises(AssertionError, match=r"wrong shape: expected \(4, 1, 3, 3\), got \(4, 4, 3, 3\).*depthwise"):
        check_identity_kernel(lambda c, k, dtype=torch.float32: torch.zeros(c, c, k, k, dtype=dtype))
    with pytest.raises(AssertionError, match=r"\[6 channels, 5x5, float64\].*wrong dtype"):
        check_identity_kernel(lambda c, k, dtype=torch.float32: r.core.identity_kernel(c, k))


def test_pad_kernel_not_centred():
    def top_left(kernel, k):
        extra = k - kernel.shape[-1]
        return F.pad(kernel, [0, extra, 0, extra])
    with pytest.raises(AssertionError,
                       match=r"top-left corner at \(row 0, col 0\) but must be centred, at \(row 1, col 1\)"):
        check_pad_kernel(top_left)


def test_pad_kernel_wrong_values_name_the_position():
    def repeated(kernel, k):  # broadcasts the 1x1 value over the whole 3x3 window
        return kernel.expand(*kernel.shape[:2], k, k).clone()
    with pytest.raises(AssertionError, match=r"padded kernel differs at output channel 0, input channel 0, "
                                             r"kernel position \(row 0, col 0\): expected 0, got"):
        check_pad_kernel(repeated)


def test_compare_prints_one_line_and_returns_allclose(capsys):
    a = torch.arange(6, dtype=torch.float64)
    assert compare("same", a, a.clone())
    assert compare("rounding", a + 1e-14, a)
    assert not compare("different", a + 1e-3, a)
    assert not compare("shape", a, a[:3])
    assert not compare("dtype", a.float(), a)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("|")[1:] == [" exact: True  ", " allclose: True  ", " max diff: 0.00e+00"]
    assert "exact: False | allclose: True" in lines[1]
    assert "allclose: False | max diff: 1.00e-03" in lines[2]
    assert "shape mismatch: ours (6,) vs ref (3,)" in lines[3]
    assert "dtype mismatch: ours torch.float32 vs ref torch.float64" in lines[4]
    with pytest.raises(TypeError, match="expects tensors"):
        compare("number", 1.0, a)


def test_check_answer():
    assert check_answer("Q", 100, 100)
    assert check_answer("Q", 100.5, 100, rel_tol=0.01)
    with pytest.raises(AssertionError, match="Q: not yet -- your answer 90 is slightly too small") as err:
        check_answer("Q", 90, 100)
    assert "100" not in str(err.value)


@pytest.mark.parametrize("got, expected, words", [
    (648 * 4, 648, "4x too large: a float32 number is 4 bytes"),
    (81, 648, "8x too small"),
    (-3.0, 3.0, "wrong sign"),
    (1e9, 3.0, "far too large"),
    (640, 648, "slightly too small"),
])
def test_check_answer_hints_without_the_expected_value(got, expected, words):
    with pytest.raises(AssertionError) as err:
        check_answer("Q", got, expected)
    message = str(err.value)
    assert words in message
    assert f"{expected:g}" not in message.replace(f"{got:.6g}", "")


def test_check_choice_names_why_an_option_fails(capsys):
    why = {"a": "a BN after a 1x1 dconv undoes its scale.", "c": "identity has no learned scale."}
    assert not check_choice("Q", None, "b", why)
    assert check_choice("Q", " B ", "b", why)
    with pytest.raises(AssertionError, match=r"Q: not \(a\) -- a BN after a 1x1 dconv undoes its scale\.") as err:
        check_choice("Q", "a", "b", why)
    assert "(b)" not in str(err.value)
    with pytest.raises(AssertionError, match="one of the letters a, b, c"):
        check_choice("Q", "z", "b", why)


def test_fuse_module_d_capstone_checker():
    assert check_fuse_module_d(lambda m: m.equivalent_kernel_bias())

    def dconv_only(m):
        return r.fold_bn(m.cheap_operation[0].weight, None, m.cheap_operation[1])
    with pytest.raises(AssertionError, match=r"Hint: only the dconv \+ BN branch"):
        check_fuse_module_d(dconv_only)

    def bias_sign_flipped(m):
        k, b = dconv_only(m)
        bn = m.fusion_bn[0]
        s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        return k + r.core.identity_kernel(m.out_channels, m.dw_size, dtype=k.dtype) * s.reshape(-1, 1, 1, 1), \
            b + bn.bias + s * bn.running_mean
    with pytest.raises(AssertionError, match="Hint: the BN branch's bias has the wrong sign"):
        check_fuse_module_d(bias_sign_flipped)

    def stub(m):
        raise NotImplementedError
    assert not check_fuse_module_d(stub)


def test_hidden_choice_never_shows_the_right_letter(capsys):
    from repghost_mini.teaching.exercises import answer_digest, check_hidden_choice
    why = {"a": "reason a.", "b": "reason b (never shown).", "c": "reason c."}
    digest = answer_digest("Q", "b")
    assert len(digest) == 12 and int(digest, 16) >= 0
    assert not check_hidden_choice("Q", None, digest, why)
    assert check_hidden_choice("Q", " B ", digest, why)
    with pytest.raises(AssertionError, match=r"Q: not \(a\) -- reason a\.") as err:
        check_hidden_choice("Q", "a", digest, why)
    assert "(b)" not in str(err.value) and "never shown" not in str(err.value)
    with pytest.raises(AssertionError, match="one of a, b, c"):
        check_hidden_choice("Q", "z", digest, why)


def test_bytes_moved_checker_hints_without_the_value():
    from repghost_mini.teaching.exercises import check_bytes_moved
    pairs = [((1, 8, 4, 4), (1, 8, 4, 4)), ((1, 2, 3, 3), (1, 2, 3, 3))]
    out = 2 * (16 * 16 + 4 * 9)                                  # output numbers at batch 2
    assert check_bytes_moved(pairs, 2, cat=4 * 2 * out, add_operands=4 * 1.5 * out, add_output=4 * 3 * out)
    assert not check_bytes_moved(pairs, 2)
    with pytest.raises(AssertionError, match="4x too large") as err:
        check_bytes_moved(pairs, 2, cat=16 * 2 * out)
    assert str(4 * 2 * out) not in str(err.value).replace(str(16 * 2 * out), "")
