"""vaegan-train's command line: the TrainConfig it builds, and one-line refusals with status 2."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from tiny_runs import run_module, tiny_args

from trainer.cli import main, parse_args
from trainer.config import TrainConfig, UsageError


def test_parse_args_builds_a_frozen_config(tmp_path: Path) -> None:
    cfg = parse_args(
        [
            "--preset",
            "mnist32",
            "--dataset",
            "embedded-mnist",
            "--out",
            str(tmp_path),
            "--gamma",
            "0.5",
            "--gan-inputs",
            "two",
            "--generator-loss",
            "nonsaturating",
        ]
    )
    assert isinstance(cfg, TrainConfig)
    assert (cfg.epochs, cfg.max_steps, cfg.batch_size, cfg.lr) == (10, None, 64, 3e-4)
    assert cfg.objective.gamma == 0.5 and cfg.objective.gan_inputs == "two"
    assert cfg.objective.generator_loss == "nonsaturating"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0  # type: ignore[misc]
    assert all(not isinstance(v, Path) for v in cfg.to_dict().values())


def test_max_steps_alone_leaves_epochs_unbounded(tmp_path: Path) -> None:
    cfg = parse_args(["--preset", "mnist32", "--dataset", "mnist", "--out", str(tmp_path), "--max-steps", "7"])
    assert (cfg.epochs, cfg.max_steps) == (None, 7)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--batch-size", "0"], "--batch-size: must be a positive integer"),
        (["--lr", "-0.001"], "--lr: must be a positive number"),
        (["--lr", "nan"], "--lr: must be a positive number"),
        (["--gamma", "-1"], "--gamma: must be a number >= 0"),
        (["--checkpoint-every", "0"], "--checkpoint-every"),
        (["--pixel-sigma", "0"], "--pixel-sigma: must be a positive number"),
        (["--recalibrate-bn", "-1"], "--recalibrate-bn"),
        (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["--dataset", "folder:/no/such/folder"], "is not a folder"),
        (["--dataset", "celeba"], "needs a path"),
        (["--preset", "huge"], "invalid choice: 'huge'"),
        (["--name", "mnist"], "--export-to and --name go together"),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], needle: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args([*tiny_args(tmp_path / "run"), *extra])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("vaegan-train: error:")
    assert needle in err


def test_empty_folder_is_refused_at_run_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    assert main(tiny_args(tmp_path / "run", dataset=f"folder:{tmp_path / 'images'}")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"vaegan-train: error: {tmp_path / 'images'}: no image files found"


def test_python_m_trainer_fails_without_traceback(tmp_path: Path) -> None:
    result = run_module(tiny_args(tmp_path / "run", "--batch-size", "0"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "vaegan-train: error: argument --batch-size: must be a positive integer, got '0'"
    ]


def test_amp_on_cpu_is_bf16_autocast_without_a_scaler() -> None:
    from trainer.distributed import precision

    assert precision(True, torch.device("cpu")) == (torch.bfloat16, None)
    assert precision(False, torch.device("cpu")) == (None, None)


def test_embedded_tune_split_and_its_errors(tmp_path: Path) -> None:
    from trainer.datasets import load_dataset, parse_dataset

    data = load_dataset("embedded-mnist:tune", 1, 32, tmp_path)
    assert (len(data.train), len(data.heldout)) == (7000, 1000)
    with pytest.raises(UsageError, match="only the split 'tune'"):
        parse_dataset("embedded-mnist:other")
