"""trainer/checkpoint.py: a training state captured and restored, refusals, and the older checkpoints it still reads.

Older checkpoints are format 1 too, but lack what later runs write: "finished" (an "eval" marked the
end), the objective nested in "train_config" (its keys sat at the top level) and the top-level
"objective" (the model then trains by ObjectiveConfig's defaults).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_models import PREPROCESSING, TINY, checkpoint_dict, trained_like

from model_core.config import ObjectiveConfig
from model_core.vaegan import VAEGAN
from trainer import checkpoint
from trainer.checkpoint import NETWORKS, CheckpointReadError, Position, TrainingState
from trainer.config import TrainConfig, UsageError

CFG = TrainConfig(preset="tiny", dataset="embedded-mnist", out=Path("run"), batch_size=4, seed=7)
STEPS_PER_EPOCH = 10


def state_of(seed: int) -> TrainingState:
    """A seeded tiny model with its optimizers, two epochs and two batches in."""
    torch.manual_seed(seed)
    model = VAEGAN(TINY, CFG.objective)
    return TrainingState(model, model.make_optimizers(), scaler=None, ema=None, position=Position(22, 2, 2))


def older(ckpt: dict[str, Any]) -> dict[str, Any]:
    """``ckpt`` as a run from before "finished", the nested objective and the saved objective wrote it."""
    train = dict(ckpt["train_config"])
    train.update(train.pop("objective"))
    return {**{k: v for k, v in ckpt.items() if k not in ("finished", "objective")}, "train_config": train}


def test_an_older_checkpoint_resumes_like_a_current_one(tmp_path: Path) -> None:
    saved = state_of(0)
    ckpt = checkpoint.capture(saved, CFG, STEPS_PER_EPOCH, PREPROCESSING)
    assert ckpt["format_version"] == checkpoint.FORMAT_VERSION and "mode" in ckpt["train_config"]["objective"]
    checkpoint.save_atomic(older(ckpt), tmp_path / "old.pt")

    resumed = state_of(1)
    checkpoint.restore(resumed, tmp_path / "old.pt", CFG, STEPS_PER_EPOCH)
    assert resumed.position == saved.position
    for name in NETWORKS:
        mine, theirs = getattr(resumed.model, name).state_dict(), getattr(saved.model, name).state_dict()
        assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    # The settings a resume must keep are read from the flat train_config as from the nested one.
    vae = replace(CFG, objective=ObjectiveConfig(mode="vae"))
    with pytest.raises(UsageError, match="the checkpoint has mode='vaegan', this run asks for 'vae'"):
        checkpoint.restore(state_of(1), tmp_path / "old.pt", vae, STEPS_PER_EPOCH)


@pytest.mark.parametrize(
    ("fields", "finished"),
    [
        ({"finished": True, "eval": None}, True),
        ({"finished": False, "eval": {"kl": 1.0}}, False),  # a snapshot of a run that evaluated mid-way
        ({"eval": {"kl": 1.0}}, True),  # older: the final evaluation marked the end
        ({"eval": None}, False),
    ],
)
def test_is_finished_reads_older_checkpoints_by_their_eval(fields: dict[str, Any], finished: bool) -> None:
    assert checkpoint.is_finished(fields) is finished


def test_load_model_of_an_older_finished_checkpoint_keeps_its_weights(tmp_path: Path) -> None:
    """tiny_models.checkpoint_dict has no "finished" but an "eval": its decoder is taken as recalibrated."""
    model = trained_like(TINY)
    path = tmp_path / "checkpoint.pt"
    torch.save(checkpoint_dict(model), path)
    loaded, ckpt = checkpoint.load_model(path)
    assert not loaded.training and loaded.objective.gamma == 0.01 and ckpt["step"] == 120
    saved = model.decoder.state_dict()
    assert all(torch.equal(loaded.decoder.state_dict()[k], saved[k]) for k in saved)

    torch.save({k: v for k, v in checkpoint_dict(model).items() if k != "objective"}, path)
    assert checkpoint.load_model(path)[0].objective == ObjectiveConfig()


def test_load_model_recalibrates_a_mid_run_checkpoint(tmp_path: Path) -> None:
    model = trained_like(TINY)
    path = tmp_path / "snapshot.pt"
    torch.save({**checkpoint_dict(model), "eval": None}, path)
    loaded, _ = checkpoint.load_model(path)
    assert not torch.equal(loaded.decoder.fc[1].running_mean, model.decoder.fc[1].running_mean)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ([1, 2], "not a vaegan checkpoint (a list, not a dict)"),
        ({"format_version": 99}, "checkpoint format_version 99, this build reads 1"),
        ({"format_version": 1, "step": 3}, "checkpoint lacks model_config, models, preprocessing"),
        ({**checkpoint_dict(trained_like(TINY)), "model_config": TINY.to_dict() | {"latent_dim": 5}}, "does not match"),
    ],
)
def test_load_model_refuses_what_is_no_model_of_ours(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "checkpoint.pt"
    torch.save(content, path)
    with pytest.raises(CheckpointReadError, match=re.escape(message)):
        checkpoint.load_model(path)
