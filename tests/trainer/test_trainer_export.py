"""--export-to: the final checkpoint becomes a verified bundle (model_core.export)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_runs import tiny_args

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
    assert (models / "digits" / "LATEST").read_text().strip() == "v1"
