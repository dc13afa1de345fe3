"""Data: lookup order and errors, .npz checks, batched augmentation == its v2 definition, real shared data."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import repghost_mini as r
from repghost_mini.training import data as data_module
from repghost_mini.training.data import InMemoryLoader, _decode_jpegs, data_roots

SHARED = os.environ.get("REPGHOST_MINI_DATA")
needs_shared = pytest.mark.skipif(not SHARED or not Path(SHARED, "cifar10-subset").is_dir(),
                                  reason="REPGHOST_MINI_DATA is not set to the shared data folder (CI sets it)")


@pytest.fixture
def empty_env(tmp_path, monkeypatch):
    """No REPGHOST_MINI_DATA, the default data folder is tmp_path/data (empty), and downloads fail."""
    monkeypatch.delenv("REPGHOST_MINI_DATA", raising=False)
    monkeypatch.setattr(data_module, "default_data_dir", lambda: tmp_path / "data")
    return tmp_path


def write_npz(path, n=12, size=8, **override):
    rng = np.random.default_rng(0)
    arrays = dict(x_train=rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), y_train=np.arange(n) % 3,
                  x_test=rng.integers(0, 256, (4, size, size, 3), dtype=np.uint8), y_test=np.arange(4) % 3)
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


# ---------------------------------------------------------------- lookup and errors
def test_lookup_order(empty_env, monkeypatch):
    assert data_roots() == [empty_env / "data"]
    monkeypatch.setenv("REPGHOST_MINI_DATA", "/somewhere")
    assert data_roots() == [Path("/somewhere"), empty_env / "data"]
    assert data_roots("/explicit") == [Path("/explicit")]  # an explicit path is the only place searched


def test_default_data_folder_is_the_checkouts_data_from_any_working_directory(tmp_path, monkeypatch):
    repo_data = Path(r.__file__).resolve().parent.parent / "data"
    for cwd in (tmp_path, repo_data.parent / "notebooks"):
        monkeypatch.chdir(cwd)
        assert data_module.default_data_dir() == repo_data  # never notebooks/data or ./data
    ignored = (repo_data / ".gitignore").read_text()
    assert "*" in ignored.split() and "!README.md" in ignored.split()  # downloads there are never committed


def test_nothing_found_lists_paths_and_never_falls_back_to_synthetic(empty_env, monkeypatch):
    monkeypatch.setenv("REPGHOST_MINI_DATA", str(empty_env / "shared"))
    with pytest.raises(FileNotFoundError) as err:
        r.load_dataset("cifar10-subset", download=False)
    msg = str(err.value)
    assert str(empty_env / "shared" / "cifar10_subset.npz") in msg and "data/cifar10_subset.npz" in msg
    assert "REPGHOST_MINI_DATA" in msg
    with pytest.raises(FileNotFoundError, match="download=True"):
        r.load_dataset("cifar10", download=False)
    with pytest.raises(FileNotFoundError, match="train/<class>/ and val/<class>/"):
        r.load_dataset("imagenet-subset", download=False)


def test_found_in_the_data_folder_and_by_env(empty_env, monkeypatch):
    (empty_env / "data").mkdir()
    write_npz(empty_env / "data" / "cifar10_subset.npz")
    b = r.load_dataset("cifar10-subset")
    assert len(b.train) == 12 and b.source == str(empty_env / "data" / "cifar10_subset.npz")
    other = empty_env / "elsewhere" / "cifar10-subset"
    other.mkdir(parents=True)
    write_npz(other / "cifar10_subset.npz", n=6)
    monkeypatch.setenv("REPGHOST_MINI_DATA", str(empty_env / "elsewhere"))
    assert len(r.load_dataset("cifar10-subset").train) == 6  # the env var comes before ./data


def test_unknown_name_and_missing_path():
    with pytest.raises(ValueError, match="unknown dataset"):
        r.load_dataset("mnist")
    with pytest.raises(ValueError, match="needs path"):
        r.load_dataset("npz")
    with pytest.raises(ValueError, match="needs path"):
        r.load_dataset("imagefolder")


@pytest.mark.parametrize("override, message", [
    (dict(y_test=None), r"lacks the arrays \['y_test'\]"),
    (dict(x_train=np.zeros((12, 8, 8, 3), dtype=np.float32)), "must be uint8 images"),
    (dict(x_train=np.zeros((12, 8, 8), dtype=np.uint8)), "must be uint8 images of shape"),
    (dict(y_train=np.zeros(5, dtype=np.int64)), "must be 12 integer labels"),
    (dict(y_train=np.full(12, 0.5)), "integer labels"),
])
def test_bad_npz_gives_one_sentence(tmp_path, override, message):
    path = write_npz(tmp_path / "bad.npz", **override)
    with pytest.raises(ValueError, match=message):
        r.load_dataset("npz", path)


def test_npz_by_path(tmp_path):
    path = write_npz(tmp_path / "mine.npz")
    b = r.load_dataset("npz", path)
    assert b.num_classes == 3 and b.image_size == 8 and b.train.images.shape == (12, 3, 8, 8)
    np.testing.assert_array_equal(b.train.images.permute(0, 2, 3, 1).numpy(), np.load(path)["x_train"])
    assert len(r.load_dataset("cifar10", path, train_per_class=2).train) == 6  # first 2 of each class


def test_synthetic_only_by_name():
    b = r.load_dataset("synthetic", synthetic_size=40)
    assert b.source == "synthetic" and len(b.train) == 40 and b.num_classes == 10


# ---------------------------------------------------------------- batched augmentation
def all_crops(img, pad):
    """Every padded crop of ``img`` and its mirror: what v2.RandomCrop(padding) + RandomHorizontalFlip can give."""
    c, h, w = img.shape
    padded = torch.nn.functional.pad(img, (pad,) * 4)
    crops = [padded[:, dy:dy + h, dx:dx + w] for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)]
    return torch.stack(crops + [x.flip(-1) for x in crops])


def test_batch_crop_flip_gives_only_valid_crops_and_all_kinds():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8, generator=g)
    aug = r.training.BatchAugment((0.5,) * 3, (0.25,) * 3, padding=2, random_erasing=0.0)
    out = aug.crop_flip(x, g)
    assert out.shape == x.shape and out.dtype == torch.uint8
    kinds = set()
    for i in range(len(x)):
        match = (all_crops(x[i], 2) == out[i]).flatten(1).all(1).nonzero()
        assert len(match) >= 1, f"image {i} is not a padded crop (or its mirror) of the input"
        kinds.add(int(match[0]))
    assert len(kinds) > 20  # offsets and flips differ from image to image (per-image randomness)


def test_batch_normalize_and_erasing():
    x = torch.randint(0, 256, (200, 3, 16, 16), dtype=torch.uint8)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    aug = r.training.BatchAugment(mean, std, padding=0, flip=False, random_erasing=1.0)
    ref = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(aug(x, train=False), ref)
    out = aug(x, torch.Generator().manual_seed(1))
    erased = ~torch.isclose(out, ref, atol=1e-5).all(1)  # (N, H, W): where the box replaced the pixels by 0
    share = erased.flatten(1).float().mean(1)
    assert (share > 0).float().mean() > 0.9  # p=1: (nearly) every image has a box
    assert share.max() <= 0.4 and (out.masked_select(erased[:, None].expand_as(out)) == 0).all()
    rows, cols = erased.any(2), erased.any(1)  # the erased pixels form one rectangle
    assert torch.equal(erased.flatten(1).sum(1), rows.sum(1) * cols.sum(1))
    none = r.training.BatchAugment(mean, std, padding=0, flip=False, random_erasing=0.0)
    torch.testing.assert_close(none(x, torch.Generator().manual_seed(1)), ref)
    with pytest.raises(ValueError, match="uint8"):
        aug(x.float())


def test_loader_is_deterministic_per_epoch_and_shards_for_ddp():
    data = r.training.InMemoryImages(torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8), torch.arange(50) % 5)
    aug = r.training.BatchAugment((0.5,) * 3, (0.25,) * 3, padding=1)

    def batches(epoch, rank=0, world=1, seed=0):
        loader = InMemoryLoader(data, 8, aug, train=True, seed=seed, rank=rank, world_size=world)
        loader.set_epoch(epoch)
        return list(loader)

    a, b, c = batches(0), batches(0), batches(1)
    assert len(a) == 6 and all(torch.equal(x1, x2) and torch.equal(y1, y2)
                               for (x1, y1), (x2, y2) in zip(a, b, strict=True))
    assert not torch.equal(a[0][1], c[0][1])
    lab0 = torch.cat([y for _, y in batches(0, 0, 2)])
    lab1 = torch.cat([y for _, y in batches(0, 1, 2)])
    assert len(lab0) == len(lab1) == 24  # 25 per rank, last partial batch dropped in training


def test_make_loaders_shapes():
    b = r.load_dataset("synthetic", synthetic_size=64)
    train, test = r.make_loaders(b, batch_size=16)
    train.set_epoch(0)
    x, y = next(iter(train))
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert len(train) == 4 and sum(len(y) for _, y in test) == len(b.test)
    with pytest.raises(ValueError, match="batch_size"):
        r.make_loaders(b, batch_size=0)


# ---------------------------------------------------------------- real shared data (CI sets REPGHOST_MINI_DATA)
@needs_shared
def test_real_cifar10_subset_matches_provenance():
    b = r.load_dataset("cifar10-subset")
    assert (len(b.train), len(b.test), b.num_classes, b.image_size) == (5169, 1017, 10, 32)
    assert b.class_names[0] == "airplane" and b.class_names[9] == "truck"
    train_counts = torch.bincount(b.train.labels, minlength=10).tolist()
    assert train_counts == [524, 529, 502, 499, 547, 488, 508, 523, 540, 509]  # PROVENANCE.md table
    assert torch.bincount(b.test.labels, minlength=10).tolist()[:3] == [105, 93, 100]
    # the CIFAR normalization constants fit the data: normalized images have mean ~0 and std ~1 per channel
    x = r.training.BatchAugment(b.mean, b.std)(b.train.images[:2000], train=False)
    assert x.mean((0, 2, 3)).abs().max() < 0.1 and (x.std((0, 2, 3)) - 1).abs().max() < 0.1


@needs_shared
def test_real_jpeg_copy_matches_exact_pixels():
    root = Path(SHARED, "cifar10-subset")
    with np.load(root / "cifar10_full_jpeg.npz") as z:
        images = _decode_jpegs(z["train_jpeg"], z["train_offsets"][:33])
        labels = z["y_train"][:32]
    exact = r.load_dataset("cifar10-subset").train
    assert images.shape == (32, 3, 32, 32)
    assert np.array_equal(labels, exact.labels[:32].numpy())
    mad = (images.float() - exact.images[:32].float()).abs().mean((1, 2, 3))
    assert mad.max() <= 13  # PROVENANCE: JPEG re-encoding differs by <= 13/255 on average


@needs_shared
def test_real_imagenet_subset_folder():
    b = r.load_dataset("imagenet-subset", train_per_class=2, test_per_class=1)
    assert (b.num_classes, b.image_size, len(b.train), len(b.test)) == (100, 64, 200, 100)
    assert b.class_names[0].startswith("goldfish")
    train, test = r.make_loaders(b, batch_size=16, workers=0)
    train.set_epoch(0)
    x, y = next(iter(train))
    assert x.shape == (16, 3, 64, 64) and x.dtype == torch.float32 and y.max() < 100
    xt, yt = next(iter(test))
    assert xt.shape[1:] == (3, 64, 64) and torch.equal(yt[:3], torch.tensor([0, 1, 2]))
    same = r.load_dataset("imagefolder", Path(SHARED, "imagenet-subset"), train_per_class=1)
    assert len(same.train) == 100


# ---------------------------------------------------------------- issue #20: one unwrapper, transforms through
# first_classes, a stratified held-out split
KINDS = ["synthetic", "cifar10-subset", "imagenet-subset"]
_BUNDLES = {}


def bundle_of(kind, sliced):
    """A small bundle of each kind (loaded once per session), optionally through ``first_classes``."""
    if kind != "synthetic" and not (SHARED and Path(SHARED, kind).is_dir()):
        pytest.skip("REPGHOST_MINI_DATA is not set to the shared data folder (CI sets it)")
    if kind not in _BUNDLES:
        limits = dict(synthetic={"synthetic_size": 60}, **{"cifar10-subset": dict(train_per_class=6, test_per_class=2),
                                                            "imagenet-subset": dict(train_per_class=2,
                                                                                    test_per_class=1)})[kind]
        _BUNDLES[kind] = r.load_dataset(kind, **limits)
    b = _BUNDLES[kind]
    return r.training.first_classes(b, 10 if kind == "imagenet-subset" else 3) if sliced else b


def base_of(ds):
    while hasattr(ds, "dataset"):
        ds = ds.dataset
    return ds


def eval_reference(b, ds, indices):
    """What the model sees at test time for items ``indices`` of ``ds``, computed without the loaders: the
    normalized uint8 rows (in-memory data) or the eval transform of the image files (folder data)."""
    if isinstance(base_of(ds), r.training.InMemoryImages):
        x = torch.stack([ds[i][0] for i in indices]).float() / 255
        return (x - torch.tensor(b.mean).view(1, 3, 1, 1)) / torch.tensor(b.std).view(1, 3, 1, 1)
    from PIL import Image
    tf = r.training.eval_transforms(b.image_size, b.mean, b.std)
    paths = [data_module._samples_of(ds)[i][0] for i in indices]
    return torch.stack([tf(Image.open(p).convert("RGB")) for p in paths])


@pytest.mark.parametrize("sliced", [False, True], ids=["whole", "first_classes"])
@pytest.mark.parametrize("kind", KINDS)
def test_unaugmented_train_loader_gives_the_eval_transform_of_its_indices(kind, sliced):
    b = bundle_of(kind, sliced)
    train, _ = r.make_loaders(b, batch_size=4, augment=False, workers=0)
    passes = []
    for _ in range(2):
        train.set_epoch(3)
        passes.append([batch for _, batch in zip(range(2), train, strict=False)])
    order = list(train.sampler)  # the epoch-3 order
    for k, ((x1, y1), (x2, y2)) in enumerate(zip(*passes, strict=True)):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
        idx = order[4 * k:4 * k + 4]
        assert x1.dtype == torch.float32 and x1.shape == (4, 3, b.image_size, b.image_size)
        torch.testing.assert_close(x1, eval_reference(b, b.train, idx), atol=1e-5, rtol=0)
        assert y1.tolist() == [int(b.train[i][1]) for i in idx]


@pytest.mark.parametrize("sliced", [False, True], ids=["whole", "first_classes"])
@pytest.mark.parametrize("kind", KINDS)
def test_default_augmentation_keeps_the_dataset_and_other_settings_change_a_copy(kind, sliced):
    b = bundle_of(kind, sliced)
    train, test = r.make_loaders(b, batch_size=4, workers=0)
    train.set_epoch(0)
    x, _ = next(iter(train))
    assert x.dtype == torch.float32 and x.shape == (4, 3, b.image_size, b.image_size)
    if isinstance(b.train, r.training.InMemoryImages):
        assert train.data is b.train
    elif not isinstance(base_of(b.train), r.training.InMemoryImages):  # folder data: the training split as given
        assert train.loader.dataset is b.train
        plain, _ = r.make_loaders(b, batch_size=4, random_erasing=0.0, workers=0)
        steps = [type(t).__name__ for t in base_of(plain.loader.dataset).transform.transforms]
        assert "RandomCrop" in steps and "RandomErasing" not in steps
        assert "RandomErasing" in [type(t).__name__ for t in base_of(b.train).transform.transforms]  # untouched


def test_first_classes_keeps_the_in_memory_and_resize_flags():
    import dataclasses
    b = r.load_dataset("synthetic", synthetic_size=40)
    assert r.training.first_classes(b, 3).in_memory is True
    assert r.training.first_classes(dataclasses.replace(b, resize=True), 3).resize is True


def keys(ds):
    """One key per item that tells the images apart: the file path (folder data) or the pixels (in-memory)."""
    samples = data_module._samples_of(ds)
    if samples:
        return [p for p, _ in samples]
    return [ds[i][0].numpy().tobytes() for i in range(len(ds))]


@pytest.mark.parametrize("sliced", [False, True], ids=["whole", "first_classes"])
@pytest.mark.parametrize("kind", KINDS)
def test_holdout_split_is_stratified_disjoint_seeded_and_leaves_the_global_rng(kind, sliced):
    b = bundle_of(kind, sliced)
    rng = torch.get_rng_state()
    rest, held = data_module.holdout_split(b, 0.25, seed=3)
    assert torch.equal(torch.get_rng_state(), rng)
    before, kept, out = keys(b.train), keys(rest.train), keys(held)
    assert len(set(before)) == len(before)  # the keys identify the images
    assert not set(kept) & set(out) and sorted(kept + out) == sorted(before)
    assert (rest.test is b.test and rest.num_classes == b.num_classes and rest.resize == b.resize
            and rest.in_memory == b.in_memory)
    labels = torch.tensor(data_module._labels_of(b.train))
    held_labels = torch.tensor([int(held[i][1]) for i in range(len(held))])
    assert sorted(held_labels.tolist()) == sorted(labels[[before.index(k) for k in out]].tolist())
    n, h = torch.bincount(labels, minlength=b.num_classes), torch.bincount(held_labels, minlength=b.num_classes)
    assert ((h - 0.25 * n).abs() <= 1).all() and (h >= 1).all() and (h < n).all()
    assert keys(data_module.holdout_split(b, 0.25, seed=3)[1]) == out
    assert keys(data_module.holdout_split(b, 0.25, seed=4)[1]) != out
    assert isinstance(held, r.training.InMemoryImages) == isinstance(base_of(b.train), r.training.InMemoryImages)


@pytest.mark.parametrize("sliced", [False, True], ids=["whole", "first_classes"])
@pytest.mark.parametrize("kind", KINDS)
def test_holdout_evaluates_deterministically_like_the_test_split(kind, sliced):
    b = bundle_of(kind, sliced)
    rest, held = data_module.holdout_split(b, 0.5, seed=0)
    rng = torch.get_rng_state()
    runs = [list(data_module.eval_loader(rest, held, batch_size=8, workers=0)) for _ in range(2)]
    assert torch.equal(torch.get_rng_state(), rng)
    x, y = torch.cat([x for x, _ in runs[0]]), torch.cat([y for _, y in runs[0]])
    assert torch.equal(x, torch.cat([x for x, _ in runs[1]])) and len(x) == len(held)
    assert x.dtype == torch.float32 and x.shape[1:] == (3, b.image_size, b.image_size) and y.dtype == torch.int64
    assert y.tolist() == [int(held[i][1]) for i in range(len(held))]
    torch.testing.assert_close(x, eval_reference(b, held, range(len(held))), atol=1e-5, rtol=0)
    _, test = r.make_loaders(b, batch_size=4, workers=0)  # the test loader is eval_loader of the test split
    first, ref = next(iter(test)), next(iter(data_module.eval_loader(b, b.test, batch_size=256, workers=0)))
    assert torch.equal(first[0], ref[0]) and torch.equal(first[1], ref[1])


def test_holdout_split_errors():
    b = r.load_dataset("synthetic", synthetic_size=40)
    for bad in (0, 0.0, -0.1, 0.51, 1, True, "0.1"):
        with pytest.raises(ValueError, match=r"fraction must be a number in \(0, 0.5\]"):
            data_module.holdout_split(b, bad)
    with pytest.raises(ValueError, match="at least 2 training images in every class.*class 0 .'class0'. has 1"):
        data_module.holdout_split(r.load_dataset("synthetic", synthetic_size=10))
    assert "holdout_split" in data_module.__all__ and "eval_loader" in data_module.__all__
