"""vaegan-train --tensorboard: the run as TensorBoard event files beside metrics.jsonl.

Every logged scalar (train/<key>), each epoch's sample and reconstruction grids, and at the end
the hyper-parameters with the held-out figures (the HPARAMS tab), in runs/NAME/tensorboard/.
``tensorboard --logdir runs`` shows every run; the [tensorboard] extra installs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from trainer.config import TrainConfig

FOLDER = "tensorboard"


class TensorBoard:
    """A SummaryWriter for one run (rank 0 only); a resumed run drops the events after its checkpoint."""

    def __init__(self, cfg: TrainConfig, resumed_at: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package (checked at parse time)

        self.cfg = cfg
        self.writer = SummaryWriter(str(cfg.out / FOLDER), purge_step=resumed_at)

    def scalars(self, record: dict[str, Any]) -> None:
        """One metrics.jsonl record: each number as train/<key> at its step."""
        step = int(record["step"])
        for key, value in record.items():
            if key != "step" and isinstance(value, int | float):
                self.writer.add_scalar(f"train/{key}", value, step)

    def grids(self, paths: list[Path], step: int) -> None:
        """The epoch's grid PNGs (trainer/grids.py) as images, named by their kind (prior, reconstructions)."""
        for path in paths:
            pixels = np.asarray(Image.open(path))
            kind = path.stem.rsplit("_", 1)[-1]
            self.writer.add_image(f"samples/{kind}", pixels, step, dataformats="HW" if pixels.ndim == 2 else "HWC")

    def close(self, evaluation: dict[str, Any] | None) -> None:
        """The hyper-parameters (every option of the run that is a plain value) and the held-out figures."""
        if evaluation is not None:
            options = {**self.cfg.to_dict(), **self.cfg.objective.to_dict()}
            hparams = {k: v for k, v in options.items() if isinstance(v, bool | int | float | str)}
            figures = {f"heldout/{k}": float(v) for k, v in evaluation.items() if isinstance(v, int | float)}
            self.writer.add_hparams(hparams, figures, run_name=".")
        self.writer.close()
