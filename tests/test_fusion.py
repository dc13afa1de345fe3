"""Fusion algebra (repghost_mini.core.fusion) against PyTorch's own conv + batch_norm, in float64 and float32."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import repghost_mini as r


def random_bn(channels, dtype=torch.float64, seed=0):
    bn = nn.BatchNorm2d(channels).to(dtype)
    return r.randomize_bn_stats_(bn, seed).eval()


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


@pytest.mark.parametrize("groups,bias", [(1, False), (1, True), (4, True), (8, False)])
def test_fold_bn_matches_conv_then_bn(groups, bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, padding=1, groups=groups, bias=bias).double()
    bn = random_bn(16)
    x = torch.randn(2, 8, 9, 9, dtype=torch.float64)
    fused = r.fold_bn_into_conv(conv, bn)
    assert rel_err(fused(x), bn(conv(x))) <= 1e-12
    k, b = r.fold_bn(conv.weight, conv.bias, bn)
    assert k.dtype == torch.float64 and b.shape == (16,)


def test_fold_bn_is_differentiable():
    conv = nn.Conv2d(3, 4, 3, bias=False).double()
    bn = random_bn(4)
    kernel = conv.weight.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda k: r.fold_bn(k, None, bn)[0].sum() + r.fold_bn(k, None, bn)[1].sum(),
                                    (kernel,))
    k, b = r.fold_bn(kernel, None, bn)
    (k.sum() + b.sum()).backward()
    assert bn.weight.grad is not None  # gradients reach gamma too


def test_fold_bn_rejects_wrong_channels():
    with pytest.raises(ValueError, match="BatchNorm has 5 channels"):
        r.fold_bn(torch.randn(4, 3, 3, 3), None, nn.BatchNorm2d(5))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_identity_kernel_reproduces_input(k):
    x = torch.randn(2, 6, 7, 7, dtype=torch.float64)
    kernel = r.core.identity_kernel(6, k, dtype=torch.float64)
    assert torch.equal(F.conv2d(x, kernel, padding=k // 2, groups=6), x)


def test_identity_kernel_needs_odd_size():
    with pytest.raises(ValueError, match="odd"):
        r.core.identity_kernel(4, 2)


def test_bn_branch_is_a_depthwise_conv():
    bn = random_bn(6)
    x = torch.randn(2, 6, 5, 5, dtype=torch.float64)
    k, b = r.core.bn_to_kernel(bn, 3)
    assert rel_err(F.conv2d(x, k, b, padding=1, groups=6), bn(x)) <= 1e-12


def test_pad_kernel_keeps_output():
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64)
    k1 = torch.randn(4, 1, 1, 1, dtype=torch.float64)
    k3 = r.core.pad_kernel(k1, 3)
    assert k3.shape == (4, 1, 3, 3) and k3.sum() == k1.sum()
    assert torch.allclose(F.conv2d(x, k3, padding=1, groups=4), F.conv2d(x, k1, groups=4), rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="centre"):
        r.core.pad_kernel(torch.randn(4, 1, 2, 2), 3)


def test_sum_branches_adds_convs():
    x = torch.randn(1, 4, 5, 5, dtype=torch.float64)
    parts = [(torch.randn(4, 1, 3, 3, dtype=torch.float64), torch.randn(4, dtype=torch.float64)) for _ in range(3)]
    k, b = r.core.sum_branches(parts)
    expected = sum(F.conv2d(x, kk, bb, padding=1, groups=4) for kk, bb in parts)
    assert rel_err(F.conv2d(x, k, b, padding=1, groups=4), expected) <= 1e-12
    with pytest.raises(ValueError, match="pad_kernel"):
        r.core.sum_branches([parts[0], (torch.randn(4, 1, 1, 1, dtype=torch.float64), parts[0][1])])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_dtype_is_preserved(dtype):
    bn = random_bn(4, dtype=dtype)
    k, b = r.core.bn_to_kernel(bn, 3)
    assert k.dtype == dtype and b.dtype == dtype
    k2, b2 = r.fold_bn(torch.randn(4, 2, 3, 3, dtype=dtype), None, bn)
    assert k2.dtype == dtype and b2.dtype == dtype


@settings(max_examples=25, deadline=None)
@given(cin_mult=st.integers(1, 3), groups=st.sampled_from([1, 2, 4]), cout_mult=st.integers(1, 3),
       k=st.sampled_from([1, 3, 5]), stride=st.integers(1, 2), batch=st.integers(1, 3), size=st.integers(5, 12),
       bias=st.booleans(), seed=st.integers(0, 10_000))
def test_property_conv_bn_fusion(cin_mult, groups, cout_mult, k, stride, batch, size, bias, seed):
    torch.manual_seed(seed)
    cin, cout = groups * cin_mult, groups * cout_mult
    conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=bias).double()
    bn = random_bn(cout, seed=seed)
    x = torch.randn(batch, cin, size, size, dtype=torch.float64)
    assert rel_err(r.fold_bn_into_conv(conv, bn)(x), bn(conv(x))) <= 1e-12


@settings(max_examples=25, deadline=None)
@given(channels=st.integers(1, 12), k=st.sampled_from([3, 5, 7]), stride=st.integers(1, 2),
       branches=st.lists(st.sampled_from(["identity", "bn", "dconv1x1"]), unique=True, max_size=3),
       batch=st.integers(1, 3), size=st.integers(4, 11), seed=st.integers(0, 10_000))
def test_property_depthwise_branches_sum(channels, k, stride, branches, batch, size, seed):
    """dw conv+BN plus any Table-6 branches == one depthwise conv, for any kernel size and stride."""
    torch.manual_seed(seed)
    dw = nn.Conv2d(channels, channels, k, stride, k // 2, groups=channels, bias=False).double()
    bn = random_bn(channels, seed=seed)
    x = torch.randn(batch, channels, size, size, dtype=torch.float64)
    ref = bn(dw(x))
    parts = [r.fold_bn(dw.weight, None, bn)]
    if "identity" in branches:
        parts.append((r.core.identity_kernel(channels, k, dtype=torch.float64),
                      torch.zeros(channels, dtype=torch.float64)))
        ref = ref + x[:, :, ::stride, ::stride]
    if "bn" in branches:
        bn2 = random_bn(channels, seed=seed + 1)
        parts.append(r.core.bn_to_kernel(bn2, k))
        ref = ref + bn2(x)[:, :, ::stride, ::stride]
    if "dconv1x1" in branches:
        c1 = nn.Conv2d(channels, channels, 1, stride, groups=channels, bias=False).double()
        bn3 = random_bn(channels, seed=seed + 2)
        kk, bb = r.fold_bn(c1.weight, None, bn3)
        parts.append((r.core.pad_kernel(kk, k), bb))
        ref = ref + bn3(c1(x))
    kernel, bias = r.core.sum_branches(parts)
    out = F.conv2d(x, kernel, bias, stride, k // 2, groups=channels)
    assert out.shape == ref.shape
    assert rel_err(out, ref) <= 1e-12


@pytest.mark.parametrize("bad", [float("nan"), -2.0, float("inf")])
def test_fold_bn_refuses_broken_running_var(bad):
    bn = nn.BatchNorm2d(4).eval()
    with torch.no_grad():
        bn.running_var[1] = bad
    with pytest.raises(ValueError, match="NaN/inf or a negative variance"):
        r.fold_bn(torch.randn(4, 2, 3, 3), None, bn)
    with pytest.raises(ValueError, match="NaN/inf or a negative variance"):
        r.fold_bn_into_conv(nn.Conv2d(2, 4, 3, bias=False), bn)
