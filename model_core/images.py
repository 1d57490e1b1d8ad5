"""Image arrays and labels in numpy: the model's value range, one-hot labels, grids of images.

Numpy only: the service imports it, and the service image has no torch. On the model's side an
image is floats in the manifest's ``preprocessing.value_range`` (docs/bundle.md, [-1, 1] unless a
bundle says otherwise); on the pixels' side it is uint8 (or floats in [0, 1]). The map between
the two is linear: 0 -> low, 255 (1.0) -> high.

The trainer keeps torch twins of two of these, on the device inside its training step:
trainer.datasets.to_model_range and trainer.datasets.onehot.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

VALUE_RANGE = (-1.0, 1.0)  # the manifest's default: what every preset is trained in
GRID_PADDING = 2  # pixels between and around grid cells (torchvision's make_grid convention)


def _full_scale(dtype: npt.DTypeLike) -> float:
    """255 for uint8 pixels, 1 for floats in [0, 1]; TypeError for any other dtype."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return 255.0
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise TypeError(f"pixels are uint8 or floats in [0, 1], not {dtype}")


def to_value_range(pixels: np.ndarray, value_range: tuple[float, float] = VALUE_RANGE) -> np.ndarray:
    """uint8 pixels, or floats in [0, 1], scaled linearly onto ``value_range``: float32, same shape.

    0 -> low, 255 (or 1.0) -> high. For [-1, 1] a uint8 becomes u8 * (2 / 255) - 1, which differs
    from the trainer's torch form u8 / 127.5 - 1 by at most 2^-23 on 111 of the 256 values.
    """
    low, high = value_range
    return (pixels.astype(np.float32) * ((high - low) / _full_scale(pixels.dtype)) + low).astype(np.float32)


def from_value_range(
    images: np.ndarray, value_range: tuple[float, float] = VALUE_RANGE, dtype: npt.DTypeLike = np.uint8
) -> np.ndarray:
    """Floats in ``value_range`` back to pixels, same shape: uint8 (rounded), or floats in [0, 1] for a float ``dtype``.

    Values outside the range are clipped to its ends; NaN becomes low (fmax and fmin return the
    number when the other operand is NaN), so a diverged model still renders, black.
    """
    low, high = value_range
    full = _full_scale(dtype)
    scaled = np.fmin(np.fmax((images - low) * (full / (high - low)), 0.0), full)
    return scaled.round().astype(np.uint8) if full == 255.0 else scaled.astype(dtype)


def one_hot(labels: npt.ArrayLike, num_classes: int) -> np.ndarray:
    """Class indices (N,) -> (N, K) float32 one-hot rows; ValueError for an index outside 0..K-1."""
    indices = np.asarray(labels, dtype=np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= num_classes):
        raise ValueError(f"class indices must lie in 0..{num_classes - 1}, got {indices.min()}..{indices.max()}")
    return np.eye(num_classes, dtype=np.float32)[indices]


def enlarge(image: np.ndarray, scale: int) -> np.ndarray:
    """(H, W, C) to (H*scale, W*scale, C) by repeating pixels (nearest neighbour: small digits stay crisp)."""
    if scale == 1:
        return image
    return image.repeat(scale, axis=0).repeat(scale, axis=1)


def grid_shape(
    n: int, height: int, width: int, nrow: int, scale: int = 1, padding: int = GRID_PADDING
) -> tuple[int, int]:
    """(H, W) in pixels of the grid ``make_grid`` draws for n cells of (height, width)."""
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    return rows * (height * scale + padding) + padding, cols * (width * scale + padding) + padding


def make_grid(images: np.ndarray, nrow: int, scale: int = 1, padding: int = GRID_PADDING, fill: int = 0) -> np.ndarray:
    """(N, H, W, C) uint8 cells to one (H', W', C) image: ``nrow`` cells a row (fewer when N is smaller),
    each enlarged ``scale`` times, ``padding`` pixels of ``fill`` between and around them."""
    n, height, width, channels = images.shape
    cell_h, cell_w = height * scale + padding, width * scale + padding
    canvas = np.full((*grid_shape(n, height, width, nrow, scale, padding), channels), fill, dtype=np.uint8)
    cols = min(nrow, n)
    for i, image in enumerate(images):
        top, left = (i // cols) * cell_h + padding, (i % cols) * cell_w + padding
        canvas[top : top + height * scale, left : left + width * scale] = enlarge(image, scale)
    return canvas
