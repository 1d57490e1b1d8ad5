"""The tiny model configuration of the model_core, service and export tests (8x8 images), and seeded models
and checkpoints built from it. Trainer runs on real digits use model_core.config.PRESETS["tiny"] (32x32)."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from model_core.config import ModelConfig, ObjectiveConfig
from model_core.vaegan import VAEGAN

# The Table 1 architecture shrunk to 8x8 grey images, a few channels per layer, latent 4.
TINY = ModelConfig(
    image_size=8,
    channels=1,
    latent_dim=4,
    enc_channels=(4, 6, 8),
    enc_fc=16,
    dec_fc_channels=8,
    dec_channels=(8, 6, 4),
    dis_stem=4,
    dis_channels=(6, 8, 8),
    dis_fc=16,
)
TINY_16 = replace(TINY, image_size=16)  # where a test needs more than 1x1 after three stride-2 stages
TINY_COND = replace(TINY, num_classes=3)  # class-conditional, projection discriminator with a class head
TINY_COND_PROJECTION = replace(TINY_COND, dis_conditioning="projection")
TINY_COND_PLANES = replace(TINY_COND, dis_conditioning="planes")
CLASS_NAMES = ("a", "b", "c")
PREPROCESSING = {"channels": 1, "height": 8, "width": 8, "fit": (8, 8)}


def trained_like(cfg: ModelConfig = TINY, seed: int = 0) -> VAEGAN:
    """A seeded model whose batch norms hold non-trivial statistics, so folding them is really tested."""
    torch.manual_seed(seed)
    model = VAEGAN(cfg)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
    return model.eval()


def checkpoint_dict(model: VAEGAN, preset: str = "tiny") -> dict[str, object]:
    """A checkpoint in the trainer's format 1 (trainer/checkpoint.py), optimizer states left out."""
    return {
        "format_version": 1,
        "step": 120,
        "epoch": 2,
        "preset": preset,
        "model_config": model.config.to_dict(),
        "objective": ObjectiveConfig(gamma=0.01).to_dict(),
        # prior_components: vaegan-export fits a fixed 2-component prior (choosing one takes ~10 s)
        "train_config": {"epochs": 2, "batch_size": 16, "lr": 3e-4, "seed": 7, "prior_components": 2},
        "dataset": "embedded-mnist",
        "preprocessing": PREPROCESSING,
        "models": {
            "encoder": model.encoder.state_dict(),
            "decoder": model.decoder.state_dict(),
            "discriminator": model.discriminator.state_dict(),
        },
        "eval": {"fd_cls": 123.5, "kl": 20.0},
        "optimizers": {},
    }
