"""The paper's point as numbers: how far apart two images are in Dis_l feature space and in pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Distances:
    """The fields of ``SimilarityOut`` that the maths gives (all but the model version)."""

    learned_distance: float  # 1/2 ||Dis_l(a) - Dis_l(b)||^2
    pixel_distance: float  # 1/2 ||a - b||^2
    learned_mse: float  # mean squared feature difference
    pixel_mse: float  # mean squared pixel difference
    features: int  # F
    pixels: int  # C*H*W


def pair_distances(features: np.ndarray, images: np.ndarray) -> Distances:
    """Distances between images a and b from their Dis_l features (2, F) and model inputs (2, C, H, W)."""
    learned = features.reshape(2, -1).astype(np.float64)  # (2, F)
    pixels = images.reshape(2, -1).astype(np.float64)  # (2, C*H*W)
    # Larsen et al. 2016, Eq. 5-6: -log p(Dis_l(a) | Dis_l(b)) = 1/2 ||Dis_l(a) - Dis_l(b)||^2 + const.
    learned_sq = float(np.sum((learned[0] - learned[1]) ** 2))
    pixel_sq = float(np.sum((pixels[0] - pixels[1]) ** 2))
    return Distances(
        learned_distance=0.5 * learned_sq,
        pixel_distance=0.5 * pixel_sq,
        learned_mse=learned_sq / learned.shape[1],
        pixel_mse=pixel_sq / pixels.shape[1],
        features=learned.shape[1],
        pixels=pixels.shape[1],
    )
