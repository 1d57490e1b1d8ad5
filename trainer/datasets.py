"""The training datasets, decoded once into uint8 arrays, and the resumable sampler that feeds them.

Every dataset becomes ``ImageData``: train and held-out images as (N, C, H, W) uint8 (model input
u8 / 127.5 - 1) plus the ``preprocessing`` dict that produced them (see ``trainer.preprocessing_specs``), and
labels where the data has them: the MNIST family, and ``folder:`` with one sub-folder per class.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from trainer import mnist
from trainer import preprocessing_specs as specs
from trainer.config import UsageError

logger = logging.getLogger(__name__)

DatasetKind = Literal["embedded-mnist", "mnist", "fashion-mnist", "folder", "celeba"]
# How a kind is written in --dataset where it takes more than its name: a split, or a path.
_SPEC_FORMS = {"embedded-mnist": "embedded-mnist[:tune]", "folder": "folder:PATH", "celeba": "celeba:PATH"}
HELDOUT_SHARE = 10  # folder / celeba: the last 1/10 of the sorted files (at most MAX_HELDOUT) are held out
MAX_HELDOUT = 10000
PARALLEL_DECODE_FROM = 2000  # decode in worker processes from this many files on


@dataclass
class ImageData:
    """Decoded images ready for training, and how they were made."""

    train: np.ndarray  # (N, C, H, W) uint8
    heldout: np.ndarray  # (M, C, H, W) uint8, never trained on
    preprocessing: dict[str, Any]
    skipped: int = 0  # corrupt files left out (folder / celeba)
    train_labels: np.ndarray | None = None  # (N,) int64 class indices, None for unlabelled data
    heldout_labels: np.ndarray | None = None  # (M,)
    class_names: tuple[str, ...] = ()  # label i is class_names[i]

    @property
    def labelled(self) -> bool:
        return self.train_labels is not None


def dataset_forms(separator: str) -> str:
    """Every --dataset form, e.g. 'embedded-mnist[:tune] | mnist | ... | celeba:PATH' for separator ' | '."""
    return separator.join(_SPEC_FORMS.get(kind, kind) for kind in get_args(DatasetKind))


def parse_dataset(spec: str) -> tuple[str, Path | None]:
    """'folder:PATH' -> ('folder', PATH); 'mnist' -> ('mnist', None); UsageError when unknown."""
    kind, sep, rest = spec.partition(":")
    if kind not in get_args(DatasetKind):
        raise UsageError(f"unknown dataset {spec!r}: choose from {dataset_forms(', ')}")
    if kind == "embedded-mnist" and sep:
        if rest != "tune":
            raise UsageError(f"dataset embedded-mnist takes no path, only the split 'tune' (got {spec!r})")
        return kind, None
    if kind in ("folder", "celeba"):
        if not sep or not rest:
            raise UsageError(f"dataset {kind} needs a path: {kind}:PATH")
        path = Path(rest).expanduser()
        if not path.is_dir():
            raise UsageError(f"dataset {spec!r}: {path} is not a folder")
        return kind, path
    if sep:
        raise UsageError(f"dataset {kind} takes no path (got {spec!r})")
    return kind, None


def load_dataset(spec: str, channels: int, size: int, data_dir: Path, workers: int = 0) -> ImageData:
    """Load the dataset named by ``spec`` at the preset's channels and size."""
    kind, path = parse_dataset(spec)
    if kind == "embedded-mnist":
        images, labels = mnist.load_embedded_mnist()
        tune = spec.endswith(":tune")  # train 0-6999, held out 7000-7999
        train = mnist.TUNE_TRAIN_SLICE if tune else mnist.TRAIN_SLICE
        heldout = mnist.TUNE_HELDOUT_SLICE if tune else mnist.HELDOUT_SLICE
        data = _from_digits(images[train], images[heldout], channels, size)
        return _labelled(data, labels[train], labels[heldout], mnist.DIGIT_NAMES)
    if kind in ("mnist", "fashion-mnist"):
        folder = mnist.fetch_idx_dataset(kind, data_dir)
        train, test = mnist.load_idx_dataset(folder)
        train_labels, test_labels = mnist.load_idx_labels(folder, len(train), len(test))
        names = mnist.DIGIT_NAMES if kind == "mnist" else mnist.FASHION_NAMES
        return _labelled(_from_digits(train, test, channels, size), train_labels, test_labels, names)
    assert path is not None
    spec_dict = (specs.celeba_spec if kind == "celeba" else specs.preprocessing_spec)(channels, size)
    return _from_files(path, spec_dict, workers)


def _labelled(data: ImageData, train: np.ndarray, heldout: np.ndarray, names: tuple[str, ...]) -> ImageData:
    """``data`` with its labels (as int64 class indices) and class names."""
    data.train_labels, data.heldout_labels = train.astype(np.int64), heldout.astype(np.int64)
    data.class_names = names
    return data


def _from_digits(train: np.ndarray, heldout: np.ndarray, channels: int, size: int) -> ImageData:
    """28x28 uint8 digits through the MNIST preprocessing (pad for mnist32, resize otherwise)."""
    spec = specs.mnist_spec(channels, size)
    return ImageData(_digits_to_array(train, spec), _digits_to_array(heldout, spec), spec)


def _digits_to_array(digits: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """(N, 28, 28) -> (N, C, H, W) uint8 by ``spec``; padding alone needs no Pillow round trip."""
    if spec["channels"] == 1 and spec["fit"] == list(digits.shape[1:]):
        top, bottom, left, right = spec["pad"]
        return np.pad(digits, ((0, 0), (top, bottom), (left, right)))[:, None]  # (N, 1, H, W)
    return np.stack([specs.preprocess(Image.fromarray(d, "L"), spec) for d in digits])


def image_files(root: Path) -> list[Path]:
    """Every file under ``root`` whose extension Pillow knows, sorted (hidden files excluded)."""
    known = {ext.lower() for ext in Image.registered_extensions()}
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in known and not p.name.startswith(".")
    )


def decode_file(path: Path, spec: dict[str, Any]) -> np.ndarray | None:
    """One image file through ``spec``: (C, H, W) uint8, or None when the file is corrupt."""
    try:
        with Image.open(path) as img:
            img.load()
            return specs.preprocess(img, spec)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _decode_all(paths: list[Path], spec: dict[str, Any], workers: int) -> list[np.ndarray | None]:
    """Decode ``paths`` in order, in ``workers`` processes when there are many."""
    if workers < 1 or len(paths) < PARALLEL_DECODE_FROM:
        return [decode_file(p, spec) for p in paths]
    context = multiprocessing.get_context("spawn")  # safe beside torch's threads and CUDA
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(decode_file, paths, [spec] * len(paths), chunksize=256))


def class_of(path: Path, root: Path) -> str | None:
    """The class sub-folder a file lies in (its first folder under ``root``), None for a top-level file."""
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else None


def _from_files(root: Path, spec: dict[str, Any], workers: int) -> ImageData:
    """Every image under ``root``; corrupt ones skipped and counted; the last tenth held out.

    With one sub-folder per class (at least two, no top-level image) the data is labelled by
    sub-folder (sorted names) and the last tenth of each class is held out.
    """
    paths = image_files(root)
    if not paths:
        raise UsageError(f"{root}: no image files found")
    decoded = _decode_all(paths, spec, workers)
    kept = [(p, x) for p, x in zip(paths, decoded, strict=True) if x is not None]
    skipped = len(decoded) - len(kept)
    if skipped:
        bad = [str(p) for p, x in zip(paths, decoded, strict=True) if x is None][:3]
        logger.warning("%s: skipped %d unreadable image file(s), e.g. %s", root, skipped, ", ".join(bad))
    if len(kept) < 2:
        raise UsageError(f"{root}: {len(kept)} readable image(s); training needs at least 2")
    array = np.stack([x for _, x in kept])  # (N, C, H, W)
    classes = [class_of(p, root) for p, _ in kept]
    names = sorted({c for c in classes if c is not None})
    if len(names) < 2 or None in classes:
        n_heldout = max(1, min(len(array) // HELDOUT_SHARE, MAX_HELDOUT))
        return ImageData(array[:-n_heldout], array[-n_heldout:], spec, skipped)
    labels = np.array([names.index(c) for c in classes if c is not None], dtype=np.int64)
    heldout = np.zeros(len(labels), dtype=bool)
    for k in range(len(names)):
        members = np.flatnonzero(labels == k)  # sorted paths: the class's last files are held out
        if len(members) > 1:
            heldout[members[-max(1, min(len(members) // HELDOUT_SHARE, MAX_HELDOUT // len(names))) :]] = True
    data = ImageData(array[~heldout], array[heldout], spec, skipped)
    return _labelled(data, labels[~heldout], labels[heldout], tuple(names))


class ImageArrayDataset(torch.utils.data.Dataset):
    """uint8 images (N, C, H, W) and their labels (or None), served a whole batch at a time (``__getitems__``)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray | None = None) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.labels = None if labels is None else torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.images[index], None if self.labels is None else self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        index = torch.as_tensor(indices)
        return self.images[index], None if self.labels is None else self.labels[index]  # (B, C, H, W) uint8, (B,)


def keep_batch(batch: Any) -> Any:
    """DataLoader collate for ``__getitems__`` batches: already stacked."""
    return batch


class ResumableSampler(Sampler[int]):
    """DistributedSampler whose order is a function of (seed, epoch), started at any position."""

    def __init__(self, dataset: torch.utils.data.Dataset, seed: int, rank: int, world: int) -> None:
        self.inner: DistributedSampler[int] = DistributedSampler(
            dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True
        )
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        """Serve ``epoch``'s permutation from this rank's ``start``-th index on."""
        self.inner.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.inner)[self.start :])

    def __len__(self) -> int:
        return len(self.inner) - self.start


def make_loader(
    dataset: ImageArrayDataset, sampler: ResumableSampler, per_rank: int, workers: int | None, device: torch.device
) -> DataLoader:
    """Whole uint8 batches; workers and pinned memory on CUDA (auto: 4 workers there, none on CPU)."""
    cuda = device.type == "cuda"
    n_workers = workers if workers is not None else (4 if cuda else 0)
    return DataLoader(
        dataset,
        batch_size=per_rank,
        sampler=sampler,
        drop_last=True,
        num_workers=n_workers,
        pin_memory=cuda,
        collate_fn=keep_batch,
        persistent_workers=n_workers > 0,
        generator=torch.Generator().manual_seed(0),  # leaves the global generator untouched
    )


def onehot(labels: torch.Tensor | None, num_classes: int, device: torch.device) -> torch.Tensor | None:
    """One-hot labels (B, K) float32 on the device for a conditional model (``num_classes`` > 0); None otherwise.

    The torch twin of model_core.images.one_hot: made on the device, inside the training step.
    """
    if not num_classes:
        return None
    assert labels is not None, "a conditional model is fed labelled images"
    return F.one_hot(labels.to(device, non_blocking=True), num_classes).float()


def to_model_range(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32 in [-1, 1] on the device (converted there: 4x less to copy).

    The torch twin of model_core.images.to_value_range for [-1, 1]. Every run was trained on this
    form, u8 / 127.5 - 1; numpy's u8 * (2 / 255) - 1 differs from it by at most 2^-23.
    """
    return batch.to(device, non_blocking=True).float() / 127.5 - 1.0


def to_model_input(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``to_model_range`` in the channels-last layout the training step runs in."""
    return to_model_range(batch, device).contiguous(memory_format=torch.channels_last)


def digits_in_model_range(digits: np.ndarray, size: int = 32) -> torch.Tensor:
    """(N, 28, 28) uint8 digits through the MNIST preprocessing (one channel) -> (N, 1, size, size) in [-1, 1]."""
    return to_model_range(torch.from_numpy(_digits_to_array(digits, specs.mnist_spec(1, size))), torch.device("cpu"))
