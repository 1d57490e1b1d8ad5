"""The training run's configuration: one frozen dataclass, built by ``trainer.cli``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from model_core.config import ObjectiveConfig


class UsageError(Exception):
    """The user asked for something impossible (bad flag, mismatched resume): exit status 2."""


class TrainingError(Exception):
    """The run cannot go on (a checkpoint cannot be written): exit status 1."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs; recorded in every checkpoint as plain types."""

    preset: str  # a key of model_core.config.PRESETS
    dataset: str  # embedded-mnist | mnist | fashion-mnist | folder:PATH | celeba:PATH
    out: Path  # runs/NAME: checkpoint.pt, metrics.jsonl, eval.json, samples/
    mode: str = "vaegan"  # "vae" is the paper's pixel-likelihood baseline
    epochs: int | None = 10  # None: run until max_steps
    max_steps: int | None = None  # optimizer steps (each updates Enc, Dec and Dis once)
    batch_size: int = 64  # per step, over all processes (the paper's 64)
    lr: float = 3e-4  # RMSProp learning rate of all three networks (Sec. 4)
    recipe: str = "default"  # trainer.recipes: "paper" or "default"; the options below are its own
    gamma: float = 0.1  # weight of L_llike against L_GAN for the decoder (authors' code: 1e-6)
    equilibrium: bool = False  # the authors' Dec/Dis balance rule
    gan_inputs: str = "three"  # "three": x, Dec(z), Dec(z_p) (paper); "two": x, Dec(z_p)
    generator_loss: str = "nonsaturating"  # "minimax" (Algorithm 1) or "nonsaturating"
    pixel_sigma: float = 0.3  # mode "vae": std of the pixel Gaussian (the paper's: 1)
    dis_passes: str = "separate"  # "joint": one Dis call on real and fake; "separate": their own calls
    dis_lr_scale: float = 1.0  # Dis learning rate = lr * dis_lr_scale
    decoder_ema: float = 0.999  # decay of the decoder's weight average that samples and exports (0: off)
    recalibrate_bn: int = 50  # batches of prior latents for the decoder's final BN statistics (0: off)
    device: str = "auto"  # auto picks CUDA when present
    amp: bool = False  # bf16 autocast (CPU, or CUDA where supported), else fp16 with a GradScaler on CUDA
    seed: int = 0  # model init, the data order of every epoch and every z drawn
    resume: Path | None = None  # a checkpoint.pt to continue from, exactly
    checkpoint_every: int = 500  # steps between checkpoints (and one at the end)
    log_every: int = 50  # steps between metrics.jsonl lines
    data_dir: Path = Path("data")  # where mnist / fashion-mnist IDX files are downloaded
    num_workers: int | None = None  # DataLoader workers (None: 4 on CUDA, 0 on CPU; decoding: all cores)
    eval_images: int | None = None  # held-out images evaluated at the end (None: all, up to 10,000)
    export_to: Path | None = None  # models dir: export a bundle after the final checkpoint
    name: str | None = None  # bundle name under export_to
    version: str | None = None  # bundle version (default: chosen by model_core.export)

    @property
    def objective(self) -> ObjectiveConfig:
        return ObjectiveConfig(
            mode=self.mode,
            gamma=self.gamma,
            gan_inputs=self.gan_inputs,
            generator_loss=self.generator_loss,
            equilibrium=self.equilibrium,
            pixel_sigma=self.pixel_sigma,
            dis_passes=self.dis_passes,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (paths as strings), so a checkpoint loads with weights_only=True."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
