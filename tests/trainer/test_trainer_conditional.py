"""Labelled data and the class-conditional run: labels per dataset, --conditional end to end, progress.gif."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_runs import run_module, tiny_args

from model_core import bundle
from model_core.config import PRESETS
from trainer import mnist
from trainer.cli import main, parse_args
from trainer.datasets import ImageArrayDataset, load_dataset


def test_embedded_mnist_carries_its_labels() -> None:
    data = load_dataset("embedded-mnist", channels=1, size=32, data_dir=Path("unused"))
    _, labels = mnist.load_embedded_mnist()
    assert data.class_names == tuple(str(d) for d in range(10))
    assert data.train_labels is not None and data.heldout_labels is not None
    np.testing.assert_array_equal(data.train_labels, labels[:8000])
    np.testing.assert_array_equal(data.heldout_labels, labels[8000:])
    tune = load_dataset("embedded-mnist:tune", channels=1, size=32, data_dir=Path("unused"))
    assert tune.heldout_labels is not None
    np.testing.assert_array_equal(tune.heldout_labels, labels[7000:8000])


def write_class_folders(root: Path, counts: dict[str, int]) -> None:
    """One sub-folder per class, each image a flat grey of its class's index (so labels can be checked)."""
    for k, (name, count) in enumerate(sorted(counts.items())):
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(np.full((20, 20), 40 * k + 10, np.uint8)).save(root / name / f"{i:03d}.png")


def test_a_folder_of_class_folders_is_labelled_and_held_out_per_class(tmp_path: Path) -> None:
    write_class_folders(tmp_path, {"cats": 20, "dogs": 10, "owls": 3})
    data = load_dataset(f"folder:{tmp_path}", channels=1, size=8, data_dir=tmp_path)
    assert data.class_names == ("cats", "dogs", "owls")
    assert data.train_labels is not None and data.heldout_labels is not None
    assert np.bincount(data.heldout_labels).tolist() == [2, 1, 1]  # a tenth of each class, at least one
    assert np.bincount(data.train_labels).tolist() == [18, 9, 2]
    for images, labels in ((data.train, data.train_labels), (data.heldout, data.heldout_labels)):
        np.testing.assert_array_equal(images[:, 0, 4, 4] // 40, labels)  # every image kept its own label


def test_a_folder_with_top_level_images_is_unlabelled(tmp_path: Path) -> None:
    write_class_folders(tmp_path, {"a": 5, "b": 5})
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "loose.png")
    data = load_dataset(f"folder:{tmp_path}", channels=1, size=8, data_dir=tmp_path)
    assert data.train_labels is None and data.class_names == ()


def test_the_dataset_serves_labels_with_their_images() -> None:
    images, labels = np.arange(5, dtype=np.uint8).reshape(5, 1, 1, 1), np.array([4, 3, 2, 1, 0])
    batch, batch_labels = ImageArrayDataset(images, labels).__getitems__([1, 3])
    assert batch.flatten().tolist() == [1, 3] and batch_labels is not None and batch_labels.tolist() == [3, 1]
    assert ImageArrayDataset(images).__getitems__([0])[1] is None


def test_conditional_flags_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_args(tiny_args(tmp_path, "--conditional")).conditional
    for extra, dataset, needle in (
        (["--conditional"], f"celeba:{tmp_path}", "no class labels"),
        (["--dis-conditioning", "planes"], "embedded-mnist", "needs --conditional"),
    ):
        with pytest.raises(SystemExit) as stop:
            parse_args(tiny_args(tmp_path / "run", *extra, dataset=dataset))
        assert stop.value.code == 2 and needle in capsys.readouterr().err


def test_conditional_on_an_unlabelled_folder_is_one_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(6):
        Image.fromarray(np.full((20, 20), i * 30, np.uint8)).save(tmp_path / f"{i}.png")
    status = main(tiny_args(tmp_path / "run", "--conditional", "--max-steps", "1", dataset=f"folder:{tmp_path}"))
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and "--conditional needs labelled data" in err[-1]


def test_conditional_run_trains_exports_and_writes_class_grids(tmp_path: Path) -> None:
    out, models = tmp_path / "run", tmp_path / "models"
    args = tiny_args(out, "--conditional", "--max-steps", "3", "--recalibrate-bn", "2", "--export-to", str(models))
    done = run_module([*args, "--name", "digits"])
    assert done.returncode == 0, done.stderr
    ckpt = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert ckpt["model_config"]["num_classes"] == 10 and ckpt["class_means"].shape == (10, PRESETS["tiny"].latent_dim)
    manifest = bundle.verify(bundle.resolve(models, "digits"))
    assert manifest.num_classes == 10 and manifest.class_names == tuple(str(d) for d in range(10))
    assert manifest.class_means == bundle.CLASS_MEANS
    prior = Image.open(next((out / "samples").glob("*_prior.png")))
    assert prior.size == (8 * 34 + 2, 10 * 34 + 2)  # one row of 8 per class, 32 px cells and 2 px gaps
    gif = Image.open(out / "samples" / "progress.gif")
    assert gif.format == "GIF" and gif.size == prior.size
    assert json.loads((out / "eval.json").read_text())["images"] == 8


def test_progress_gif_has_a_frame_per_epoch(tmp_path: Path) -> None:
    from trainer.grids import write_progress_gif

    for epoch, value in enumerate((0, 128, 255), start=1):
        Image.fromarray(np.full((10, 12), value, np.uint8)).save(tmp_path / f"epoch{epoch:03d}_prior.png")
    gif = Image.open(write_progress_gif(tmp_path) or "")
    assert gif.n_frames == 3 and gif.info["loop"] == 0
