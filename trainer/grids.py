"""PNG grids of images in [-1, 1], and the animation of a run's sample grids, written with numpy and Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from model_core.config import ModelConfig
from model_core.images import from_value_range, make_grid
from trainer.datasets import onehot, to_model_range

GRID_SIZE = 64  # images per grid
GRID_SEED = 1234  # the same prior samples every epoch, so grids compare across epochs
PER_CLASS = 8  # columns of a conditional run's grid: one row per class, the same z down each column
GIF_NAME = "progress.gif"
GIF_FRAME_MS = 400


def save_grid(images: np.ndarray, path: Path, columns: int = 8) -> None:
    """Write (N, C, H, W) images in [-1, 1] as one PNG, ``columns`` wide, grey gaps."""
    canvas = make_grid(from_value_range(images).transpose(0, 2, 3, 1), columns, fill=128)  # (H', W', C)
    Image.fromarray(canvas[:, :, 0] if canvas.shape[2] == 1 else canvas).save(path)


def prior_inputs(latent_dim: int, num_classes: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The grid's fixed z_p (and, when conditional, labels: row k is class k, one z per column)."""
    generator = torch.Generator().manual_seed(GRID_SEED)
    if num_classes == 0:
        return torch.randn((GRID_SIZE, latent_dim), generator=generator), None
    z = torch.randn((PER_CLASS, latent_dim), generator=generator).repeat(num_classes, 1)  # (K*8, Z)
    labels = torch.arange(num_classes).repeat_interleave(PER_CLASS)  # (K*8,): 0 x8, 1 x8, ...
    return z, onehot(labels, num_classes, torch.device("cpu"))


@torch.no_grad()
def write_epoch_grids(
    decoder: nn.Module,
    encoder: nn.Module,
    heldout: torch.Tensor,
    heldout_labels: torch.Tensor | None,
    cfg: ModelConfig,
    folder: Path,
    tag: str,
) -> list[Path]:
    """Prior samples Dec(z_p) (one row per class when conditional), and held-out inputs (odd
    columns) beside Dec(mu) (even columns); then the animation of every prior grid so far."""
    folder.mkdir(parents=True, exist_ok=True)
    device = next(decoder.parameters()).device
    z, y = prior_inputs(cfg.latent_dim, cfg.num_classes)
    prior = decoder(z.to(device), None if y is None else y.to(device)).float().cpu().numpy()
    x = to_model_range(heldout[: GRID_SIZE // 2], device)  # (32, C, H, W)
    y_x = onehot(None if heldout_labels is None else heldout_labels[: len(x)], cfg.num_classes, device)  # (32, K)
    recon = decoder(encoder(x, y_x)[0], y_x).float()  # through the posterior mean
    pairs = torch.stack([x, recon], dim=1).flatten(0, 1).cpu().numpy()  # (64, C, H, W): x, Dec(mu), ...
    paths = [folder / f"{tag}_prior.png", folder / f"{tag}_reconstructions.png"]
    save_grid(prior, paths[0], columns=PER_CLASS if cfg.conditional else 8)
    save_grid(pairs, paths[1])
    write_progress_gif(folder)
    return paths


def write_progress_gif(folder: Path) -> Path | None:
    """samples/progress.gif: the run's prior grids in training order (vae-gan-tf's result format)."""
    frames = sorted(folder.glob("epoch*_prior.png"))
    if not frames:
        return None
    images = []
    for path in frames:
        with Image.open(path) as frame:
            images.append(frame.convert("L" if frame.mode == "L" else "RGB"))
    size = images[-1].size
    images = [im for im in images if im.size == size]  # a grid of another shape (an older run) is left out
    target = folder / GIF_NAME
    tmp = folder / f".{GIF_NAME}.tmp"
    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=GIF_FRAME_MS, loop=0)
    tmp.replace(target)
    return target
