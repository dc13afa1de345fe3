"""rm.first_classes: a k-class slice of a data set, relabelled 0..k-1 (notebook 06's 10 of Tiny-ImageNet-100)."""
import pytest
from torch.utils.data import Subset

import repghost_mini as r


def test_first_classes_keeps_and_relabels_the_first_k():
    full = r.load_dataset("synthetic")
    part = r.training.first_classes(full, 3)
    assert part.num_classes == 3 and part.class_names == full.class_names[:3]
    labels = [int(full.train[i][1]) for i in range(len(full.train))]
    assert len(part.train) == sum(y < 3 for y in labels) > 0
    assert sorted(set(part.train.targets)) == [0, 1, 2] and sorted(set(part.test.targets)) == [0, 1, 2]
    for i in (0, len(part.train) - 1):
        image, label = part.train[i]
        assert label == part.train.targets[i] and tuple(image.shape) == tuple(full.train[0][0].shape)
    assert r.training.first_classes(full, full.num_classes) is full


def test_first_classes_reads_labels_through_a_subset():
    full = r.load_dataset("synthetic")
    sub = Subset(full.train, list(range(0, len(full.train), 2)))
    sliced = r.training.ClassSlice(sub, [4, 1])
    assert set(sliced.targets) == {0, 1}
    assert all(int(full.train[sub.indices[j]][1]) in (4, 1) for j in sliced.indices)


@pytest.mark.parametrize("k", [1, 11, 2.5])
def test_first_classes_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k must be an integer from 2 to 10"):
        r.training.first_classes(r.load_dataset("synthetic"), k)
