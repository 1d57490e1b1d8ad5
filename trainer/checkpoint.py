"""Checkpoints, all of them here: the format, saving, loading, the model rebuilt from one, and older ones.

A checkpoint is a plain dict that loads with ``torch.load(weights_only=True)``, written atomically.
Besides the networks and optimizers it holds every random state and the data position, so a
resumed run continues exactly where the checkpoint left off: ``capture`` makes the dict of a
``TrainingState``, ``restore`` puts one back (vaegan-train --resume), ``load_model`` rebuilds the
eval-mode model vaegan-export and the benchmarks read. ``load`` refuses any file that is not one.
"""

from __future__ import annotations

import os
import random
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel

from model_core.bundle import fsync_dir
from model_core.config import ModelConfig, ObjectiveConfig
from model_core.vaegan import VAEGAN, Optimizers
from trainer.config import TrainConfig, TrainingError, UsageError
from trainer.sampling import recalibrated_copy

FORMAT_VERSION = 1  # the "format_version" of the dicts ``capture`` writes; ``load`` reads this one only
# Changing these would change what the saved weights or the data position mean.
MUST_MATCH = ("preset", "dataset", "seed", "batch_size", "mode")
NETWORKS = ("encoder", "decoder", "discriminator")


class CheckpointReadError(Exception):
    """A file is no checkpoint of FORMAT_VERSION (or holds pickled objects one never contains); one line."""


@dataclass
class Position:
    """Where the run stands: optimizer steps done, and batches done in the current epoch."""

    step: int = 0
    epoch: int = 0
    batch: int = 0


@dataclass
class TrainingState:
    """What a checkpoint saves and restores: the networks, their optimizers, the EMA and the position."""

    model: VAEGAN
    optimizers: Optimizers
    scaler: torch.amp.GradScaler | None
    ema: AveragedModel | None
    position: Position = field(default_factory=Position)


# Save: the dict of a training state, written atomically.
def capture(
    state: TrainingState,
    cfg: TrainConfig,
    steps_per_epoch: int,
    preprocessing: dict[str, Any],
    eval_result: dict[str, Any] | None = None,
    class_names: tuple[str, ...] = (),
    class_means: torch.Tensor | None = None,
    prior: dict[str, Any] | None = None,
    finished: bool = False,
) -> dict[str, Any]:
    """The checkpoint dict: plain types and tensors only (loads with weights_only=True).

    ``class_names`` of labelled data. The final checkpoint (``finished``: its sampling decoder's
    batch norm recalibrated) also holds ``class_means`` (K, Z), the per-class mean latents, and the
    fitted ``prior`` (trainer/prior.py's record); a mid-run one leaves them to vaegan-export.
    """
    epoch, batch = state.position.epoch, state.position.batch
    if batch == steps_per_epoch:  # saved on an epoch's last step: the next epoch starts at 0
        epoch, batch = epoch + 1, 0
    ema = state.ema
    return {
        "format_version": FORMAT_VERSION,
        "step": state.position.step,
        "epoch": epoch,
        "preset": cfg.preset,
        "model_config": state.model.config.to_dict(),
        "objective": cfg.objective.to_dict(),
        "train_config": cfg.to_dict(),
        "dataset": cfg.dataset,
        "preprocessing": preprocessing,
        "models": {name: getattr(state.model, name).state_dict() for name in NETWORKS},
        "optimizers": state.optimizers.state_dict(),
        "scaler": state.scaler.state_dict() if state.scaler is not None else None,
        "decoder_ema": None if ema is None else {"updates": int(ema.n_averaged), "state": ema.module.state_dict()},
        "rng": capture_rng(),
        "data_position": {"epoch": epoch, "batch": batch, "index": batch * cfg.batch_size},
        "eval": eval_result,
        "class_names": list(class_names),
        "class_means": class_means,
        "prior": prior,
        "finished": finished,
    }


def capture_rng() -> dict[str, Any]:
    """Python, numpy, torch and CUDA random states, as tensors and plain types."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": [int(k) for k in keys],
            "pos": pos,
            "has_gauss": has_gauss,
            "cached_gaussian": gauss,
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def save_atomic(checkpoint: dict[str, Any], path: Path) -> None:
    """Write to a temp file beside ``path``, fsync, then rename over it: never half a checkpoint."""
    try:  # a read-only or full folder fails here already
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise TrainingError(f"cannot write checkpoint {path}: {exc}; the previous one is intact") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TrainingError(f"cannot write checkpoint {path}: {exc}; the previous one is intact") from exc


# Load: a checkpoint dict, read safely; a run resumed from one.


def load(path: Path) -> dict[str, Any]:
    """The checkpoint dict at ``path`` (on the CPU); CheckpointReadError (one line) when it is not one."""
    if not Path(path).is_file():
        raise CheckpointReadError("no such checkpoint file")
    checkpoint = _load_weights_only(path)
    if not isinstance(checkpoint, dict):
        raise CheckpointReadError(f"not a vaegan checkpoint (a {type(checkpoint).__name__}, not a dict)")
    if checkpoint.get("format_version") != FORMAT_VERSION:
        raise CheckpointReadError(
            f"checkpoint format_version {checkpoint.get('format_version')!r}, this build reads {FORMAT_VERSION}"
        )
    return checkpoint


def _load_weights_only(path: Path) -> Any:
    """``torch.load`` with weights_only=True on the CPU; CheckpointReadError (one line) when refused."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling, zip and torch errors come in many types
        refused = re.search(r"GLOBAL ([\w.]+)", str(exc))  # weights_only met a function or a foreign class
        if refused:
            raise CheckpointReadError(
                f"refused: the file holds pickled Python objects ({refused.group(1)}) that a vaegan checkpoint "
                "never contains; loading them could run code, so it is not loaded"
            ) from None
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointReadError(f"not a readable checkpoint ({first_line})") from None


def restore(state: TrainingState, path: Path, cfg: TrainConfig, steps_per_epoch: int) -> None:
    """Load the checkpoint at ``path`` into ``state`` and the random generators; UsageError when it does not fit."""
    try:
        saved = load(path)
    except CheckpointReadError as exc:
        raise UsageError(f"--resume {path}: {exc}") from None
    check_resumable(saved, cfg.to_dict(), state.model.config.to_dict())
    for name in NETWORKS:
        getattr(state.model, name).load_state_dict(saved["models"][name])
    state.optimizers.load_state_dict(saved["optimizers"])
    if state.scaler is not None and saved["scaler"]:
        state.scaler.load_state_dict(saved["scaler"])
    if state.ema is not None and saved.get("decoder_ema"):
        state.ema.module.load_state_dict(saved["decoder_ema"]["state"])
        state.ema.n_averaged.fill_(saved["decoder_ema"]["updates"])
    restore_rng(saved["rng"])
    where = saved["data_position"]
    if where["batch"] >= steps_per_epoch:
        raise UsageError(f"--resume {path}: data position {where} does not fit this dataset")
    state.position = Position(step=saved["step"], epoch=where["epoch"], batch=where["batch"])


def restore_rng(state: dict[str, Any]) -> None:
    """Undo ``capture_rng``."""
    random.setstate(state["python"])
    n = state["numpy"]
    keys = np.asarray(n["keys"], dtype=np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def check_resumable(checkpoint: dict[str, Any], train_config: dict[str, Any], model_config: dict[str, Any]) -> None:
    """Refuse (UsageError) to resume a checkpoint made with another model or data stream."""
    if checkpoint["model_config"] != model_config:
        changed = sorted(k for k in model_config if checkpoint["model_config"].get(k) != model_config[k])
        raise UsageError(
            f"cannot resume: the checkpoint's model config differs from preset "
            f"{train_config['preset']!r} in {', '.join(changed)} (it was trained as {checkpoint['preset']!r})"
        )
    saved = checkpoint["train_config"]
    for key in MUST_MATCH:
        had, wants = train_setting(saved, key), train_setting(train_config, key)
        if had != wants:
            raise UsageError(f"cannot resume: the checkpoint has {key}={had!r}, this run asks for {wants!r}")


# Build: the eval-mode model of a checkpoint.


def load_model(path: Path, use_ema: bool = True) -> tuple[VAEGAN, dict[str, Any]]:
    """The checkpoint at ``path`` as an eval-mode VAEGAN and its dict; CheckpointReadError when it is not one.

    ``use_ema``: the decoder is the run's weight average when it kept one (what its grids showed);
    without it the returned dict's "decoder_ema" is None.
    """
    ckpt = load(path)
    missing = [k for k in ("model_config", "models", "preprocessing") if k not in ckpt]
    if missing:
        raise CheckpointReadError(f"checkpoint lacks {', '.join(missing)}")
    model = build_model(ckpt, use_ema)
    # A finished run recalibrated the batch norm of the decoder it sampled with; a mid-run checkpoint
    # (a snapshot) none, and the last weights of a run with an EMA were never recalibrated either.
    if not is_finished(ckpt) or (not use_ema and ckpt.get("decoder_ema")):
        train = ckpt.get("train_config") or {}
        batches, batch_size, seed = (
            int(train.get(k, getattr(TrainConfig, k))) for k in ("recalibrate_bn", "batch_size", "seed")
        )
        model.decoder = recalibrated_copy(model.decoder, model.config, batches, batch_size, seed, torch.device("cpu"))
    if not use_ema:
        ckpt = {**ckpt, "decoder_ema": None}
    return model.eval(), ckpt


def build_model(ckpt: dict[str, Any], use_ema: bool = True) -> VAEGAN:
    """The VAEGAN of a checkpoint dict, its saved weights loaded (the decoder's average with ``use_ema``)."""
    try:
        model = VAEGAN(ModelConfig.from_dict(ckpt["model_config"]), objective_of(ckpt))
        for net in NETWORKS:
            getattr(model, net).load_state_dict(ckpt["models"][net])
        if use_ema and ckpt.get("decoder_ema"):
            model.decoder.load_state_dict(ckpt["decoder_ema"]["state"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointReadError(f"checkpoint does not match its model_config ({exc})") from None
    return model


# Older checkpoints (still format 1): what they lack is read as it was meant when they were written.


def is_finished(ckpt: dict[str, Any]) -> bool:
    """Whether the run had ended (its sampling decoder recalibrated); before "finished", an "eval" marked the end."""
    return bool(ckpt.get("finished", ckpt.get("eval") is not None))


def objective_of(ckpt: dict[str, Any]) -> ObjectiveConfig:
    """The objective the run trained by; ObjectiveConfig's defaults for a checkpoint from before it was saved."""
    return ObjectiveConfig(**(ckpt.get("objective") or {}))


def train_setting(train_config: dict[str, Any], key: str) -> Any:
    """A train_config value, top level or inside its objective (checkpoints before the nesting kept it flat)."""
    return train_config[key] if key in train_config else (train_config.get("objective") or {}).get(key)
