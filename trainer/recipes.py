"""Training recipes: named sets of the options that go beyond the networks' shapes.

``paper`` is Larsen et al. (2016) and their released code, exactly as the paper trains;
``default`` is the measured best on this project's protocol (docs/benchmarks.md, the ablation
table, says what each option is worth). A flag given on the command line overrides its recipe.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from model_core.config import ObjectiveConfig

RECIPES: dict[str, dict[str, Any]] = {
    "paper": {
        "gamma": 1e-6,  # the authors' weight of L_llike against L_GAN
        "generator_loss": "minimax",  # Algorithm 1 as written
        "gan_inputs": "three",  # x, Dec(z), Dec(z_p) (Sec. 2.2)
        "equilibrium": False,
        "dis_passes": "joint",  # one Dis batch of real and fake images
        "dis_lr_scale": 1.0,
        "decoder_ema": 0.0,  # sample from the last decoder
        "pixel_sigma": 1.0,  # --mode vae: the paper's unit-variance pixel Gaussian
        "class_weight": 1.0,  # --conditional with a class head: AC-GAN's weight (the paper has no conditional model)
        "r1_gamma": 0.0,  # no gradient penalty
        "kl_weight": 1.0,  # L_prior as it is
    },
    "default": {
        "gamma": 0.1,  # 1e-6 leaves the decoder only a GAN signal (docs/benchmarks.md)
        "generator_loss": "nonsaturating",  # keeps a GAN gradient while Dis wins
        "gan_inputs": "three",
        "equilibrium": False,  # as written it freezes Dis (docs/benchmarks.md)
        "dis_passes": "separate",  # Dis's batch norm never sees a mixed real/fake batch
        "dis_lr_scale": 0.5,  # Dis learns at half the rate (the authors' half-size steps): it wins less
        "decoder_ema": 0.999,  # sample and export from the decoder's weight average
        "pixel_sigma": 0.3,  # --mode vae: the best pixel Gaussian of the VAE baseline
        "class_weight": 3.0,  # --conditional: the class head's cross-entropy for Dis and Dec (3 beat 1)
        # Lazy R1 (every 16 steps): N(0, I) samples keep improving past 1,500 steps (docs/benchmarks.md,
        # "Longer training": 65-69 at 10,000 steps against 144 without).
        "r1_gamma": 0.05,
        "kl_weight": 1.0,  # 2 holds the KL lower on long runs (docs/benchmarks.md, "Longer training")
    },
}
DEFAULT_RECIPE = "default"  # what vaegan-train, make demo, compose and the pretrained bundles use
RECIPE_OPTIONS = tuple(RECIPES["paper"])
# The options that belong to model_core.config.ObjectiveConfig; the rest are TrainConfig fields.
OBJECTIVE_OPTIONS = tuple(k for k in RECIPE_OPTIONS if k in {f.name for f in fields(ObjectiveConfig)})


def recipe_options(recipe: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The recipe's options, with every override that is not None in their place."""
    chosen = dict(RECIPES[recipe])
    chosen.update({k: v for k, v in overrides.items() if k in chosen and v is not None})
    return chosen
