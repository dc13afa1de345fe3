"""repghost_mini.measure.summary: the layer table read from the model reproduces Table 2 of the paper."""
import pytest
from torch import nn

import repghost_mini as r
from repghost_mini.measure.summary import bottleneck_channels, format_layer_table, layer_table

# Table 2 of the paper: (input side, input channels, operator, #mid, #out, SE, stride); None = "-".
TABLE2 = [
    (224, 3, "Conv3x3", None, 16, None, 2),
    (112, 16, "RG-bneck", 8, 16, False, 1),
    (112, 16, "RG-bneck", 24, 24, False, 2),
    (56, 24, "RG-bneck", 36, 24, False, 1),
    (56, 24, "RG-bneck", 36, 40, True, 2),
    (28, 40, "RG-bneck", 60, 40, True, 1),
    (28, 40, "RG-bneck", 120, 80, False, 2),
    (14, 80, "RG-bneck", 100, 80, False, 1),
    (14, 80, "RG-bneck", 120, 80, False, 1),
    (14, 80, "RG-bneck", 120, 80, False, 1),
    (14, 80, "RG-bneck", 240, 112, True, 1),
    (14, 112, "RG-bneck", 336, 112, True, 1),
    (14, 112, "RG-bneck", 336, 160, True, 2),
    (7, 160, "RG-bneck", 480, 160, False, 1),
    (7, 160, "RG-bneck", 480, 160, True, 1),
    (7, 160, "RG-bneck", 480, 160, False, 1),
    (7, 160, "RG-bneck", 480, 160, True, 1),
    (7, 160, "Conv1x1", None, 960, None, 1),
    (7, 960, "AvgPool", None, 960, None, None),
    (1, 960, "Conv1x1", None, 1280, None, 1),
    (1, 1280, "FC", None, 1000, None, 1),  # Table 2 writes this 1x1 conv on a 1x1 map as "Conv1x1"
]


def as_tuples(rows):
    return [(row.input_hw[0], row.in_channels, row.operator, row.mid, row.out, row.se, row.stride) for row in rows]


@pytest.mark.parametrize("fused", [False, True])
def test_repghostnet_100_table_equals_table2(fused):
    model = r.repghostnet(1.0).eval()
    if fused:
        model = r.reparameterize(model)
    rows = layer_table(model)
    assert all(row.input_hw[0] == row.input_hw[1] for row in rows)
    assert as_tuples(rows) == TABLE2


def test_ghostnet_table_has_full_middle_channels_and_same_outputs():
    ours = layer_table(r.repghostnet(1.0))
    ghost = layer_table(r.ghostnet(1.0))
    assert [row.operator for row in ghost[1:17]] == ["G-bneck"] * 16
    # same skeleton: input sizes, outputs, SE and strides agree; GhostNet's #mid is about twice ours (Fig. 4)
    assert [(g.input_hw, g.in_channels, g.out, g.se, g.stride) for g in ghost] == \
        [(o.input_hw, o.in_channels, o.out, o.se, o.stride) for o in ours]
    assert [g.mid for g in ghost[1:17]] == [16, 48, 72, 72, 120, 240, 200, 184, 184, 480, 672, 672, 960, 960, 960, 960]


def test_table_follows_width_and_input_size_and_restores_mode():
    model = r.repghostnet(0.5, small_input=True).train()
    rows = layer_table(model, input_size=32)
    assert model.training
    assert rows[0].input_hw == (32, 32) and rows[0].stride == 1 and rows[0].out == 8
    assert [row.input_hw[0] for row in rows[1:17]] == [32] * 2 + [16] * 2 + [8] * 2 + [4] * 6 + [2] * 4
    assert rows[17].out == 480  # 960 * 0.5
    rect = layer_table(r.repghostnet(1.0), input_size=(64, 96))
    assert rect[-3].input_hw == (2, 3)


def test_format_layer_table_looks_like_table2():
    text = format_layer_table(layer_table(r.repghostnet(1.0)))
    lines = text.splitlines()
    assert lines[0].split() == ["Input", "Operator", "#mid", "#out", "SE", "Stride"]
    assert lines[2].split() == ["224^2", "x", "3", "Conv3x3", "-", "16", "-", "2"]
    assert lines[6].split() == ["56^2", "x", "24", "RG-bneck", "36", "40", "1", "2"]
    assert lines[-3].split() == ["7^2", "x", "960", "AvgPool", "-", "960", "-", "-"]
    assert len(lines) == 2 + len(TABLE2)


def test_bottleneck_channels_thinner_middle_thicker_dw():
    ghost = bottleneck_channels(r.ghostnet(1.0))
    rep = bottleneck_channels(r.repghostnet(1.0))
    assert len(ghost) == len(rep) == 16
    for g, o in zip(ghost, rep, strict=True):
        assert (g.in_channels, g.out, g.stride, g.se) == (o.in_channels, o.out, o.stride, o.se)
        assert o.dw2 == o.out and g.dw2 == g.out // 2  # "thicker" second depthwise conv
        assert o.mid < g.mid  # "thinner" middle
    fused = bottleneck_channels(r.reparameterize(r.repghostnet(1.0).eval()))
    assert fused == rep


def test_rejects_other_models():
    with pytest.raises(TypeError, match="layer_table reads RepGhostNet / GhostNet models"):
        layer_table(nn.Sequential(nn.Conv2d(3, 8, 3)))
    with pytest.raises(TypeError, match="needs a model with Ghost or RepGhost bottlenecks"):
        bottleneck_channels(nn.Linear(2, 2))
