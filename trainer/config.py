"""The training run's configuration: one frozen dataclass, built by ``trainer.cli``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from model_core.config import DisConditioning, ObjectiveConfig

Device = Literal["auto", "cpu", "cuda"]  # --device; auto picks CUDA when present


class UsageError(Exception):
    """The user asked for something impossible (bad flag, mismatched resume): exit status 2."""


class TrainingError(Exception):
    """The run cannot go on (a checkpoint cannot be written): exit status 1."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs; recorded in every checkpoint as plain types.

    The defaults are the paper's (``recipe`` "paper"); vaegan-train fills in its ``--recipe``
    (trainer/recipes.py) before building one.
    """

    preset: str  # a key of model_core.config.PRESETS
    dataset: str  # a --dataset form of trainer.datasets.DatasetKind: embedded-mnist[:tune], mnist, folder:PATH...
    out: Path  # runs/NAME: checkpoint.pt, metrics.jsonl, eval.json, samples/
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)  # how Algorithm 1 weighs its terms
    conditional: bool = False  # one-hot labels into Enc, Dec and Dis (needs labelled data)
    dis_conditioning: DisConditioning = "auxiliary"  # how a conditional Dis sees the label
    recipe: str = "paper"  # the trainer.recipes entry the options came from
    dis_lr_scale: float = 1.0  # Dis learning rate = lr * dis_lr_scale
    decoder_ema: float = 0.0  # decay of the decoder's weight average that samples and exports (0: off)
    r1_gamma: float = 0.0  # lazy R1 penalty on Dis's gradient at real images (Mescheder et al. 2018; 0: off)
    r1_every: int = 16  # steps between R1 steps (StyleGAN2's lazy regularisation)
    epochs: int | None = 10  # None: run until max_steps
    max_steps: int | None = None  # optimizer steps (each updates Enc, Dec and Dis once)
    batch_size: int = 64  # per step, over all processes (the paper's 64)
    lr: float = 3e-4  # RMSProp learning rate of Enc and Dec (Sec. 4)
    prior_components: int | None = None  # the fitted prior's mixtures: None chosen by held-out likelihood, 0 none
    recalibrate_bn: int = 50  # batches of prior latents for the decoder's final BN statistics (0: off)
    device: Device = "auto"
    amp: bool = False  # bf16 autocast (CPU, or CUDA where supported), else fp16 with a GradScaler on CUDA
    seed: int = 0  # model init, the data order of every epoch and every z drawn
    resume: Path | None = None  # a checkpoint.pt to continue from, exactly
    checkpoint_every: int = 500  # steps between checkpoints (and one at the end)
    snapshot_every: int = 0  # steps between kept copies, snapshots/stepNNNNNN.pt, for the steps curve (0: none)
    log_every: int = 50  # steps between metrics.jsonl lines
    tensorboard: bool = False  # also write TensorBoard event files (runs/NAME/tensorboard/)
    data_dir: Path = Path("data")  # where mnist / fashion-mnist IDX files are downloaded
    num_workers: int | None = None  # DataLoader workers (None: 4 on CUDA, 0 on CPU; decoding: all cores)
    eval_images: int | None = None  # held-out images evaluated at the end (None: all, up to 10,000)
    export_to: Path | None = None  # models dir: export a bundle after the final checkpoint
    name: str | None = None  # bundle name under export_to
    version: str | None = None  # bundle version (default: chosen by model_core.export)

    @property
    def mode(self) -> str:
        return self.objective.mode

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (paths as strings, the objective as a dict), so a checkpoint loads weights_only."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
