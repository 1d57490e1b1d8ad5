"""vaegan-export and --export-to: a checkpoint becomes a verified bundle (trainer.export, model_core.export)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from tiny_models import TINY, checkpoint_dict, trained_like
from tiny_runs import tiny_args

from model_core import bundle
from model_core.config import PRESETS
from trainer import export as export_cli
from trainer.cli import main


@pytest.mark.slow
def test_export_to_writes_a_bundle_after_training(tmp_path: Path) -> None:
    pytest.importorskip("model_core.export", reason="model_core.export has not landed in this checkout")
    models = tmp_path / "models"
    args = tiny_args(
        tmp_path / "run", "--max-steps", "2", "--export-to", str(models), "--name", "digits", "--version", "v1"
    )
    assert main(args) == 0
    manifest = json.loads((models / "digits" / "v1" / "manifest.json").read_text())
    assert manifest["name"] == "digits" and manifest["version"] == "v1"
    assert manifest["preprocessing"]["pad"] == [2, 2, 2, 2]
    assert manifest["training"]["steps"] == 2 and manifest["training"]["seed"] == 3
    training = manifest["training"]  # the recipe and every option it set are recorded
    assert (training["recipe"], training["sampling_decoder"], training["generator_loss"]) == (
        "default",
        "ema",
        "nonsaturating",
    )
    assert training["options"]["dis_passes"] == "separate" and training["options"]["decoder_ema"] == 0.999
    assert (models / "digits" / "LATEST").read_text().strip() == "v1"


def test_cli_exports_a_checkpoint(tmp_path: Path) -> None:
    ckpt = tmp_path / "checkpoint.pt"
    torch.save(checkpoint_dict(trained_like(TINY)), ckpt)
    assert export_cli.main([str(ckpt), "--models-dir", str(tmp_path / "models"), "--name", "digits"]) == 0
    (version,) = bundle.list_versions(tmp_path / "models", "digits")
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", version)
    m = bundle.verify(bundle.resolve(tmp_path / "models", "digits"))
    assert (m.training.steps, m.training.epochs, m.training.seed, m.training.gamma) == (120, 2, 7, 0.01)
    assert (m.dataset, m.metrics["fd_cls"], m.preprocessing.fit) == ("embedded-mnist", 123.5, (8, 8))


def test_heldout_digits_for_mnist32() -> None:
    images = export_cli.heldout_images(PRESETS["mnist32"])
    assert images is not None and images.shape == (9, 1, 32, 32)
    assert images.min() == -1.0 and images.max() <= 1.0
    assert export_cli.heldout_images(PRESETS["paper64"]) is None


def test_cli_errors_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = trained_like(TINY)
    good, stale, broken = tmp_path / "good.pt", tmp_path / "stale.pt", tmp_path / "broken.pt"
    torch.save(checkpoint_dict(model), good)
    torch.save({**checkpoint_dict(model), "format_version": 99}, stale)
    broken.write_bytes(b"not a checkpoint")
    models = str(tmp_path / "models")
    cases = [
        ([str(tmp_path / "absent.pt"), "--models-dir", models, "--name", "m"], "no such checkpoint file"),
        ([str(stale), "--models-dir", models, "--name", "m"], "checkpoint format_version 99"),
        ([str(broken), "--models-dir", models, "--name", "m"], "not a readable checkpoint"),
        ([str(good), "--models-dir", models, "--name", "../m"], "invalid model name"),
        ([str(good), "--models-dir", models, "--name", "m", "--version", "a/b"], "invalid model version"),
    ]
    for argv, message in cases:
        assert export_cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert export_cli.main([str(good), "--models-dir", models, "--name", "m", "--version", "v1"]) == 0
    assert export_cli.main([str(good), "--models-dir", models, "--name", "m", "--version", "v1"]) == 2
    assert "m/v1: version already exists" in capsys.readouterr().err
