"""make_loaders builds its own transform for other augmentation settings and never changes the caller's dataset."""
import torch
from torch.utils.data import Dataset, Subset

import repghost_mini as r


class Images(Dataset):
    """A folder-like dataset: PIL-free uint8 tensors through ``self.transform``."""

    def __init__(self, n=8, size=16):
        self.x = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8)
        self.y = torch.arange(n) % 2
        self.transform = "the caller's transform"

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.transform(self.x[i]), int(self.y[i])


def test_other_random_erasing_leaves_the_callers_transform_alone():
    full = Images()
    train, test = Subset(full, [0, 1, 2, 3]), Images(4)
    test.transform = r.training.data.eval_transforms(16, (0.5,) * 3, (0.25,) * 3)
    bundle = r.training.DataBundle("toy", train, test, 2, ["a", "b"], 16, (0.5,) * 3, (0.25,) * 3, "made in the test")
    loader, _ = r.make_loaders(bundle, batch_size=2, random_erasing=0.5, workers=0)
    assert full.transform == "the caller's transform" and bundle.train is train
    x, y = next(iter(loader))
    assert x.shape == (2, 3, 16, 16) and x.dtype == torch.float32
    loader, _ = r.make_loaders(bundle, batch_size=2, augment=False, workers=0)
    assert full.transform == "the caller's transform"
