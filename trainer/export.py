"""vaegan-export: a trainer checkpoint becomes a verified bundle (model_core.export does the export).

Reads a checkpoint through ``trainer/checkpoint.py`` (its eval-mode model: the decoder's weight
average when the run kept one, as that is the decoder the run sampled with) and records the run's
recipe and options in the manifest.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model_core import bundle
from model_core.config import ModelConfig, ObjectiveConfig
from model_core.export import PARITY_BATCHES, ExportError, export_bundle
from model_core.vaegan import VAEGAN
from trainer.checkpoint import CheckpointReadError, load_model
from trainer.config import TrainConfig, UsageError
from trainer.datasets import digits_in_model_range, load_dataset
from trainer.mnist import HELDOUT_SLICE, DataError, load_embedded_mnist
from trainer.prior import prior_of, run_latents
from trainer.recipes import RECIPE_OPTIONS

log = logging.getLogger(__name__)


def training_fields(ckpt: dict[str, Any], objective: ObjectiveConfig) -> dict[str, Any]:
    """bundle.Training from a checkpoint's train_config, objective and step counters."""
    train = dict(ckpt.get("train_config") or {})
    return {
        "epochs": int(ckpt.get("epoch", train.get("epochs", 0)) or 0),
        "steps": int(ckpt.get("step", 0)),
        "seed": int(train.get("seed", 0)),
        "mode": objective.mode,
        "gamma": objective.gamma,
        "batch_size": train.get("batch_size"),
        "lr": train.get("lr"),
        "gan_inputs": objective.gan_inputs,
        "generator_loss": objective.generator_loss,
        "equilibrium": objective.equilibrium,
        "recipe": train.get("recipe"),
        "options": recipe_options_of(train) or None,
        "sampling_decoder": "ema" if ckpt.get("decoder_ema") else "last",
    }


def recipe_options_of(train_config: dict[str, Any]) -> dict[str, Any]:
    """The recipe options a run used: TrainConfig fields, or fields of its nested objective."""
    objective = train_config.get("objective") or {}
    merged = {**train_config, **objective}
    return {k: merged[k] for k in RECIPE_OPTIONS if k in merged}


def heldout_images(cfg: ModelConfig) -> np.ndarray | None:
    """The embedded MNIST held-out digits (8000-9999) in model range when the model takes 1x32x32 images."""
    if (cfg.channels, cfg.image_size) != (1, 32):
        return None
    images, _ = load_embedded_mnist()
    return digits_in_model_range(images[HELDOUT_SLICE][: sum(PARITY_BATCHES)], cfg.image_size).numpy()


def export_checkpoint(
    checkpoint_path: Path, models_dir: Path, name: str, version: str | None = None, use_ema: bool = True
) -> Path:
    """Export a trainer checkpoint (trainer/checkpoint.py's format) as a bundle; return its folder."""
    bundle.validate_name(name)  # before the work: a bad name or version is refused at once
    if version is not None:
        bundle.validate_name(version, "version")
    try:
        model, ckpt = load_model(checkpoint_path, use_ema)
    except CheckpointReadError as exc:
        raise ExportError(f"{checkpoint_path}: {exc}") from None
    evaluation = ckpt.get("eval") or {}
    names, means, record = tuple(ckpt.get("class_names") or ()), ckpt.get("class_means"), ckpt.get("prior")
    if not ckpt.get("finished"):  # a snapshot, or a checkpoint from before runs fitted a prior
        names, means, record = latents_of(model, ckpt)
    prior, info = prior_of(record)
    return export_bundle(
        model,
        models_dir,
        name,
        preset=str(ckpt.get("preset", "custom")),
        dataset=str(ckpt.get("dataset", "unknown")),
        preprocessing=dict(ckpt["preprocessing"]),
        training=training_fields(ckpt, model.objective),
        metrics={k: float(v) for k, v in evaluation.items() if isinstance(v, int | float)},
        version=version,
        heldout=heldout_images(model.config),
        class_names=names,
        class_means=None if means is None else means.numpy(),
        prior=None if prior is None or info is None else (prior, info),
    )


def latents_of(
    model: VAEGAN, ckpt: dict[str, Any]
) -> tuple[tuple[str, ...], torch.Tensor | None, dict[str, Any] | None]:
    """Class names, class means and prior of a checkpoint that lacks them, from its own training split
    (its dataset reloaded)."""
    train = ckpt.get("train_config") or {}
    cfg = model.config
    try:
        data_dir = Path(train.get("data_dir", TrainConfig.data_dir))
        data = load_dataset(str(ckpt["dataset"]), cfg.channels, cfg.image_size, data_dir)
    except (KeyError, UsageError, DataError, OSError) as exc:
        raise ExportError(f"the checkpoint has no fitted prior and its training data cannot be read ({exc})") from None
    log.info("fitting the latent prior to %d training images of %s", len(data.train), ckpt["dataset"])
    seed, components = int(train.get("seed", 0)), train.get("prior_components")
    return (tuple(data.class_names), *run_latents(model, data.train, data.train_labels, seed, components))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="vaegan-export",
        description="Export a checkpoint as a verified ONNX bundle, or publish a bundle again with a fitted prior.",
    )
    p.add_argument(
        "checkpoint",
        type=Path,
        help="runs/NAME/checkpoint.pt (or a snapshot) written by vaegan-train; or a bundle folder without a "
        "fitted prior, published again with one",
    )
    p.add_argument("--models-dir", type=Path, required=True, help="bundles go to DIR/NAME/VERSION")
    p.add_argument("--name", required=True, help="model name (letters, digits, '.', '_', '-')")
    p.add_argument("--version", default=None, help="default: UTC time + short content hash (sortable)")
    p.add_argument("--data-dir", type=Path, default=TrainConfig.data_dir, help="a bundle's mnist / fashion-mnist files")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        if args.checkpoint.is_dir():
            from trainer.bundle_prior import add_prior

            path = add_prior(args.checkpoint, args.models_dir, args.name, args.version, args.data_dir)
        else:
            path = export_checkpoint(args.checkpoint, args.models_dir, args.name, args.version)
    except (ExportError, bundle.BundleError) as exc:
        sys.stderr.write(f"vaegan-export: error: {' '.join(str(exc).split())}\n")  # one line
        return 2
    log.info("published %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
