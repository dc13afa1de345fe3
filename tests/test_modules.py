"""Fig. 3 modules a-e and the bottlenecks: shapes, exact fusion of c and d into e, clear errors."""
import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import repghost_mini as r
from repghost_mini.core.modules import REPARAM_BRANCHES

ALL_BRANCH_SETS = [c for n in range(4) for c in itertools.combinations(REPARAM_BRANCHES, n)]


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("variant", list("abcde"))
@pytest.mark.parametrize("relu", [True, False])
def test_every_variant_keeps_shape(variant, relu):
    m = r.core.build_module(variant, 8, 12, relu=relu).eval()
    assert m(torch.randn(2, 8, 10, 10)).shape == (2, 12, 10, 10)


@pytest.mark.parametrize("branches", ALL_BRANCH_SETS)
@pytest.mark.parametrize("relu", [True, False])
def test_repghost_module_fuses_exactly(branches, relu):
    torch.manual_seed(0)
    m = r.randomize_bn_stats_(r.RepGhostModule(6, 10, dw_size=3, relu=relu, branches=branches)).eval()
    x = torch.randn(2, 6, 9, 9)
    e = m.double().fuse()
    assert isinstance(e, r.RepGhostInferenceModule) and r.count_batchnorms(e) == 0
    assert rel_err(e(x.double()), m(x.double())) <= 1e-12
    m32, e32 = m.float(), e.float()
    assert rel_err(e32(x), m32(x)) <= 1e-5


def test_module_c_is_identity_branch_and_fuses():
    c = r.randomize_bn_stats_(r.core.LateReLUModule(4, 4)).double().eval()
    x = torch.randn(1, 4, 6, 6, dtype=torch.float64)
    x1 = c.primary_conv(x)
    assert torch.allclose(c(x), torch.relu(x1 + c.cheap_operation(x1)))
    assert rel_err(c.fuse()(x), c(x)) <= 1e-12


def test_relu_variant_refuses_to_fuse():
    m = r.RepGhostModule(4, 4, relu_after_dw=True).eval()
    with pytest.raises(ValueError, match=r"\+ReLU"):
        m.fuse()
    net = r.repghostnet(0.5, num_classes=10, relu_after_dw=True).eval()
    with pytest.raises(ValueError, match=r"\+ReLU"):
        r.reparameterize(net)


def test_variant_b_and_a_have_no_exact_fusion():
    assert not hasattr(r.core.GhostAddModule(4, 4), "fuse")
    assert not hasattr(r.GhostModule(4, 4), "fuse")


def test_fuse_in_train_mode_is_an_error():
    with pytest.raises(RuntimeError, match="eval"):
        r.RepGhostModule(4, 4).fuse()


@pytest.mark.parametrize("bad", [dict(branches=("bn", "conv3x3")), dict(branches=("bn", "bn")), dict(dw_size=2),
                                 dict(relu=False, relu_after_dw=True)])
def test_bad_module_arguments(bad):
    with pytest.raises(ValueError):
        r.RepGhostModule(4, 4, **bad)


def test_wrong_channels_and_unknown_variant():
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 8, H, W\)"):
        r.RepGhostModule(8, 8)(torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match="unknown module variant"):
        r.core.build_module("f", 4, 4)
    with pytest.raises(ValueError, match="in_channels"):
        r.GhostModule(0, 4)
    with pytest.raises(ValueError, match="ratio"):
        r.GhostModule(4, 4, ratio=1)


def test_ghost_module_channels():
    m = r.GhostModule(8, 10, ratio=3)  # ceil(10/3)=4 intrinsic, 8 ghost channels, cut to 10
    assert m.primary_conv[0].out_channels == 4 and m.cheap_operation[0].out_channels == 8
    assert m(torch.randn(1, 8, 5, 5)).shape == (1, 10, 5, 5)


@pytest.mark.parametrize("stride,se,shortcut", [(1, 0, True), (2, 0.25, True), (1, 0.25, False), (2, 0, False)])
@pytest.mark.parametrize("cin,cout", [(16, 16), (16, 24)])
def test_bottleneck_fuses(stride, se, shortcut, cin, cout):
    b = r.randomize_bn_stats_(r.RepGhostBottleneck(cin, 12, cout, 5, stride, se, shortcut)).double().eval()
    x = torch.randn(2, cin, 8, 8, dtype=torch.float64)
    f = r.reparameterize(b)
    assert r.count_batchnorms(f) == 0
    assert rel_err(f(x), b(x)) <= 1e-12
    identity = cin == cout and stride == 1
    assert (b.shortcut is None) == (identity and not shortcut)


def test_ghost_bottleneck_bn_folds():
    b = r.randomize_bn_stats_(r.GhostBottleneck(16, 32, 24, 3, 2, 0.25)).double().eval()
    x = torch.randn(2, 16, 8, 8, dtype=torch.float64)
    f = r.reparameterize(b)
    assert r.count_batchnorms(f) == 0 and rel_err(f(x), b(x)) <= 1e-12


@settings(max_examples=15, deadline=None)
@given(cin=st.integers(1, 10), cout=st.integers(1, 10), dw=st.sampled_from([3, 5]), batch=st.integers(1, 3),
       size=st.integers(3, 10), relu=st.booleans(),
       branches=st.lists(st.sampled_from(list(REPARAM_BRANCHES)), unique=True, max_size=3), seed=st.integers(0, 999))
def test_property_module_fusion(cin, cout, dw, batch, size, relu, branches, seed):
    torch.manual_seed(seed)
    m = r.randomize_bn_stats_(r.RepGhostModule(cin, cout, dw, relu, branches), seed).double().eval()
    x = torch.randn(batch, cin, size, size, dtype=torch.float64)
    ref = m(x)
    out = m.fuse()(x)
    assert ((out - ref).abs().max() <= 1e-12 * ref.abs().max().clamp_min(1.0)).item()
