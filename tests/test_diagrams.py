"""Fig. 3 diagrams and the Sec. 3.1 memory-layout picture draw with the Agg backend; structure read from modules."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import repghost_mini as r  # noqa: E402
from repghost_mini.teaching.diagrams import (  # noqa: E402
    contiguous_copies,
    draw_memory_layout,
    draw_module,
    memory_order,
    module_structure,
)


@pytest.mark.parametrize("variant", list("abcde"))
def test_every_variant_draws(variant):
    fig, ax = plt.subplots()
    assert draw_module(variant, ax) is ax
    assert len(ax.patches) >= 4 and ax.get_title()
    plt.close(fig)


@pytest.mark.parametrize("kwargs", [dict(branches=()), dict(branches=("identity", "bn", "dconv1x1")),
                                    dict(relu_after_dw=True)])
def test_table6_variants_draw(kwargs):
    ax = draw_module("d", **kwargs)
    plt.close(ax.figure)


def test_structure_read_from_modules():
    s = {v: module_structure(r.core.build_module(v, 4, 4)) for v in "abcde"}
    assert [s[v].merge for v in "abcde"] == ["cat", "add", "add", "add", None]
    assert [s[v].fusable for v in "abcde"] == [False, False, True, True, True]
    assert s["c"].side_branches == ["identity"] and s["d"].side_branches == ["bn"]
    assert not module_structure(r.RepGhostModule(4, 4, relu_after_dw=True)).fusable
    with pytest.raises(TypeError, match="Fig. 3 modules"):
        module_structure(torch.nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match="unknown module variant"):
        draw_module("z")


def test_contiguous_copies_match_sec_3_1():
    n, h, w = 2, 3, 4
    assert contiguous_copies((3, 5), h, w, n, channels_last=False) == 2 * n
    assert contiguous_copies((3, 5), h, w, n, channels_last=True) == 2 * n * h * w
    x = torch.arange(24.0).reshape(1, 2, 3, 4)
    assert torch.equal(memory_order(x), x.flatten())
    assert torch.equal(memory_order(x.contiguous(memory_format=torch.channels_last)), x.permute(0, 2, 3, 1).flatten())


def test_memory_layout_draws():
    axes = draw_memory_layout()
    assert len(axes) == 2 and "4 contiguous" in axes[0].get_title() and "16 contiguous" in axes[1].get_title()
    plt.close(axes[0].figure)
