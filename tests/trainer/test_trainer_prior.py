"""The fitted prior (trainer/prior.py): chosen by held-out likelihood, per class, stored and exported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from model_core import bundle
from trainer import export as export_cli
from trainer.prior import fit_prior, mean_by_class, prior_of

Z = 4


def clusters(n_per: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three tight, well separated clusters in Z dimensions (the latents) and their cluster (the labels)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[6.0, 0, 0, 0], [-6.0, 0, 0, 0], [0, 6.0, 0, 0]])
    mu = np.concatenate([c + 0.3 * rng.standard_normal((n_per, Z)) for c in centres]).astype(np.float32)
    return mu, np.repeat(np.arange(3), n_per)


def test_the_chosen_mixture_beats_one_gaussian_on_unseen_latents() -> None:
    mu, _ = clusters()
    prior, info = fit_prior(mu, None, 0, seed=0)
    unseen, _ = clusters(seed=1)
    one, _ = fit_prior(mu, None, 0, seed=0, components=1)
    assert info.components >= 3 and info.selection.startswith("held-out")
    assert prior.mixture.log_density(unseen).mean() > one.mixture.log_density(unseen).mean() + 1.0
    assert (info.fit_size, info.heldout_size) == (810, 90) and not prior.classes


def test_samples_land_on_the_data_where_the_standard_normal_does_not() -> None:
    mu, _ = clusters()
    prior, _ = fit_prior(mu, None, 0, seed=0)
    rng = np.random.default_rng(2)
    eps, u = rng.standard_normal((500, Z)).astype(np.float32), rng.random(500)

    def nearest(z: np.ndarray) -> np.ndarray:
        return np.sqrt(((z[:, None] - mu[None]) ** 2).sum(-1)).min(1)

    assert np.median(nearest(prior.mixture.draw(eps, u))) < 0.5 < np.median(nearest(eps))


def test_one_mixture_per_class_centred_on_its_class() -> None:
    mu, labels = clusters()
    prior, info = fit_prior(mu, labels, 3, seed=0)
    assert len(prior.classes) == 3 and info.class_components == prior.classes[0].components
    rng = np.random.default_rng(3)
    for k, mixture in enumerate(prior.classes):
        z = mixture.draw(rng.standard_normal((200, Z)).astype(np.float32), rng.random(200))
        np.testing.assert_allclose(z.mean(0), mu[labels == k].mean(0), atol=0.15)


def test_a_fixed_size_and_the_same_fit_for_the_same_seed() -> None:
    mu, labels = clusters()
    a, info = fit_prior(mu, labels, 3, seed=5, components=2)
    b, _ = fit_prior(mu, labels, 3, seed=5, components=2)
    assert (info.components, info.class_components, info.candidates) == (2, 2, (2,))
    np.testing.assert_array_equal(a.mixture.locs, b.mixture.locs)


def test_mean_by_class() -> None:
    mu, labels = clusters()
    expected = np.stack([mu[labels == k].mean(0) for k in range(4)[:3]] + [np.zeros(Z)])
    np.testing.assert_allclose(mean_by_class(mu, labels, 4), expected, atol=1e-6)


@pytest.mark.slow
def test_a_run_stores_its_prior_and_the_bundle_serves_it(tiny_run: Path) -> None:
    """The tiny run (tests/trainer/conftest.py) fitted a prior of 2 to its latents; the export carries it."""
    ckpt = torch.load(tiny_run / "checkpoint.pt", weights_only=True)
    assert ckpt["finished"] and ckpt["prior"]["info"]["components"] == 2
    prior, info = prior_of(ckpt["prior"])
    assert prior is not None and info is not None and len(prior.classes) == 10
    models = tiny_run / "prior-models"
    assert export_cli.main([str(tiny_run / "checkpoint.pt"), "--models-dir", str(models), "--name", "p"]) == 0
    loaded = bundle.load_bundle(bundle.resolve(models, "p"))
    assert loaded.manifest.prior == info and bundle.PRIOR in loaded.manifest.files
    served = bundle.read_prior(loaded)
    assert served is not None
    np.testing.assert_array_equal(served.mixture.locs, prior.mixture.locs)


@pytest.mark.slow
def test_snapshots_export_as_a_run_stopped_there(tmp_path: Path) -> None:
    """--snapshot-every keeps mid-run checkpoints; vaegan-export finishes one (BN, class means, prior)."""
    from tiny_runs import tiny_args

    from trainer.cli import main

    out = tmp_path / "run"
    assert main(tiny_args(out, "--max-steps", "4", "--snapshot-every", "2")) == 0
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == ["step000002.pt"]
    snapshot = torch.load(out / "snapshots" / "step000002.pt", weights_only=True)
    assert snapshot["step"] == 2 and not snapshot["finished"] and snapshot["prior"] is None
    path = export_cli.export_checkpoint(out / "snapshots" / "step000002.pt", tmp_path / "models", "snap")
    manifest = bundle.verify(path)
    assert manifest.training.steps == 2 and manifest.prior is not None and manifest.prior.components == 2
    assert manifest.class_names == tuple(str(d) for d in range(10)) and manifest.class_means is not None
