r"""Datasets and loaders for training RepGhostNet on real images (paper Sec. 4.1, "Implementation Details").

The paper trains with "regular image crop and flip in timm" plus random erasing with probability 0.2. We do the
same at small scale:

* **CIFAR-10** (32x32): random crop with 4 px zero padding, horizontal flip, random erasing $p=0.2$.
* **ImageNet subsets** (Imagenette 160 px, Tiny-ImageNet-100 64 px, any ImageFolder): the same for 64 px images,
  random-resized crop for larger ones; centre crop for evaluation.

Where data is looked for (first hit wins): an explicit ``path`` argument (then *only* there), else the folder in
the environment variable ``REPGHOST_MINI_DATA``, else the one data folder :func:`default_data_dir` (the
repository's ``data/`` folder in a source checkout, found from the package's own location so that a notebook, the
CLI and the tests agree whatever the working directory; ``~/.cache/repghost_mini`` for an installed package).
Downloads land in ``path`` if given, else ``$REPGHOST_MINI_DATA`` if set, else that folder.

**A fresh clone** has no offline copies. Then ``"cifar10-subset"`` is cut from torchvision's CIFAR-10 download (the
subset *is* the leading rows of each official batch, :data:`CIFAR10_SUBSET_ROWS`, so the cut is pixel-identical
to ``cifar10_subset.npz``) and ``"imagenet-subset"`` falls back to Imagenette (10 ImageNet classes, resized to
64 px; the bundle's ``name`` and ``source`` say so). When nothing is found and no download is possible, one error
lists every path tried and what to set or download. A ``"synthetic"`` dataset exists for smoke tests and is only
used when asked for by name.

**Validated once, at load**, before any training step: labels are class indices $0..K-1$ with every class present
in the training split and no test label the training split lacks; no split is empty; every image of a folder
dataset (after the per-class limits) decodes, else the error names the file. Problems raise :class:`DataError`
(a ``ValueError``) or ``FileNotFoundError`` with one sentence saying what is wrong and what to do.

Small datasets (CIFAR-10 from an .npz or the torchvision batches) are held in memory as one uint8 tensor and
augmented a whole batch at a time (:class:`BatchAugment`), so the data never waits on per-image Python code.
Folder datasets use a :class:`torch.utils.data.DataLoader` with ``torchvision.transforms.v2`` per image.
:func:`holdout_split` sets a stratified, seeded part of the training split aside (a validation split, evaluated
by :func:`eval_loader` exactly as the test split is).
"""
from __future__ import annotations

import copy
import io
import math
import numbers
import os
import pickle
import tarfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

__all__ = [
    "DATASET_NAMES", "NORMALIZATION", "CIFAR10_CLASSES", "CIFAR10_SUBSET_ROWS", "DataBundle", "DataError",
    "InMemoryImages", "BatchAugment", "InMemoryLoader", "load_dataset", "load_npz", "make_loaders",
    "train_transforms", "eval_transforms", "data_roots", "default_data_dir", "denormalize", "default_workers",
    "first_classes", "ClassSlice", "holdout_split", "eval_loader",
]

DATASET_NAMES: Tuple[str, ...] = ("cifar10", "cifar10-subset", "npz", "imagenette", "imagenet-subset",
                                  "imagefolder", "synthetic")

#: Per-dataset channel mean / std of the training images (RGB, in [0, 1]).
NORMALIZATION: Dict[str, Tuple[Tuple[float, float, float], Tuple[float, float, float]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

CIFAR10_CLASSES: List[str] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                              "truck"]

#: ``cifar10_subset.npz`` = the first rows of each official CIFAR-10 python batch, in batch order (its
#: PROVENANCE.md): (data_batch_1, ..., data_batch_5) for training, then test_batch.
CIFAR10_SUBSET_ROWS: Tuple[Tuple[int, int, int, int, int], int] = ((1017, 1017, 1017, 1101, 1017), 1017)

ENV_VAR = "REPGHOST_MINI_DATA"
_CIFAR_BATCH = 10_000  # images per official CIFAR-10 batch
_CIFAR_DOWNLOAD = "CIFAR-10 (163 MB, torchvision)"
_IMAGENETTE_DOWNLOAD = "Imagenette 160 px (94 MB, torchvision)"
#: What a failed download or a damaged download folder raises inside torchvision (URLError is an OSError;
#: MD5 mismatches and "not found or corrupted" are RuntimeErrors; damaged pickles/archives the rest).
_DOWNLOAD_ERRORS = (OSError, RuntimeError, EOFError, ValueError, tarfile.TarError, pickle.UnpicklingError)


class DataError(ValueError):
    """Data that cannot be used as it is (bad labels, empty split, undecodable file): one sentence on what is
    wrong and what to do."""


# ----------------------------------------------------------------------------------------------------------------
# Containers
# ----------------------------------------------------------------------------------------------------------------
class InMemoryImages(Dataset):
    """Images held as one uint8 tensor ``images`` of shape (N, 3, H, W) with int64 ``labels`` of shape (N,)."""

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"InMemoryImages expects uint8 images of shape (N, 3, H, W), got {images.dtype} "
                             f"{tuple(images.shape)}.")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"expected {images.shape[0]} labels, got shape {tuple(labels.shape)}.")
        self.images = images.contiguous()
        self.labels = labels.long()

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> Tuple[Tensor, int]:
        return self.images[index], int(self.labels[index])


@dataclass
class DataBundle:
    """A train/test pair plus what a model and a plot need to know about it (``resize``: the images are larger
    than ``image_size`` and are resized / resize-cropped to it)."""

    name: str
    train: Dataset
    test: Dataset
    num_classes: int
    class_names: List[str]
    image_size: int
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]
    source: str
    in_memory: bool = field(default=False)
    resize: bool = field(default=False)

    def __repr__(self) -> str:
        return (f"DataBundle({self.name!r}: {len(self.train)} train / {len(self.test)} test images, "
                f"{self.num_classes} classes, {self.image_size}px, from {self.source})")


# ----------------------------------------------------------------------------------------------------------------
# Wrapped datasets: Subset and ClassSlice, seen through in one place
# ----------------------------------------------------------------------------------------------------------------
class ClassSlice(Dataset):
    """The images of ``dataset`` whose label is in ``classes``, relabelled ``0..len(classes) - 1`` in that order;
    ``targets`` holds the new labels (so per-class code works as with an ImageFolder)."""

    def __init__(self, dataset: Dataset, classes: Sequence[int]) -> None:
        new_label = {int(c): i for i, c in enumerate(classes)}
        labels = _labels_of(dataset)
        self.dataset = dataset
        self.indices = [i for i, y in enumerate(labels) if y in new_label]
        self.targets = [new_label[labels[i]] for i in self.indices]
        self._new_label = new_label

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        x, y = self.dataset[self.indices[index]]
        return x, self._new_label[int(y)]


def _chain(ds: Dataset) -> List[Dataset]:
    """``ds`` and the datasets under it, outermost first: ``[ds, ds.dataset, ..., base]`` through any stack of
    :class:`~torch.utils.data.Subset` and :class:`ClassSlice` (just ``[ds]`` for an unwrapped dataset)."""
    chain = [ds]
    while isinstance(chain[-1], (Subset, ClassSlice)):
        chain.append(chain[-1].dataset)
    return chain


def _base_labels(base: Dataset) -> List[int]:
    """The labels of an unwrapped dataset, read without loading images."""
    if isinstance(base, InMemoryImages):
        return base.labels.tolist()
    labels = getattr(base, "targets", None)
    if labels is None and getattr(base, "samples", None) is not None:
        labels = [y for _, y in base.samples]
    if labels is None:
        raise ValueError(f"cannot read the labels of a {type(base).__name__} without loading every image; give it "
                         "a `targets` list of class indices (as an ImageFolder has).")
    return [int(y) for y in labels]


def _unwrap(ds: Dataset) -> Tuple[Dataset, List[int], List[int]]:
    """``(base, indices, labels)``: the dataset under all wrappers of ``ds`` (:func:`_chain`), the base index of
    every item of ``ds``, and every item's label as ``ds`` yields it (relabelled by a :class:`ClassSlice`). The one
    place that knows how the wrappers map items and labels; every other function goes through it."""
    chain = _chain(ds)
    base = chain[-1]
    indices, labels = list(range(len(base))), _base_labels(base)
    for wrapper in reversed(chain[:-1]):
        indices = [indices[i] for i in wrapper.indices]
        labels = [labels[i] for i in wrapper.indices]
        if isinstance(wrapper, ClassSlice):
            labels = [wrapper._new_label[y] for y in labels]
    return base, indices, labels


def _labels_of(ds: Dataset) -> List[int]:
    return _unwrap(ds)[2]


def _samples_of(ds: Dataset) -> List[Tuple[str, int]]:
    """``(path, label)`` of every item of a folder dataset (ImageFolder-like ``samples``) under any wrappers;
    empty for in-memory and other data."""
    base = _chain(ds)[-1]
    if getattr(base, "samples", None) is None:
        return []
    _, indices, labels = _unwrap(ds)
    return [(base.samples[i][0], y) for i, y in zip(indices, labels, strict=True)]


def _in_memory(ds: Dataset) -> bool:
    """Whether ``ds`` is an :class:`InMemoryImages`, possibly wrapped."""
    return isinstance(_chain(ds)[-1], InMemoryImages)


def _as_in_memory(ds: Dataset) -> InMemoryImages:
    """The items of in-memory data under any wrappers as one :class:`InMemoryImages` with the labels ``ds``
    yields (``ds`` itself when it is one)."""
    if isinstance(ds, InMemoryImages):
        return ds
    base, indices, labels = _unwrap(ds)
    return InMemoryImages(base.images[torch.tensor(indices, dtype=torch.long)], torch.tensor(labels, dtype=torch.long))


def _with_transform(ds: Dataset, transform: Callable) -> Dataset:
    """``ds`` rebuilt with the same wrappers around a shallow copy of its base dataset whose per-image
    ``transform`` is ``transform``; ``ds`` and its base stay as they are."""
    chain = _chain(ds)
    if not hasattr(chain[-1], "transform"):
        raise ValueError(f"cannot change the image transform of a {type(chain[-1]).__name__} (it has no "
                         "`transform` attribute); use in-memory images or an ImageFolder-like dataset.")
    out = copy.copy(chain[-1])
    out.transform = transform
    for wrapper in reversed(chain[:-1]):
        wrapper = copy.copy(wrapper)
        wrapper.dataset = out
        out = wrapper
    return out


# ----------------------------------------------------------------------------------------------------------------
# Finding data
# ----------------------------------------------------------------------------------------------------------------
def default_data_dir() -> Path:
    """The one folder downloads land in when neither ``path`` nor ``$REPGHOST_MINI_DATA`` is given: the
    repository's ``data/`` (next to the ``repghost_mini`` package in a source checkout, whatever the working
    directory), else ``$XDG_CACHE_HOME/repghost_mini`` (default ``~/.cache/repghost_mini``)."""
    package = next(p for p in Path(__file__).resolve().parents if p.name == "repghost_mini")
    checkout = package.parent / "data"
    if (checkout / "README.md").is_file():
        return checkout
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "repghost_mini"


def data_roots(path: Optional[Union[str, os.PathLike]] = None) -> List[Path]:
    """Folders searched, in order: ``[path]`` if given, else ``$REPGHOST_MINI_DATA`` (if set) and
    :func:`default_data_dir`. Downloads go to the first of them."""
    if path is not None:
        return [Path(path).expanduser()]
    roots = [Path(os.environ[ENV_VAR]).expanduser()] if os.environ.get(ENV_VAR) else []
    default = default_data_dir()
    return roots + ([default] if default not in roots else [])


def _not_found(name: str, tried: Sequence[Path], remedy: str) -> FileNotFoundError:
    listed = ", ".join(str(p) for p in tried)
    return FileNotFoundError(f"no {name} data found (looked for: {listed}); {remedy}.")


def _first_existing(candidates: Sequence[Path]) -> Optional[Path]:
    for c in candidates:
        if c.exists():
            return c
    return None


# ----------------------------------------------------------------------------------------------------------------
# Validation (once, at load, before any training step)
# ----------------------------------------------------------------------------------------------------------------
def check_labels(where: str, train: Tensor, test: Tensor, num_classes: Optional[int] = None) -> int:
    """Check that ``train``/``test`` labels are usable class indices and return the number of classes $K$.

    Both splits non-empty; labels in $0..K-1$ with every class present in ``train`` (so one stray label of
    $10^9$ cannot ask for $10^9$ classes); no test label the training split lacks; at most ``num_classes``
    classes when the data set has a fixed class list.
    """
    for split, labels in (("training", train), ("test", test)):
        if labels.numel() == 0:
            raise DataError(f"{where}: the {split} split holds no images; provide at least one image per class.")
        if int(labels.min()) < 0:
            raise DataError(f"{where}: the {split} split has label {int(labels.min())}; labels must be class "
                            "indices 0, 1, ..., K-1.")
    present = torch.unique(train)
    k = int(present[-1]) + 1
    if len(present) != k:
        missing = sorted(set(range(min(k, 10 ** 6))) - set(present.tolist()))[:3]
        raise DataError(f"{where}: the training labels are not 0..K-1 (largest {k - 1}, but {len(present)} "
                        f"distinct labels; e.g. {missing} have no image); relabel the classes as 0..K-1.")
    if num_classes is not None and k > num_classes:
        raise DataError(f"{where}: label {k - 1} but this data set has {num_classes} classes (0..{num_classes - 1}).")
    unseen = test[(test >= k)]
    if unseen.numel():
        raise DataError(f"{where}: the test split has label {int(unseen.max())}, which no training image has "
                        f"(training labels are 0..{k - 1}); a model cannot learn a class it never sees.")
    return num_classes or k


def check_images(samples: Sequence[Tuple[str, int]]) -> None:
    """Decode every image file in ``samples`` (``(path, label)`` pairs) once; raise :class:`DataError` naming the
    first file that does not decode (truncated, not an image). JPEGs decode at reduced scale (draft mode):
    every byte is still read and checked, at about half the cost."""
    from PIL import Image

    for path, _ in samples:
        try:
            with Image.open(path) as im:
                im.draft("RGB", (8, 8))
                im.load()
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            raise DataError(f"{path} is not a decodable image ({err}); replace or delete the file.") from None


# ----------------------------------------------------------------------------------------------------------------
# Readers
# ----------------------------------------------------------------------------------------------------------------
def load_npz(path: Union[str, os.PathLike]) -> Tuple[InMemoryImages, InMemoryImages]:
    """Read an .npz holding ``x_train, y_train, x_test, y_test`` (uint8 N x H x W x 3 images, integer labels)
    and check its labels (:func:`check_labels`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"npz file {str(path)!r} does not exist; check the path.")
    try:
        archive = np.load(path, allow_pickle=False)
        if not hasattr(archive, "files"):
            raise ValueError("a single array, not an archive")
    except Exception as err:
        raise DataError(f"could not read {str(path)!r} as a NumPy .npz archive ({type(err).__name__}: "
                        f"{str(err)[:80]}); check the file.") from None
    with archive:
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in archive.files]
        if missing:
            raise DataError(f"{path.name} lacks the arrays {missing}; an image .npz needs x_train, y_train, x_test, "
                            f"y_test (it has {sorted(archive.files)}).")
        splits = [_npz_split(archive, split, path.name) for split in ("train", "test")]
    if splits[0].images.shape[2:] != splits[1].images.shape[2:]:
        raise DataError(f"{path.name}: train images are {tuple(splits[0].images.shape[2:])} but test images "
                        f"{tuple(splits[1].images.shape[2:])}; both splits need one image size.")
    check_labels(path.name, splits[0].labels, splits[1].labels)
    return splits[0], splits[1]


def _npz_split(archive, split: str, name: str) -> InMemoryImages:
    try:
        x, y = archive[f"x_{split}"], archive[f"y_{split}"]
    except Exception as err:  # damaged member, object array (would need pickle)
        raise DataError(f"{name}: x_{split}/y_{split} cannot be read ({type(err).__name__}: {str(err)[:80]}); "
                        "arrays must be plain numeric arrays.") from None
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3 or min(x.shape[1:3], default=0) < 1:
        raise DataError(f"{name}: x_{split} must be uint8 images of shape (N, H, W, 3), got {x.dtype} {x.shape}.")
    if x.shape[1] != x.shape[2]:
        raise DataError(f"{name}: x_{split} holds {x.shape[1]}x{x.shape[2]} images, but the models take square "
                        "images; crop or resize them to one square size before saving the .npz.")
    if not np.issubdtype(y.dtype, np.integer) or y.shape != (x.shape[0],):
        raise DataError(f"{name}: y_{split} must be {x.shape[0]} integer labels, got {y.dtype} {y.shape}.")
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    return InMemoryImages(images, torch.from_numpy(y.astype(np.int64)))


def _decode_jpegs(blob: np.ndarray, offsets: np.ndarray, where: str = "JPEG blob",
                  keep: Optional[Sequence[int]] = None) -> Tensor:
    """Decode JPEG files stored back to back in ``blob`` (file i = ``blob[offsets[i]:offsets[i+1]]``) with PIL;
    only the files ``keep`` (default: all)."""
    from PIL import Image

    keep = range(len(offsets) - 1) if keep is None else keep
    images = None
    for k, i in enumerate(keep):
        try:
            with Image.open(io.BytesIO(blob[int(offsets[i]):int(offsets[i + 1])].tobytes())) as im:
                arr = np.asarray(im.convert("RGB"))
        except (OSError, ValueError, SyntaxError) as err:
            raise DataError(f"{where}: image {i} is not a decodable JPEG ({err}); get a fresh copy of the "
                            "file.") from None
        if images is None:
            images = np.empty((len(keep),) + arr.shape, dtype=np.uint8)
        if arr.shape != images.shape[1:]:
            raise DataError(f"{where}: image {i} is {arr.shape[:2]}, the first one {images.shape[1:3]}; all "
                            "images must have one size.")
        images[k] = arr
    if images is None:
        images = np.empty((0, 32, 32, 3), dtype=np.uint8)
    return torch.from_numpy(images.transpose(0, 3, 1, 2).copy())


def _load_jpeg_npz(path: Path, per_class: Tuple[Optional[int], Optional[int]] = (None, None)
                   ) -> Tuple[InMemoryImages, InMemoryImages]:
    """The full CIFAR-10 stored as concatenated JPEG files (``train_jpeg`` + ``train_offsets``, see PROVENANCE);
    only the images the per-class limits keep are decoded."""
    try:
        archive = np.load(path, allow_pickle=False)
        needed = ("train_jpeg", "train_offsets", "y_train", "test_jpeg", "test_offsets", "y_test")
        missing = [k for k in needed if k not in archive.files]
        if missing:
            raise DataError(f"{path.name} lacks the arrays {missing}; a JPEG .npz needs {list(needed)}.")
        out = []
        for split, limit in zip(("train", "test"), per_class, strict=True):
            labels = torch.from_numpy(archive[f"y_{split}"].astype(np.int64))
            offsets = archive[f"{split}_offsets"]
            if len(offsets) != len(labels) + 1:
                raise DataError(f"{path.name}: {split}_offsets must hold {len(labels) + 1} entries, got "
                                f"{len(offsets)}; get a fresh copy of the file.")
            keep = _first_per_class(labels.tolist(), limit) or list(range(len(labels)))
            images = _decode_jpegs(archive[f"{split}_jpeg"], offsets, f"{path.name} ({split})", keep)
            out.append(InMemoryImages(images, labels[torch.tensor(keep, dtype=torch.long)]))
    except (OSError, ValueError, KeyError, EOFError) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"could not read {path} as the CIFAR-10 JPEG archive ({type(err).__name__}: "
                        f"{str(err)[:80]}); get a fresh copy of the file.") from None
    check_labels(path.name, out[0].labels, out[1].labels, 10)
    return out[0], out[1]


def _load_torchvision_cifar(root: Path, download: bool, what: str = "CIFAR-10", tried: Sequence[Path] = ()
                            ) -> Tuple[InMemoryImages, InMemoryImages]:
    """CIFAR-10 through ``torchvision.datasets.CIFAR10`` (its MD5 checks included) from ``root`` (which holds or
    receives ``cifar-10-batches-py/``); ``what`` was looked for in ``tried`` (for the error message)."""
    from torchvision.datasets import CIFAR10

    folder = root / CIFAR10.base_folder
    out = []
    for train in (True, False):
        try:
            ds = CIFAR10(str(root), train=train, download=download)
        except _DOWNLOAD_ERRORS as err:  # offline, damaged files, a full disk: user-facing; bugs still raise
            if not download:
                raise DataError(f"{folder} is not a complete CIFAR-10 python download (a batch file is missing or "
                                "fails torchvision's MD5 check); delete that folder and download again.") from None
            looked = f" (looked for: {', '.join(map(str, tried))})" if tried else ""
            raise FileNotFoundError(f"no {what} data found{looked} and the download of {_CIFAR_DOWNLOAD} into "
                                    f"{root} failed ({type(err).__name__}: "
                                    f"{str(err).splitlines()[0][:100] if str(err) else 'no message'}); check the "
                                    f"internet connection and that {root} is writable, or set {ENV_VAR} to a "
                                    "folder holding cifar-10-batches-py/.") from None
        images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
        out.append(InMemoryImages(images, torch.tensor(ds.targets, dtype=torch.int64)))
    check_labels(str(folder), out[0].labels, out[1].labels, 10)
    return out[0], out[1]


def cut_cifar10_subset(train: InMemoryImages, test: InMemoryImages) -> Tuple[InMemoryImages, InMemoryImages]:
    """The exact CIFAR-10 subset from the full official CIFAR-10 (50,000 + 10,000 images in the official batch
    order, e.g. torchvision's ``CIFAR10``): the first :data:`CIFAR10_SUBSET_ROWS` rows of every batch."""
    rows, test_rows = CIFAR10_SUBSET_ROWS
    if len(train) != _CIFAR_BATCH * len(rows) or len(test) != _CIFAR_BATCH:
        raise DataError(f"the CIFAR-10 subset is cut from the full official CIFAR-10 (50000 + 10000 images), got "
                        f"{len(train)} + {len(test)}; download the complete CIFAR-10.")
    keep = torch.cat([torch.arange(n) + b * _CIFAR_BATCH for b, n in enumerate(rows)])
    return (InMemoryImages(train.images[keep], train.labels[keep]),
            InMemoryImages(test.images[:test_rows], test.labels[:test_rows]))


def _first_per_class(labels: Sequence[int], per_class: Optional[int]) -> Optional[List[int]]:
    if per_class is None:
        return None
    counts: Dict[int, int] = {}
    keep = []
    for i, y in enumerate(labels):
        if counts.get(int(y), 0) < per_class:
            counts[int(y)] = counts.get(int(y), 0) + 1
            keep.append(i)
    return keep


def _check_limit(per_class: Optional[int]) -> Optional[int]:
    if per_class is not None and (isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer))
                                  or per_class < 1):
        raise ValueError(f"per-class limit must be a positive integer or None, got {per_class!r}.")
    return per_class


def _limit(ds: Dataset, per_class: Optional[int]) -> Dataset:
    """The first ``per_class`` images of every class (in dataset order); the dataset itself if ``None``."""
    if _check_limit(per_class) is None:
        return ds
    if isinstance(ds, InMemoryImages):
        keep = torch.tensor(_first_per_class(ds.labels.tolist(), per_class), dtype=torch.long)
        return InMemoryImages(ds.images[keep], ds.labels[keep])
    return Subset(ds, _first_per_class([y for _, y in _samples_of(ds)], per_class))


def _synthetic(size: int, image_size: int = 32, num_classes: int = 10, seed: int = 0) -> InMemoryImages:
    """Random images with a faint class-dependent colour cast, so a model can learn something (smoke tests)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(size) % num_classes
    labels = labels[torch.randperm(size, generator=g)]
    base = torch.randint(0, 256, (size, 3, image_size, image_size), generator=g).float()
    palette = torch.rand(num_classes, 3, 1, 1, generator=g) * 255
    images = (0.6 * base + 0.4 * palette[labels]).round().clamp(0, 255).to(torch.uint8)
    return InMemoryImages(images, labels)


# ----------------------------------------------------------------------------------------------------------------
# The one entry point
# ----------------------------------------------------------------------------------------------------------------
def load_dataset(name: str, path: Optional[Union[str, os.PathLike]] = None, download: bool = True,
                 train_per_class: Optional[int] = None, test_per_class: Optional[int] = None,
                 synthetic_size: int = 512, image_size: Optional[int] = None) -> DataBundle:
    """Find (or download) dataset ``name``, validate it and return a :class:`DataBundle`.

    ``name`` is one of :data:`DATASET_NAMES`. ``path`` is a folder to search (only that folder) or, for the
    CIFAR family and ``"npz"``, an .npz file. ``train_per_class`` / ``test_per_class`` keep only the first images
    of every class (fast runs). ``image_size``: the side image folders are resized to (e.g. the size a model's
    card records; default: decided from the first image); data sets of one fixed size ignore it. Raises
    ``FileNotFoundError`` listing every path looked at when nothing is found, :class:`DataError` when the data found
    cannot be used.
    """
    key = str(name).lower().replace("_", "-")
    if key not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}.")
    limits = (train_per_class, test_per_class)
    for limit in limits:
        _check_limit(limit)
    roots = data_roots(path)
    explicit_file = path is not None and Path(path).suffix == ".npz"
    cifar_norm = NORMALIZATION["cifar10"]
    if key == "synthetic":
        train, test = _synthetic(synthetic_size, seed=0), _synthetic(max(synthetic_size // 4, 10), seed=1)
        return _bundle(key, train, test, [f"class{i}" for i in range(10)], 32, cifar_norm, "synthetic", limits)
    if key == "npz" or (explicit_file and key in ("cifar10", "cifar10-subset")):
        if not explicit_file:
            raise ValueError("dataset 'npz' needs path=<file.npz> holding x_train, y_train, x_test, y_test.")
        train, test = load_npz(path)
        n = int(train.labels.max()) + 1
        names = CIFAR10_CLASSES if n == 10 else [str(i) for i in range(n)]
        return _bundle(key, train, test, names, train.images.shape[-1], cifar_norm, str(path), limits)
    if key == "cifar10-subset":
        return _cifar10_subset(roots, download, limits)
    if key == "cifar10":
        return _cifar10(roots, download, limits)
    if key == "imagenette":
        return _imagenette(roots, download, limits, size=160)
    if key == "imagefolder":
        if path is None:
            raise ValueError("dataset 'imagefolder' needs path=<folder with train/ and val/ class sub-folders>.")
        tried = [roots[0]]
    else:
        tried = [r / "imagenet-subset" for r in roots] + ([roots[0]] if path is not None else [])
    found = next((t for t in tried if (t / "train").is_dir() and (t / "val").is_dir()), None)
    if found is not None:
        return _image_folder(key, found, limits, size=image_size)
    if key == "imagenet-subset" and (download or _first_existing([r / "imagenette2-160" for r in roots])):
        return _imagenette(roots, download, limits, size=64, instead_of=tried)
    wanted = "imagenet-subset/train/<class>/ and val/<class>/" if key == "imagenet-subset" else "train/ and val/"
    remedy = f"set {ENV_VAR} to a folder holding {wanted}"
    if key == "imagenet-subset":
        remedy += f", or pass download=True to fall back to {_IMAGENETTE_DOWNLOAD} (needs internet access)"
    raise _not_found(key, tried, remedy)


def _bundle(key: str, train, test, class_names: Sequence[str], size: int, norm, source: str,
            limits: Tuple[Optional[int], Optional[int]], resize: bool = False) -> DataBundle:
    """Apply the per-class limits and check what is kept (non-empty splits; every image file decodes)."""
    train, test = _limit(train, limits[0]), _limit(test, limits[1])
    for split, ds in (("training", train), ("test", test)):
        if len(ds) == 0:
            raise DataError(f"{source}: the {split} split holds no images; provide at least one image per class.")
        if not isinstance(ds, InMemoryImages):
            check_images(_samples_of(ds))
    in_memory = isinstance(train, InMemoryImages)
    return DataBundle(key, train, test, len(class_names), list(class_names), size, norm[0], norm[1], source,
                      in_memory, resize)


def _cifar10_subset(roots: List[Path], download: bool, limits) -> DataBundle:
    """``cifar10_subset.npz`` if present, else cut from an official CIFAR-10 (found, else downloaded)."""
    tried = [r / sub / "cifar10_subset.npz" for r in roots for sub in ("", "cifar10-subset")]
    found = _first_existing(tried)
    if found is not None:
        train, test = load_npz(found)
        check_labels(found.name, train.labels, test.labels, 10)
        return _bundle("cifar10-subset", train, test, CIFAR10_CLASSES, 32, NORMALIZATION["cifar10"], str(found),
                       limits)
    batches = _first_existing([r / "cifar-10-batches-py" for r in roots])
    if batches is None and not download:
        raise _not_found("CIFAR-10 subset", tried + [r / "cifar-10-batches-py" for r in roots],
                         f"set {ENV_VAR} to a folder holding cifar10_subset.npz or cifar-10-batches-py/, or pass "
                         f"download=True (CLI: drop --no-download) to download {_CIFAR_DOWNLOAD} into {roots[0]} "
                         "and cut the exact subset from it")
    root = batches.parent if batches is not None else roots[0]
    train, test = cut_cifar10_subset(*_load_torchvision_cifar(root, batches is None, "CIFAR-10 subset", tried))
    source = f"{root / 'cifar-10-batches-py'} (first rows of each batch = cifar10_subset.npz)"
    return _bundle("cifar10-subset", train, test, CIFAR10_CLASSES, 32, NORMALIZATION["cifar10"], source, limits)


def _cifar10(roots: List[Path], download: bool, limits) -> DataBundle:
    """Full CIFAR-10: torchvision's ``cifar-10-batches-py`` or the JPEG copy; downloaded when neither is there."""
    tried = []
    for r in roots:
        tried += [r / "cifar-10-batches-py", r / "cifar10_full_jpeg.npz",
                  r / "cifar10-subset" / "cifar10_full_jpeg.npz"]
    found = _first_existing(tried)
    if found is not None and found.name == "cifar-10-batches-py":
        train, test = _load_torchvision_cifar(found.parent, download=False)
    elif found is not None:
        train, test = _load_jpeg_npz(found, limits)
    elif not download:
        raise _not_found("CIFAR-10", tried, f"set {ENV_VAR} to a folder holding cifar-10-batches-py/ or "
                                            f"cifar10_full_jpeg.npz, or pass download=True (CLI: drop --no-download) "
                                            f"to download {_CIFAR_DOWNLOAD} into {roots[0]}")
    else:
        train, test = _load_torchvision_cifar(roots[0], True, "CIFAR-10", tried)
        found = roots[0] / "cifar-10-batches-py"
    return _bundle("cifar10", train, test, CIFAR10_CLASSES, 32, NORMALIZATION["cifar10"], str(found), limits)


def _imagenette(roots: List[Path], download: bool, limits, size: int,
                instead_of: Optional[Sequence[Path]] = None) -> DataBundle:
    """Imagenette (10 ImageNet classes, 160 px shorter side) through torchvision, read as an ImageFolder;
    ``size`` < 160 resizes (``instead_of``: the ImageNet-subset folders that were not there)."""
    from torchvision.datasets import Imagenette

    tried = [r / "imagenette2-160" for r in roots]
    found = _first_existing(tried)
    if found is None and not download:
        raise _not_found("Imagenette", tried, f"set {ENV_VAR} to a folder holding imagenette2-160/, or pass "
                                              f"download=True (CLI: drop --no-download) to download "
                                              f"{_IMAGENETTE_DOWNLOAD} into {roots[0]}")
    root = found.parent if found is not None else roots[0]
    if found is None:
        try:
            Imagenette(str(root), split="train", size="160px", download=True)
        except _DOWNLOAD_ERRORS as err:  # offline, a damaged archive, a full disk: user-facing
            raise FileNotFoundError(f"no {'imagenet-subset' if instead_of else 'Imagenette'} data found (looked "
                                    f"for: {', '.join(str(p) for p in list(instead_of or []) + tried)}) and the "
                                    f"download of {_IMAGENETTE_DOWNLOAD} into {root} failed ({type(err).__name__}: "
                                    f"{str(err).splitlines()[0][:100] if str(err) else 'no message'}); check the "
                                    f"internet connection and that {root} is writable, or set {ENV_VAR}.") from None
    folder = root / "imagenette2-160"
    names = {w: c[0] for w, c in Imagenette._WNID_TO_CLASS.items()}
    source = str(folder) + (f" (Imagenette at {size} px: no imagenet-subset/ found)" if instead_of else "")
    return _image_folder("imagenette", folder, limits, size=size, names=names, source=source)


def _image_folder(key: str, root: Path, limits, size: Optional[int] = None,
                  names: Optional[Dict[str, str]] = None, source: Optional[str] = None) -> DataBundle:
    """An ImageFolder root with ``train/<class>/`` and ``val/<class>/`` (files that are not images by their
    extension, e.g. a README, are ignored; image files must decode). ``size``: resize to it (default: the
    first training image's shorter side, 64 if that is <= 64, at most 224)."""
    from PIL import Image
    from torchvision.datasets import ImageFolder

    splits = []
    for split in ("train", "val"):
        try:
            splits.append(ImageFolder(str(root / split)))
        except (FileNotFoundError, OSError) as err:
            raise DataError(f"{root / split} is not a usable image folder ({str(err).splitlines()[0][:120]}); "
                            "put the images in one sub-folder per class.") from None
    train, test = splits
    if train.classes != test.classes:
        raise DataError(f"{root}: train/ and val/ must hold the same class folders.")
    first = train.samples[0][0]
    if size is None:
        check_images([train.samples[0]])
        with Image.open(first) as im:
            native = min(im.size)
        size = 64 if native <= 64 else min(native, 224)
    resize = key == "imagenette" or size > 64
    norm = NORMALIZATION["imagenet"]
    train.transform = train_transforms(size, norm[0], norm[1], resize=resize)
    test.transform = eval_transforms(size, norm[0], norm[1])
    table = dict(names or {})
    classes_tsv = root / "classes.tsv"
    if classes_tsv.is_file():  # wnid -> readable name (Tiny-ImageNet-100 ships one)
        table.update(line.split("\t", 1) for line in classes_tsv.read_text().splitlines() if "\t" in line)
    class_names = [table.get(c, c).strip() for c in train.classes]
    return _bundle(key, train, test, class_names, size, norm, source or str(root), limits, resize)


# ----------------------------------------------------------------------------------------------------------------
# Augmentation
# ----------------------------------------------------------------------------------------------------------------
def train_transforms(image_size: int, mean: Sequence[float], std: Sequence[float], random_erasing: float = 0.2,
                     resize: Optional[bool] = None):
    """Per-image ``transforms.v2`` pipeline: crop + flip + normalize + random erasing. The crop is a random-resized
    crop for larger images (``resize``, default: ``image_size > 64``); for small images (<= 64 px) it pads by 1/8
    after fitting the image to ``image_size`` (shorter side resized, centre crop: nothing changes for an image
    already at that size, and a folder of smaller, larger or non-square images still loads)."""
    from torchvision.transforms import v2

    resize = image_size > 64 if resize is None else resize
    crop = ([v2.RandomResizedCrop(image_size, scale=(0.35, 1.0), antialias=True)] if resize
            else [*_fit(image_size), v2.RandomCrop(image_size, padding=image_size // 8)])
    steps = [v2.ToImage(), v2.RGB(), *crop, v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32, scale=True),
             v2.Normalize(list(mean), list(std))]
    if random_erasing > 0:
        steps.append(v2.RandomErasing(p=random_erasing))
    return v2.Compose(steps)


def eval_transforms(image_size: int, mean: Sequence[float], std: Sequence[float]):
    """Per-image evaluation pipeline: the shorter side resized to ``image_size`` and centre-cropped (an image
    already at that size is left as it is), normalized."""
    from torchvision.transforms import v2

    return v2.Compose([v2.ToImage(), v2.RGB(), *_fit(image_size), v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(list(mean), list(std))])


def _fit(image_size: int) -> list:
    from torchvision.transforms import v2

    return [v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)]


class BatchAugment:
    r"""Random crop with zero padding, horizontal flip, normalization and random erasing for a uint8 batch.

    The same operations as ``v2.RandomCrop(size, padding)``, ``v2.RandomHorizontalFlip()``,
    ``v2.Normalize(mean, std)`` and ``v2.RandomErasing(p, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0)``,
    but drawn independently per image for a whole (N, 3, H, W) batch at once (a v2 transform applied to a
    batch tensor would use one crop for all images). Crop and flip are a single gather:
    $\text{out}[n, c, i, j] = \text{pad}(x)[n, c, o^y_n + i, \; o^x_n + (W-1-j \text{ if flip}_n \text{ else } j)]$.
    Calling with ``train=False`` only normalizes.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], padding: int = 4, flip: bool = True,
                 random_erasing: float = 0.2, erase_scale: Tuple[float, float] = (0.02, 0.33),
                 erase_ratio: Tuple[float, float] = (0.3, 3.3)) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255
        self.padding, self.flip, self.random_erasing = padding, flip, random_erasing
        self.erase_scale, self.erase_ratio = erase_scale, erase_ratio

    def crop_flip(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """Per-image random padded crop and flip of a uint8 (N, C, H, W) batch (still uint8)."""
        n, _, h, w = x.shape
        p = self.padding
        rows = torch.arange(h).expand(n, h)
        cols = torch.arange(w).expand(n, w)
        if self.flip:
            flipped = torch.rand(n, generator=generator) < 0.5
            cols = torch.where(flipped[:, None], cols.flip(1), cols)
        if p > 0:
            x = torch.nn.functional.pad(x, (p, p, p, p))
            rows = rows + torch.randint(0, 2 * p + 1, (n, 1), generator=generator)
            cols = cols + torch.randint(0, 2 * p + 1, (n, 1), generator=generator)
        index = torch.arange(n)[:, None, None]
        out = x[index, :, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C): advanced dims come first
        return out.permute(0, 3, 1, 2)

    def erase_boxes(self, n: int, h: int, w: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """Boolean (N, H, W) masks of the erased rectangles (up to 10 tries per image, as in v2.RandomErasing)."""
        tries = 10
        area = h * w * torch.empty(n, tries).uniform_(*self.erase_scale, generator=generator)
        log_r = torch.empty(n, tries).uniform_(math.log(self.erase_ratio[0]), math.log(self.erase_ratio[1]),
                                               generator=generator)
        bh = (area * log_r.exp()).sqrt().round().long()
        bw = (area / log_r.exp()).sqrt().round().long()
        ok = (bh < h) & (bw < w)
        pick = ok.float().argmax(1)  # first valid try
        bh, bw = bh.gather(1, pick[:, None])[:, 0], bw.gather(1, pick[:, None])[:, 0]
        apply = ok.any(1) & (torch.rand(n, generator=generator) < self.random_erasing)
        top = (torch.rand(n, generator=generator) * (h - bh + 1).clamp(min=1)).long()
        left = (torch.rand(n, generator=generator) * (w - bw + 1).clamp(min=1)).long()
        r = torch.arange(h)[None, :]
        c = torch.arange(w)[None, :]
        in_rows = (r >= top[:, None]) & (r < (top + bh)[:, None])
        in_cols = (c >= left[:, None]) & (c < (left + bw)[:, None])
        return in_rows[:, :, None] & in_cols[:, None, :] & apply[:, None, None]

    def normalize(self, x: Tensor) -> Tensor:
        return (x.float() - self.mean) / self.std

    def __call__(self, x: Tensor, generator: Optional[torch.Generator] = None, train: bool = True) -> Tensor:
        if x.dtype != torch.uint8 or x.dim() != 4:
            raise ValueError(f"BatchAugment expects a uint8 (N, C, H, W) batch, got {x.dtype} {tuple(x.shape)}.")
        if not train:
            return self.normalize(x).contiguous()
        out = self.normalize(self.crop_flip(x, generator))
        if self.random_erasing > 0:
            mask = self.erase_boxes(x.shape[0], x.shape[2], x.shape[3], generator)
            out = out.masked_fill(mask[:, None], 0.0)
        return out.contiguous()


def denormalize(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Undo normalization: (N, 3, H, W) float -> images in [0, 1] (for plotting)."""
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (x.detach().cpu().float() * s + m).clamp(0, 1)


# ----------------------------------------------------------------------------------------------------------------
# Loaders
# ----------------------------------------------------------------------------------------------------------------
def default_workers() -> int:
    """DataLoader worker processes for folder datasets: leave one core for the model, at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(8, cores - 1))


class InMemoryLoader:
    """Batches of an :class:`InMemoryImages`, augmented per batch by :class:`BatchAugment`.

    Shuffling uses :class:`~torch.utils.data.DistributedSampler` (one replica unless training with DDP), so
    epoch ``e`` always yields the same order and the same augmentation for the same ``seed`` and ``rank``:
    call :meth:`set_epoch` before iterating (resuming a run reproduces the remaining epochs exactly).
    """

    def __init__(self, data: InMemoryImages, batch_size: int, augment: Optional[BatchAugment], train: bool,
                 seed: int = 0, rank: int = 0, world_size: int = 1, drop_last: Optional[bool] = None) -> None:
        self.data, self.batch_size, self.augment, self.train = data, batch_size, augment, train
        self.seed, self.rank = seed, rank
        self.sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, shuffle=train, seed=seed)
        per_rank = len(self.sampler)
        self.drop_last = (train and per_rank >= batch_size) if drop_last is None else drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Tuple[Tensor, Tensor]]:
        indices = torch.tensor(list(iter(self.sampler)), dtype=torch.long)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 1_009 + self.rank)
        for b in range(len(self)):
            idx = indices[b * self.batch_size:(b + 1) * self.batch_size]
            x = self.data.images[idx]
            x = self.augment(x, g, train=self.train) if self.augment is not None else x.float() / 255
            yield x, self.data.labels[idx]


class _EpochLoader:
    """A torch DataLoader over a folder dataset with a :meth:`set_epoch` like :class:`InMemoryLoader`."""

    def __init__(self, loader: DataLoader, seed: int) -> None:
        self.loader, self.seed = loader, seed
        self.sampler = loader.sampler

    def set_epoch(self, epoch: int) -> None:
        if isinstance(self.sampler, DistributedSampler):
            self.sampler.set_epoch(epoch)
        if self.loader.generator is not None:  # worker seeds for the random transforms
            self.loader.generator.manual_seed(self.seed * 1000 + epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        return iter(self.loader)


def _resize(bundle: DataBundle) -> bool:
    return bundle.resize or bundle.image_size > 64


def _eval_transform(bundle: DataBundle):
    return eval_transforms(bundle.image_size, bundle.mean, bundle.std)


def _folder_loader(ds: Dataset, batch_size: int, sampler: DistributedSampler, workers: Optional[int], seed: int,
                   drop_last: bool) -> _EpochLoader:
    """A DataLoader over per-image-transformed data: ``workers`` processes (default :func:`default_workers`),
    pinned memory when CUDA is present, worker seeds from its own generator (never the global RNG's state)."""
    g = torch.Generator().manual_seed(seed * 1000)
    dl = DataLoader(ds, batch_size=batch_size, sampler=sampler,
                    num_workers=default_workers() if workers is None else workers,
                    pin_memory=torch.cuda.is_available(), drop_last=drop_last, generator=g, persistent_workers=False)
    return _EpochLoader(dl, seed)


def eval_loader(bundle: DataBundle, dataset: Dataset, batch_size: int = 256, workers: Optional[int] = None):
    """Batches ``(float32 normalized (N, 3, H, W), int64 labels)`` of ``dataset`` in order, made exactly as
    :func:`make_loaders` makes its test loader: for ``bundle.test``, a :func:`holdout_split` hold-out, any
    wrapped part of them. In-memory data -> :class:`InMemoryLoader` (normalization only); folder data -> the
    dataset's own (evaluation) transform, ``workers`` processes."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if _in_memory(dataset):
        return InMemoryLoader(_as_in_memory(dataset), batch_size, BatchAugment(bundle.mean, bundle.std),
                              train=False, drop_last=False)
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=False)
    return _folder_loader(dataset, batch_size, sampler, workers, seed=0, drop_last=False)


def make_loaders(bundle: DataBundle, batch_size: int = 128, augment: bool = True, random_erasing: float = 0.2,
                 workers: Optional[int] = None, seed: int = 0, rank: int = 0, world_size: int = 1,
                 eval_batch_size: Optional[int] = None):
    """``(train_loader, test_loader)`` yielding ``(float32 normalized (N, 3, H, W), int64 labels)`` on the CPU.

    In-memory data (CIFAR, also through :func:`first_classes`) -> :class:`InMemoryLoader` with batched
    augmentation (no worker processes). Folder data -> ``DataLoader`` with ``workers`` processes (default
    :func:`default_workers`), pinned memory when CUDA is present, per-image ``transforms.v2``: the training split as
    given for the default augmentation, else the same wrappers around a copy with the asked-for transform (the
    caller's dataset stays as it is). ``rank`` / ``world_size`` shard the training data for DDP; the test loader
    is :func:`eval_loader` of ``bundle.test``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    test = eval_loader(bundle, bundle.test, eval_batch_size or max(batch_size, 256), workers)
    if _in_memory(bundle.train):
        aug = BatchAugment(bundle.mean, bundle.std, padding=bundle.image_size // 8 if augment else 0,
                           flip=augment, random_erasing=random_erasing if augment else 0.0)
        train = InMemoryLoader(_as_in_memory(bundle.train), batch_size, aug, train=True, seed=seed, rank=rank,
                               world_size=world_size)
        return train, test
    train_set = bundle.train
    if random_erasing != 0.2 or not augment:
        train_set = _with_transform(train_set, train_transforms(bundle.image_size, bundle.mean, bundle.std,
                                                                random_erasing, _resize(bundle))
                                    if augment else _eval_transform(bundle))
    sampler = DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    return _folder_loader(train_set, batch_size, sampler, workers, seed, len(sampler) >= batch_size), test


# ----------------------------------------------------------------------------------------------------------------
# Class slices and held-out splits (e.g. 10 of Tiny-ImageNet-100's classes, so a CPU-minute run learns something
# worth looking at; a validation split to choose a checkpoint without looking at the test split)
# ----------------------------------------------------------------------------------------------------------------
def first_classes(bundle: DataBundle, k: int) -> DataBundle:
    """``bundle`` restricted to its first ``k`` classes, relabelled ``0..k-1`` (e.g. a 10-class slice of
    Tiny-ImageNet-100: chance level 10% instead of 1%, so a short run can learn something worth looking at)."""
    if not isinstance(k, int) or not 1 < k <= bundle.num_classes:
        raise ValueError(f"k must be an integer from 2 to {bundle.num_classes} (the classes of {bundle.name}), "
                         f"got {k!r}.")
    if k == bundle.num_classes:
        return bundle
    classes = list(range(k))
    return replace(bundle, train=ClassSlice(bundle.train, classes), test=ClassSlice(bundle.test, classes),
                   num_classes=k, class_names=bundle.class_names[:k])


def holdout_split(bundle: DataBundle, fraction: float = 0.1, seed: int = 0) -> Tuple[DataBundle, Dataset]:
    """``(bundle without the held-out images, the held-out images)``: a stratified ``fraction`` of the training
    split set aside, e.g. to choose a checkpoint without looking at the test split.

    Every class gives ``round(fraction * n)`` of its ``n`` training images (at least 1, at most ``n - 1``), drawn
    with ``torch.Generator().manual_seed(seed)``: the same seed gives the same split, and the global RNG is not
    touched. The held-out images come as the test split does, without augmentation: an :class:`InMemoryImages`
    for in-memory data, else the training images under the evaluation transform; :func:`eval_loader` batches
    them. Works through :func:`first_classes` (labels as the bundle yields them).
    """
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction <= 0.5:
        raise ValueError(f"fraction must be a number in (0, 0.5], got {fraction!r}.")
    labels = torch.tensor(_labels_of(bundle.train), dtype=torch.long)
    counts = torch.bincount(labels, minlength=bundle.num_classes)
    if int(counts.min()) < 2:
        c = int(counts.argmin())
        name = f" ({bundle.class_names[c]!r})" if c < len(bundle.class_names) else ""
        raise ValueError(f"holdout_split needs at least 2 training images in every class (one to train on, one to "
                         f"hold out), but class {c}{name} has {int(counts[c])}.")
    g = torch.Generator().manual_seed(seed)
    held = torch.zeros(len(labels), dtype=torch.bool)
    for c, n in enumerate(counts.tolist()):
        members = (labels == c).nonzero().flatten()
        take = min(max(round(fraction * n), 1), n - 1)
        held[members[torch.randperm(n, generator=g)[:take]]] = True
    train = Subset(bundle.train, (~held).nonzero().flatten().tolist())
    holdout: Dataset = Subset(bundle.train, held.nonzero().flatten().tolist())
    if _in_memory(bundle.train):
        train, holdout = _as_in_memory(train), _as_in_memory(holdout)
    else:
        holdout = _with_transform(holdout, _eval_transform(bundle))
    return replace(bundle, train=train), holdout
