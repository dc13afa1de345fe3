r"""Datasets and loaders for training RepGhostNet on real images (paper Sec. 4.1, "Implementation Details").

The paper trains with "regular image crop and flip in timm" plus random erasing with probability 0.2. We do the
same at small scale:

* **CIFAR-10** (32x32): random crop with 4 px zero padding, horizontal flip, random erasing $p=0.2$.
* **ImageNet subsets** (Imagenette 160 px, Tiny-ImageNet-100 64 px, any ImageFolder): the same for 64 px images,
  random-resized crop for larger ones; centre crop for evaluation.

Where data is looked for (first hit wins): an explicit ``path`` argument (then *only* there), else the folder in
the environment variable ``REPGHOST_MINI_DATA``, else ``./data``. When nothing is found and no download is
possible, one error lists every path that was tried. A ``"synthetic"`` dataset exists for smoke tests and is only
used when asked for by name.

Small datasets (CIFAR-10 from an .npz or the torchvision batches) are held in memory as one uint8 tensor and
augmented a whole batch at a time (:class:`BatchAugment`), so the data never waits on per-image Python code.
Folder datasets use a :class:`torch.utils.data.DataLoader` with ``torchvision.transforms.v2`` per image.
"""
from __future__ import annotations

import copy
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

__all__ = [
    "DATASET_NAMES", "NORMALIZATION", "CIFAR10_CLASSES", "DataBundle", "InMemoryImages", "BatchAugment",
    "InMemoryLoader", "load_dataset", "load_npz", "make_loaders", "train_transforms", "eval_transforms",
    "data_roots", "denormalize", "default_workers", "first_classes", "ClassSlice",
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

ENV_VAR = "REPGHOST_MINI_DATA"
HOW_TO_PROVIDE = (f"pass a path (a folder or a .npz file), set {ENV_VAR} to the folder holding the data "
                  "(e.g. the shared folder with cifar10-subset/), or run once with internet access to download")


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
    """A train/test pair plus what a model and a plot need to know about it."""

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

    def __repr__(self) -> str:
        return (f"DataBundle({self.name!r}: {len(self.train)} train / {len(self.test)} test images, "
                f"{self.num_classes} classes, {self.image_size}px, from {self.source})")


# ----------------------------------------------------------------------------------------------------------------
# Finding data
# ----------------------------------------------------------------------------------------------------------------
def data_roots(path: Optional[Union[str, os.PathLike]] = None) -> List[Path]:
    """Folders searched, in order: ``[path]`` if given, else ``$REPGHOST_MINI_DATA`` (if set) and ``./data``."""
    if path is not None:
        return [Path(path).expanduser()]
    roots = []
    if os.environ.get(ENV_VAR):
        roots.append(Path(os.environ[ENV_VAR]).expanduser())
    roots.append(Path("data"))
    return roots


def _not_found(name: str, tried: Sequence[Path], extra: str = "") -> FileNotFoundError:
    listed = ", ".join(str(p) for p in tried)
    return FileNotFoundError(f"no {name} data found (looked for: {listed}){extra}; {HOW_TO_PROVIDE}.")


def _first_existing(candidates: Sequence[Path]) -> Optional[Path]:
    for c in candidates:
        if c.exists():
            return c
    return None


# ----------------------------------------------------------------------------------------------------------------
# Readers
# ----------------------------------------------------------------------------------------------------------------
def load_npz(path: Union[str, os.PathLike]) -> Tuple[InMemoryImages, InMemoryImages]:
    """Read an .npz holding ``x_train, y_train, x_test, y_test`` (uint8 N x H x W x 3 images, integer labels)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"npz file {str(path)!r} does not exist; check the path.")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as err:
        raise ValueError(f"could not read {str(path)!r} as a NumPy .npz archive ({type(err).__name__}).") from None
    with archive:
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in archive.files]
        if missing:
            raise ValueError(f"{path.name} lacks the arrays {missing}; an image .npz needs x_train, y_train, x_test, "
                             f"y_test (it has {sorted(archive.files)}).")
        splits = []
        for split in ("train", "test"):
            x, y = archive[f"x_{split}"], archive[f"y_{split}"]
            if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:
                raise ValueError(f"{path.name}: x_{split} must be uint8 images of shape (N, H, W, 3), got "
                                 f"{x.dtype} {x.shape}.")
            if not np.issubdtype(y.dtype, np.integer) or y.shape != (x.shape[0],):
                raise ValueError(f"{path.name}: y_{split} must be {x.shape[0]} integer labels, got {y.dtype} "
                                 f"{y.shape}.")
            images = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
            splits.append(InMemoryImages(images, torch.from_numpy(y.astype(np.int64))))
        if splits[0].labels.min() < 0:
            raise ValueError(f"{path.name}: labels must be non-negative class indices.")
    return splits[0], splits[1]


def _decode_jpegs(blob: np.ndarray, offsets: np.ndarray) -> Tensor:
    """Decode JPEG files stored back to back in ``blob`` (file i = ``blob[offsets[i]:offsets[i+1]]``) with PIL."""
    from PIL import Image

    images = np.empty((len(offsets) - 1, 32, 32, 3), dtype=np.uint8)
    for i in range(len(offsets) - 1):
        with Image.open(io.BytesIO(blob[int(offsets[i]):int(offsets[i + 1])].tobytes())) as im:
            arr = np.asarray(im.convert("RGB"))
        if i == 0 and arr.shape != (32, 32, 3):
            images = np.empty((len(offsets) - 1,) + arr.shape, dtype=np.uint8)
        images[i] = arr
    return torch.from_numpy(images.transpose(0, 3, 1, 2).copy())


def _load_jpeg_npz(path: Path) -> Tuple[InMemoryImages, InMemoryImages]:
    """The full CIFAR-10 stored as concatenated JPEG files (``train_jpeg`` + ``train_offsets``, see PROVENANCE)."""
    with np.load(path, allow_pickle=False) as archive:
        needed = ("train_jpeg", "train_offsets", "y_train", "test_jpeg", "test_offsets", "y_test")
        missing = [k for k in needed if k not in archive.files]
        if missing:
            raise ValueError(f"{path.name} lacks the arrays {missing}; a JPEG .npz needs {list(needed)}.")
        out = []
        for split in ("train", "test"):
            images = _decode_jpegs(archive[f"{split}_jpeg"], archive[f"{split}_offsets"])
            out.append(InMemoryImages(images, torch.from_numpy(archive[f"y_{split}"].astype(np.int64))))
    return out[0], out[1]


def _load_torchvision_cifar(root: Path, download: bool) -> Tuple[InMemoryImages, InMemoryImages]:
    from torchvision.datasets import CIFAR10

    out = []
    for train in (True, False):
        ds = CIFAR10(str(root), train=train, download=download)
        images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
        out.append(InMemoryImages(images, torch.tensor(ds.targets, dtype=torch.int64)))
    return out[0], out[1]


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


def _limit(ds: Dataset, per_class: Optional[int]) -> Dataset:
    """The first ``per_class`` images of every class (in dataset order); the dataset itself if ``None``."""
    if per_class is None:
        return ds
    if per_class < 1:
        raise ValueError(f"per-class limit must be >= 1, got {per_class}.")
    if isinstance(ds, InMemoryImages):
        keep = torch.tensor(_first_per_class(ds.labels.tolist(), per_class))
        return InMemoryImages(ds.images[keep], ds.labels[keep])
    labels = getattr(ds, "targets", None)
    if labels is None:
        labels = [y for _, y in getattr(ds, "samples", [])]
    return Subset(ds, _first_per_class(labels, per_class))


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
                 synthetic_size: int = 512) -> DataBundle:
    """Find (or download) dataset ``name`` and return a :class:`DataBundle`.

    ``name`` is one of :data:`DATASET_NAMES`. ``path`` is a folder to search (only that folder) or, for the
    CIFAR family and ``"npz"``, an .npz file. ``train_per_class`` / ``test_per_class`` keep only the first images
    of every class (fast runs). Raises ``FileNotFoundError`` listing every path looked at when nothing is found.
    """
    key = name.lower().replace("_", "-")
    if key not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}.")
    roots = data_roots(path)
    explicit_file = path is not None and Path(path).suffix == ".npz"
    cifar_norm = NORMALIZATION["cifar10"]
    imnet_norm = NORMALIZATION["imagenet"]

    def bundle(train, test, num_classes, class_names, size, norm, source, in_memory):
        train, test = _limit(train, train_per_class), _limit(test, test_per_class)
        return DataBundle(key, train, test, num_classes, list(class_names), size, norm[0], norm[1], source, in_memory)

    if key == "synthetic":
        train = _synthetic(synthetic_size, seed=0)
        test = _synthetic(max(synthetic_size // 4, 10), seed=1)
        return bundle(train, test, 10, [f"class{i}" for i in range(10)], 32, cifar_norm, "synthetic", True)

    if key == "npz" or (explicit_file and key in ("cifar10", "cifar10-subset")):
        if not explicit_file:
            raise ValueError("dataset 'npz' needs path=<file.npz> holding x_train, y_train, x_test, y_test.")
        train, test = load_npz(path)
        n_classes = int(max(train.labels.max(), test.labels.max())) + 1
        names = CIFAR10_CLASSES if n_classes == 10 else [str(i) for i in range(n_classes)]
        return bundle(train, test, n_classes, names, train.images.shape[-1], cifar_norm, str(path), True)

    if key == "cifar10-subset":
        tried = [r / sub / "cifar10_subset.npz" for r in roots for sub in ("", "cifar10-subset")]
        found = _first_existing(tried)
        if found is None:
            raise _not_found("CIFAR-10 subset", tried)
        train, test = load_npz(found)
        return bundle(train, test, 10, CIFAR10_CLASSES, 32, cifar_norm, str(found), True)

    if key == "cifar10":
        tried = []
        for r in roots:
            tried += [r / "cifar-10-batches-py", r / "cifar10_full_jpeg.npz", r / "cifar10-subset" / "cifar10_full_jpeg.npz"]
        found = _first_existing(tried)
        if found is not None and found.name == "cifar-10-batches-py":
            train, test = _load_torchvision_cifar(found.parent, download=False)
        elif found is not None:
            train, test = _load_jpeg_npz(found)
        else:
            target = roots[0] if path is not None else Path("data")
            if not download:
                raise _not_found("CIFAR-10", tried, " and download=False")
            try:
                train, test = _load_torchvision_cifar(target, download=True)
            except Exception as err:  # offline: URLError / RuntimeError from torchvision
                raise _not_found("CIFAR-10", tried, f" and the download into {target} failed "
                                                    f"({type(err).__name__})") from None
            found = target / "cifar-10-batches-py"
        return bundle(train, test, 10, CIFAR10_CLASSES, 32, cifar_norm, str(found), True)

    if key == "imagenette":
        from torchvision.datasets import Imagenette

        tried = [r / "imagenette2-160" for r in roots]
        found = _first_existing(tried)
        root = found.parent if found is not None else (roots[0] if path is not None else Path("data"))
        if found is None and not download:
            raise _not_found("Imagenette", tried, " and download=False")
        try:
            train = Imagenette(str(root), split="train", size="160px", download=found is None,
                               transform=train_transforms(160, imnet_norm[0], imnet_norm[1]))
            test = Imagenette(str(root), split="val", size="160px",
                              transform=eval_transforms(160, imnet_norm[0], imnet_norm[1]))
        except Exception as err:
            raise _not_found("Imagenette", tried, f" and the download into {root} failed ({type(err).__name__})") \
                from None
        names = [c[0] if isinstance(c, tuple) else str(c) for c in train.classes]
        return bundle(train, test, len(names), names, 160, imnet_norm, str(root / "imagenette2-160"), False)

    # ImageFolder roots: "imagenet-subset" (Tiny-ImageNet-100) or any folder given by path ("imagefolder")
    if key == "imagefolder":
        if path is None:
            raise ValueError("dataset 'imagefolder' needs path=<folder with train/ and val/ class sub-folders>.")
        tried = [roots[0]]
    else:
        tried = [r / "imagenet-subset" for r in roots] + ([roots[0]] if path is not None else [])
    found = next((t for t in tried if (t / "train").is_dir() and (t / "val").is_dir()), None)
    if found is None:
        raise _not_found(key, tried, " (an ImageFolder root needs train/ and val/ sub-folders)")
    return _image_folder_bundle(key, found, bundle, imnet_norm)


def _image_folder_bundle(key, root: Path, bundle, norm) -> DataBundle:
    from PIL import Image
    from torchvision.datasets import ImageFolder

    first = next((p for p in sorted((root / "train").rglob("*")) if p.is_file()), None)
    if first is None:
        raise FileNotFoundError(f"{root / 'train'} holds no image files; put images in train/<class>/ folders.")
    with Image.open(first) as im:
        size = min(im.size)
    size = 64 if size <= 64 else min(size, 224)
    train = ImageFolder(str(root / "train"), transform=train_transforms(size, norm[0], norm[1]))
    test = ImageFolder(str(root / "val"), transform=eval_transforms(size, norm[0], norm[1]))
    if train.classes != test.classes:
        raise ValueError(f"{root}: train/ and val/ must hold the same class folders.")
    names = list(train.classes)
    classes_tsv = root / "classes.tsv"
    if classes_tsv.is_file():  # wnid -> readable name (Tiny-ImageNet-100 ships one)
        table = dict(line.split("\t", 1) for line in classes_tsv.read_text().splitlines() if "\t" in line)
        names = [table.get(c, c).strip() for c in names]
    return bundle(train, test, len(names), names, size, norm, str(root), False)


# ----------------------------------------------------------------------------------------------------------------
# Augmentation
# ----------------------------------------------------------------------------------------------------------------
def train_transforms(image_size: int, mean: Sequence[float], std: Sequence[float], random_erasing: float = 0.2):
    """Per-image ``transforms.v2`` pipeline: crop (+padding for <= 64 px) + flip + normalize + random erasing."""
    from torchvision.transforms import v2

    crop = (v2.RandomCrop(image_size, padding=image_size // 8) if image_size <= 64
            else v2.RandomResizedCrop(image_size, scale=(0.35, 1.0), antialias=True))
    steps = [v2.ToImage(), v2.RGB(), crop, v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32, scale=True),
             v2.Normalize(list(mean), list(std))]
    if random_erasing > 0:
        steps.append(v2.RandomErasing(p=random_erasing))
    return v2.Compose(steps)


def eval_transforms(image_size: int, mean: Sequence[float], std: Sequence[float]):
    """Per-image evaluation pipeline: resize + centre crop (for > 64 px), normalize."""
    from torchvision.transforms import v2

    steps = [v2.ToImage(), v2.RGB()]
    if image_size > 64:
        steps += [v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return v2.Compose(steps)


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


def make_loaders(bundle: DataBundle, batch_size: int = 128, augment: bool = True, random_erasing: float = 0.2,
                 workers: Optional[int] = None, seed: int = 0, rank: int = 0, world_size: int = 1,
                 eval_batch_size: Optional[int] = None):
    """``(train_loader, test_loader)`` yielding ``(float32 normalized (N, 3, H, W), int64 labels)`` on the CPU.

    In-memory data (CIFAR) -> :class:`InMemoryLoader` with batched augmentation (no worker processes).
    Folder data -> ``DataLoader`` with ``workers`` processes (default :func:`default_workers`), pinned memory
    when CUDA is present, per-image ``transforms.v2``. ``rank`` / ``world_size`` shard the data for DDP.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    eval_bs = eval_batch_size or max(batch_size, 256)
    if isinstance(bundle.train, InMemoryImages):
        aug = BatchAugment(bundle.mean, bundle.std, padding=bundle.image_size // 8 if augment else 0,
                           flip=augment, random_erasing=random_erasing if augment else 0.0)
        train = InMemoryLoader(bundle.train, batch_size, aug, train=True, seed=seed, rank=rank, world_size=world_size)
        test = InMemoryLoader(bundle.test, eval_bs, aug, train=False, seed=seed, drop_last=False)
        return train, test
    train_set = bundle.train
    if random_erasing != 0.2 or not augment:  # another transform: on a copy, the caller's dataset stays as it is
        base = copy.copy(train_set.dataset if isinstance(train_set, Subset) else train_set)
        base.transform = (train_transforms(bundle.image_size, bundle.mean, bundle.std, random_erasing) if augment
                          else eval_transforms(bundle.image_size, bundle.mean, bundle.std))
        train_set = Subset(base, train_set.indices) if isinstance(train_set, Subset) else base
    workers = default_workers() if workers is None else workers
    pin = torch.cuda.is_available()
    loaders = []
    for ds, train in ((train_set, True), (bundle.test, False)):  # evaluation is not sharded (rank 0 evaluates)
        sampler = (DistributedSampler(ds, num_replicas=world_size, rank=rank, shuffle=True, seed=seed) if train
                   else DistributedSampler(ds, num_replicas=1, rank=0, shuffle=False))
        g = torch.Generator().manual_seed(seed * 1000)
        dl = DataLoader(ds, batch_size=batch_size if train else eval_bs, sampler=sampler, num_workers=workers,
                        pin_memory=pin, drop_last=train and len(sampler) >= batch_size, generator=g,
                        persistent_workers=False)
        loaders.append(_EpochLoader(dl, seed))
    return loaders[0], loaders[1]


# ----------------------------------------------------------------------------------------------------------------
# A class slice (e.g. 10 of Tiny-ImageNet-100's classes, so a CPU-minute run learns something worth looking at)
# ----------------------------------------------------------------------------------------------------------------
def _labels_of(ds: Dataset) -> List[int]:
    if isinstance(ds, InMemoryImages):
        return ds.labels.tolist()
    if isinstance(ds, Subset):
        parent = _labels_of(ds.dataset)
        return [parent[i] for i in ds.indices]
    labels = getattr(ds, "targets", None)
    if labels is None:
        labels = [y for _, y in getattr(ds, "samples", [])]
    return [int(y) for y in labels]


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


def first_classes(bundle: DataBundle, k: int) -> DataBundle:
    """``bundle`` restricted to its first ``k`` classes, relabelled ``0..k-1`` (e.g. a 10-class slice of
    Tiny-ImageNet-100: chance level 10% instead of 1%, so a short run can learn something worth looking at)."""
    if not isinstance(k, int) or not 1 < k <= bundle.num_classes:
        raise ValueError(f"k must be an integer from 2 to {bundle.num_classes} (the classes of {bundle.name}), "
                         f"got {k!r}.")
    if k == bundle.num_classes:
        return bundle
    classes = list(range(k))
    return DataBundle(bundle.name, ClassSlice(bundle.train, classes), ClassSlice(bundle.test, classes), k,
                      bundle.class_names[:k], bundle.image_size, bundle.mean, bundle.std, bundle.source, False)
