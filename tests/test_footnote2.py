"""Footnote 2 of Sec. 3.1: pre-allocated output vs concat vs add (repghost_mini.measure.concat_cost).

Correctness (the pre-allocated result is the concatenation, bit for bit), the contiguity rules, and the shape of
the timing samples. No speed is asserted (shared CPU).
"""
import pytest
import torch

import repghost_mini as r
from repghost_mini.measure.concat_cost import (
    channel_slice_is_contiguous,
    preallocation_rounds,
    reuse_by_add,
    reuse_by_concat,
    reuse_by_preallocation,
)


def test_footnote_is_quoted():
    assert r.paper.quote("footnote2").startswith("For feature maps with batch size 1, pre-allocating memory")


def test_channel_slice_is_one_block_only_for_batch_1_nchw():
    assert channel_slice_is_contiguous(1) is True
    assert channel_slice_is_contiguous(2) is False
    assert channel_slice_is_contiguous(32, channels=(16, 16), spatial=(7, 7)) is False
    assert channel_slice_is_contiguous(1, channels_last=True) is False
    assert channel_slice_is_contiguous(2, channels_last=True) is False


@pytest.mark.parametrize("batch_size", [1, 2])
@pytest.mark.parametrize("channels_last", [False, True])
def test_preallocated_result_equals_concat_exactly(batch_size, channels_last):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    g = torch.Generator().manual_seed(0)
    u1 = torch.randn(batch_size, 3, 5, 4, generator=g).contiguous(memory_format=fmt)
    u2 = torch.randn(batch_size, 3, 5, 4, generator=g).contiguous(memory_format=fmt)
    buf = torch.empty(batch_size, 6, 5, 4).contiguous(memory_format=fmt)
    out = reuse_by_preallocation(u1, u2, buf)
    assert out.data_ptr() == buf.data_ptr()  # written in place: no new tensor, no copy
    assert torch.equal(out, reuse_by_concat(u1, u2))
    assert torch.equal(reuse_by_preallocation(u1, u2), reuse_by_concat(u1, u2))  # allocated when out is None
    assert torch.equal(reuse_by_add(u1, u2), 2 * u1 + 2 * u2)
    with pytest.raises(ValueError, match="out must have shape"):
        reuse_by_preallocation(u1, u2, torch.empty(batch_size, 5, 5, 4))


def test_preallocation_rounds_gives_one_positive_sample_per_round_and_name():
    pairs = [((1, 4, 6, 6), (1, 4, 6, 6)), ((1, 8, 3, 3), (1, 8, 3, 3))]
    samples = preallocation_rounds(pairs, batch_sizes=(1, 2), min_run_time=0.006, rounds=3, threads=1)
    assert list(samples) == [1, 2]
    for per_batch in samples.values():
        assert list(per_batch) == ["concat", "preallocated", "add"]
        assert all(len(v) == 3 and all(t > 0 for t in v) for v in per_batch.values())
    c = r.measure.compare(samples[1]["preallocated"], samples[1]["concat"])
    assert c.verdict in ("lower", "higher", "cannot rank") and c.n_a == 3
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        preallocation_rounds(pairs, batch_sizes=(0,))
