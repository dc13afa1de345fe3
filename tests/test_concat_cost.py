"""Sec. 3.1 measurements: the 32 GhostNet concatenations, cat-vs-add timing and profiler operator shares.

No timing is asserted (shared CPU); only structure: shapes, keys, positivity, shares summing to one.
"""
import math

import pytest
import torch

import repghost_mini as r
from repghost_mini.measure.concat_cost import (
    REUSE_ADD_LABEL,
    ReuseByAddModule,
    concat_vs_add_rounds,
    ghostnet_concat_shapes,
    operator_time_shares,
    replace_concat_with_add,
    time_concat_vs_add,
)


@pytest.fixture(scope="module")
def pairs():
    return ghostnet_concat_shapes()


def test_ghostnet_has_32_concats_matching_its_channel_counts(pairs):
    assert len(pairs) == 32  # Sec. 3.1: "all 32 corresponding operators"
    net = r.ghostnet(1.0)
    modules = [m for m in net.modules() if isinstance(m, r.GhostModule)]
    assert len(modules) == 32
    for (s1, s2), m in zip(pairs, modules, strict=True):
        init = math.ceil(m.out_channels / m.ratio)
        assert s1[:2] == (1, init) and s2[:2] == (1, init * (m.ratio - 1))
        assert s1[2:] == s2[2:]
    # first Ghost module sees the 112x112 stem output, the last ones the 7x7 maps; channels follow GHOSTNET_CFG
    assert pairs[0] == ((1, 8, 112, 112), (1, 8, 112, 112))
    assert pairs[-1] == ((1, 80, 7, 7), (1, 80, 7, 7))
    mids = [row[1] for group in r.core.GHOSTNET_CFG for row in group]
    assert [s1[1] * 2 for s1, _ in pairs[0::2]] == mids


def test_batch_and_width_follow_the_model():
    pairs = ghostnet_concat_shapes(r.ghostnet(0.5), input_size=(2, 3, 64, 64))
    assert len(pairs) == 32 and all(s1[0] == 2 and s2[0] == 2 for s1, s2 in pairs)
    assert pairs[0][0][2:] == (32, 32)


def test_no_ghost_module_is_a_clear_error():
    with pytest.raises(ValueError, match="no GhostModule"):
        ghostnet_concat_shapes(r.repghostnet(0.5))


@pytest.mark.parametrize("channels_last", [False, True])
def test_time_concat_vs_add_returns_positive_ms(pairs, channels_last):
    t = time_concat_vs_add(pairs[-4:], batch_size=2, channels_last=channels_last, min_run_time=0.02, rounds=2)
    assert set(t) == {"cat", "add_operands", "add_output"} and all(v > 0 and math.isfinite(v) for v in t.values())


def test_bytes_model_gives_both_readings():
    from repghost_mini.measure.concat_cost import BYTES_MODEL
    m = BYTES_MODEL
    assert math.isclose(m["cat"] / m["add_operands"], 4 / 3) and math.isclose(m["cat"] / m["add_output"], 2 / 3)


def test_add_operands_have_the_concatenated_shape(pairs):
    from repghost_mini.measure.concat_cost import _make_operands
    cat_in, add_in = _make_operands(pairs, 3, True, "cpu", torch.float32)
    for (a, b), (u, v) in zip(cat_in, add_in, strict=True):
        out = torch.cat((a, b), dim=1)
        assert u.shape == v.shape == out.shape and u.shape[0] == 3
        assert u.is_contiguous(memory_format=torch.channels_last)
        assert (u + v).shape == out.shape


def test_time_concat_vs_add_rejects_bad_input():
    with pytest.raises(ValueError, match="empty"):
        time_concat_vs_add([])
    with pytest.raises(ValueError, match="cannot concatenate"):
        time_concat_vs_add([((1, 2, 4, 4), (1, 2, 5, 5))])


def test_reuse_by_add_module_is_module_b():
    torch.manual_seed(0)
    m = ReuseByAddModule(6, 10).eval()
    b = r.core.GhostAddModule(6, 10).eval()
    b.load_state_dict(m.state_dict())
    x = torch.randn(2, 6, 5, 5)
    assert torch.equal(m(x), b(x))


def test_replace_concat_with_add_keeps_interface():
    net = r.ghostnet(0.5, num_classes=10).eval()
    net_add = replace_concat_with_add(net).eval()
    assert not any(isinstance(m, r.GhostModule) for m in net_add.modules())
    assert sum(isinstance(m, ReuseByAddModule) for m in net_add.modules()) == 32
    assert any(isinstance(m, r.GhostModule) for m in net.modules())  # original untouched
    x = torch.randn(1, 3, 64, 64)
    assert net_add(x).shape == net(x).shape == (1, 10)


def test_operator_time_shares_sum_to_one_and_name_the_reuse_operator(capfd):
    net = r.ghostnet(0.5, num_classes=10)
    shares = operator_time_shares(net, (1, 3, 64, 64), repeats=1)
    err = capfd.readouterr().err
    assert "USDT" not in err and "ERROR" not in err and "profiler_start" not in err  # silenced at the source
    assert math.isclose(sum(shares.values()), 1.0, rel_tol=1e-9)
    assert all(s > 0 for s in shares.values())
    assert {"cat", "conv", "dwconv", "batch_norm"} <= set(shares) and REUSE_ADD_LABEL not in shares
    add_shares = operator_time_shares(replace_concat_with_add(net), (1, 3, 64, 64), repeats=1)
    assert REUSE_ADD_LABEL in add_shares and "cat" not in add_shares
    assert math.isclose(sum(add_shares.values()), 1.0, rel_tol=1e-9)
    assert net.training  # mode restored


def test_concat_vs_add_rounds_gives_one_positive_ms_per_round(pairs):
    samples = concat_vs_add_rounds(pairs[-4:], batch_size=2, min_run_time=0.03, rounds=3)
    assert set(samples) == {"cat", "add_operands", "add_output"}
    assert all(len(v) == 3 and all(t > 0 and math.isfinite(t) for t in v) for v in samples.values())
    verdict = r.compare(samples["cat"], samples["add_operands"]).verdict  # the samples compare() ranks
    assert verdict in ("lower", "higher", "cannot rank")
    with pytest.raises(ValueError, match="empty"):
        concat_vs_add_rounds([])
