"""RepGhostNet / GhostNet: Table 2 structure, fused == unfused for every width and variant, reparameterize rules."""
import pytest
import torch
from torch import nn

import repghost_mini as r


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def test_table2_structure_at_width_1():
    net = r.repghostnet(1.0)
    rows = [(b.ghost1.out_channels, b.out_channels, b.se is not None, b.stride)
            for stage in net.blocks[:-1] for b in stage]
    assert rows == [(8, 16, False, 1), (24, 24, False, 2), (36, 24, False, 1), (36, 40, True, 2), (60, 40, True, 1),
                    (120, 80, False, 2), (100, 80, False, 1), (120, 80, False, 1), (120, 80, False, 1),
                    (240, 112, True, 1), (336, 112, True, 1), (336, 160, True, 2), (480, 160, False, 1),
                    (480, 160, True, 1), (480, 160, False, 1), (480, 160, True, 1)]
    assert net.conv_stem.out_channels == 16 and net.num_features == 960
    assert net.conv_head.out_channels == 1280 and net.classifier.out_features == 1000
    # thicker second depthwise conv: it runs on all C_out channels (GhostNet: C_out / 2)
    assert net.blocks[6][0].ghost2.cheap_operation[0].out_channels == 80
    assert r.ghostnet(1.0).blocks[6][0].ghost2.cheap_operation[0].out_channels == 40


@pytest.mark.slow
@pytest.mark.parametrize("width", r.core.TABLE3_WIDTHS)
def test_every_width_fuses_exactly(width):
    torch.manual_seed(0)
    net = r.randomize_bn_stats_(r.repghostnet(width), seed=1).eval()
    x = torch.randn(2, 3, 64, 64)
    ref32 = net(x)
    fused = r.reparameterize(net)
    assert r.count_batchnorms(fused) == 0 and r.count_batchnorms(net) > 0  # original untouched (deep copy)
    assert rel_err(fused(x), ref32) <= 1e-5  # float32: relative to max |logit|
    net64 = net.double()
    fused64 = r.reparameterize(net64)  # fuse in float64 so the comparison sees only float64 rounding
    assert rel_err(fused64(x.double()), net64(x.double())) <= 1e-12


@pytest.mark.parametrize("variant", [dict(branches=()), dict(branches=("identity",)), dict(branches=("dconv1x1",)),
                                     dict(branches=("dconv1x1", "bn")), dict(branches=("identity", "dconv1x1", "bn")),
                                     dict(shortcut=False), dict(small_input=True)])
def test_ablation_variants_fuse_exactly(variant):
    net = r.randomize_bn_stats_(r.repghostnet(0.5, num_classes=10, **variant), seed=2).double().eval()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    fused = r.reparameterize(net)
    assert r.count_batchnorms(fused) == 0
    assert rel_err(fused(x), net(x)) <= 1e-12


def test_no_shortcut_removes_exactly_the_identity_shortcuts():
    net = r.repghostnet(1.0, shortcut=False)
    blocks = [b for stage in net.blocks[:-1] for b in stage]
    assert sum(b.shortcut is None for b in blocks) == 11  # "11 shortcuts of identity mapping removed" (Sec. 4.3)
    assert all(b.shortcut is not None for b in blocks if not b.has_identity_shortcut)


def test_small_input_variant_output_grid():
    net = r.repghostnet(0.5, num_classes=10, small_input=True).eval()
    assert net.forward_features(torch.randn(1, 3, 32, 32)).shape[-2:] == (2, 2)  # total stride 16
    assert net.forward_features(torch.randn(1, 3, 64, 64)).shape[-2:] == (4, 4)
    assert net.conv_stem.stride == (1, 1)
    stock = r.repghostnet(0.5, num_classes=10)
    assert [m.stride for m in net.modules() if isinstance(m, torch.nn.Conv2d)][1:] == \
        [m.stride for m in stock.modules() if isinstance(m, torch.nn.Conv2d)][1:]  # only the stem differs
    assert r.count_params(net) == r.count_params(stock)
    assert r.repghostnet(0.5).forward_features(torch.randn(1, 3, 224, 224)).shape[-2:] == (7, 7)


def test_ghostnet_bn_folds_too():
    net = r.randomize_bn_stats_(r.ghostnet(0.5, num_classes=10), seed=3).double().eval()
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    fused = r.reparameterize(net)
    assert r.count_batchnorms(fused) == 0 and rel_err(fused(x), net(x)) <= 1e-12


def test_reparameterize_twice_is_once_and_inplace():
    net = r.randomize_bn_stats_(r.repghostnet(0.5, num_classes=10)).eval()
    once = r.reparameterize(net)
    twice = r.reparameterize(once)
    assert twice is not once
    assert str(twice) == str(once)
    for (k1, v1), (k2, v2) in zip(once.state_dict().items(), twice.state_dict().items(), strict=True):
        assert k1 == k2 and torch.equal(v1, v2)
    same = r.reparameterize(net, inplace=True)
    assert same is net and r.count_batchnorms(net) == 0


def test_reparameterize_inside_any_module_tree():
    tree = nn.Sequential(r.repghostnet(0.5, num_classes=10), nn.Softmax(dim=1))
    r.randomize_bn_stats_(tree).eval()
    x = torch.randn(2, 3, 32, 32)
    fused = r.reparameterize(tree)
    assert r.count_batchnorms(fused) == 0
    assert torch.allclose(fused(x), tree(x), atol=1e-6)
    assert not any(isinstance(m, r.RepGhostModule) for m in fused.modules())
    assert sum(isinstance(m, r.RepGhostInferenceModule) for m in fused.modules()) == 32


def test_reparameterize_refuses_training_mode():
    with pytest.raises(RuntimeError, match=r"model.eval\(\)"):
        r.reparameterize(r.repghostnet(0.5))


@pytest.mark.parametrize("width", [0, -1.0, "1.0"])
def test_bad_width(width):
    with pytest.raises(ValueError, match="width must be a positive number"):
        r.repghostnet(width)


def test_wrong_input_channels():
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 3, H, W\)"):
        r.repghostnet(0.5)(torch.randn(1, 1, 32, 32))


def test_named_constructors_match_widths():
    for name, width in [("050", 0.5), ("058", 0.58), ("080", 0.8), ("100", 1.0), ("111", 1.11), ("130", 1.3),
                        ("150", 1.5), ("200", 2.0)]:
        assert getattr(r.core, f"repghostnet_{name}")(num_classes=10).width == width
    assert r.core.ghostnet_130(num_classes=10).width == 1.3
