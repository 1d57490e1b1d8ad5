"""PNG grids of images in [-1, 1], written with numpy and Pillow."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

GRID_SIZE = 64  # images per grid
GRID_SEED = 1234  # the same prior samples every epoch, so grids compare across epochs


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[-1, 1] floats -> uint8 (the inverse of u8 / 127.5 - 1)."""
    return np.clip((images + 1.0) * 127.5, 0, 255).round().astype(np.uint8)


def tile(images: np.ndarray, columns: int, gap: int = 2) -> np.ndarray:
    """(N, C, H, W) uint8 -> one (rows*(H+gap)+gap, columns*(W+gap)+gap, C) image, grey gaps."""
    n, c, h, w = images.shape
    rows = math.ceil(n / columns)
    canvas = np.full((rows * (h + gap) + gap, columns * (w + gap) + gap, c), 128, dtype=np.uint8)
    for i, image in enumerate(images):
        top, left = gap + (i // columns) * (h + gap), gap + (i % columns) * (w + gap)
        canvas[top : top + h, left : left + w] = image.transpose(1, 2, 0)  # (H, W, C)
    return canvas


def save_grid(images: np.ndarray, path: Path, columns: int = 8) -> None:
    """Write (N, C, H, W) images in [-1, 1] as one PNG."""
    canvas = tile(to_uint8(images), columns)
    Image.fromarray(canvas[:, :, 0] if canvas.shape[2] == 1 else canvas).save(path)


@torch.no_grad()
def write_epoch_grids(
    decoder: nn.Module, encoder: nn.Module, heldout: torch.Tensor, latent_dim: int, folder: Path, tag: str
) -> list[Path]:
    """Prior samples Dec(z_p), and held-out inputs (odd columns) beside Dec(mu) (even columns)."""
    folder.mkdir(parents=True, exist_ok=True)
    device = next(decoder.parameters()).device
    z = torch.randn((GRID_SIZE, latent_dim), generator=torch.Generator().manual_seed(GRID_SEED)).to(device)
    prior = decoder(z).float().cpu().numpy()
    x = heldout[: GRID_SIZE // 2].to(device).float() / 127.5 - 1.0  # (32, C, H, W)
    recon = decoder(encoder(x)[0]).float()  # through the posterior mean
    pairs = torch.stack([x, recon], dim=1).flatten(0, 1).cpu().numpy()  # (64, C, H, W): x, Dec(mu), ...
    paths = [folder / f"{tag}_prior.png", folder / f"{tag}_reconstructions.png"]
    save_grid(prior, paths[0])
    save_grid(pairs, paths[1])
    return paths
