"""prior.npz (model_core/bundle/prior.py, docs/bundle.md): density, sampling, and refusing bad files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import prior_fixtures
import pytest
from prior_fixtures import info_of
from scipy.stats import multivariate_normal

from model_core import bundle
from model_core.bundle import LatentPrior, Mixture, PriorInfo

Z = 4


def random_prior(seed: int = 0, m: int = 3, classes: int = 2, mk: int = 2) -> LatentPrior:
    return prior_fixtures.random_prior(Z, seed, m, classes, mk)


def test_log_density_matches_scipy() -> None:
    mixture = random_prior().mixture
    z = np.random.default_rng(1).normal(scale=3.0, size=(50, Z))
    expected = np.log(
        sum(
            w * multivariate_normal(loc, tril.astype(np.float64) @ tril.T).pdf(z)
            for w, loc, tril in zip(mixture.weights, mixture.locs, mixture.scale_tril, strict=True)
        )
    )
    np.testing.assert_allclose(mixture.log_density(z), expected, rtol=1e-4)


def test_posterior_log_density_widens_each_component_by_the_posterior() -> None:
    """log E_q[p(z)] = log sum_m w_m N(mu; loc_m, Sigma_m + diag(var)); with var 0 it is log p(mu)."""
    mixture = random_prior().mixture
    rng = np.random.default_rng(4)
    mu, variance = rng.normal(scale=3.0, size=(5, Z)), rng.uniform(0.1, 2.0, size=(5, Z))
    expected = [
        np.log(
            sum(
                w * multivariate_normal(loc, tril.astype(np.float64) @ tril.T + np.diag(v)).pdf(m)
                for w, loc, tril in zip(mixture.weights, mixture.locs, mixture.scale_tril, strict=True)
            )
        )
        for m, v in zip(mu, variance, strict=True)
    ]
    every = mixture.components
    np.testing.assert_allclose(mixture.posterior_log_density(mu, variance, nearest=every), expected, rtol=1e-5)
    np.testing.assert_allclose(
        mixture.posterior_log_density(mu, 0 * variance, nearest=every), mixture.log_density(mu), rtol=1e-6
    )


def test_the_nearest_components_carry_the_sum() -> None:
    """Far apart components: summing over the two nearest of five changes the score by next to nothing."""
    mixture = random_prior(seed=5, m=5).mixture
    rng = np.random.default_rng(6)
    mu = mixture.draw(rng.standard_normal((20, Z)).astype(np.float32) * 0.5, rng.random(20))
    variance = np.full((20, Z), 0.05)
    full = mixture.posterior_log_density(mu, variance, nearest=5)
    np.testing.assert_allclose(mixture.posterior_log_density(mu, variance, nearest=2), full, atol=0.05)


def test_draws_follow_the_mixture() -> None:
    """Component shares follow the weights; each component's draws have its mean and covariance."""
    mixture = random_prior(m=2).mixture
    rng = np.random.default_rng(2)
    n = 40_000
    eps, u = rng.standard_normal((n, Z)).astype(np.float32), rng.random(n)
    z = mixture.draw(eps, u)
    cumulative = np.cumsum(mixture.weights.astype(np.float64))
    component = np.searchsorted(cumulative / cumulative[-1], u, side="right")
    assert abs((component == 0).mean() - mixture.weights[0]) < 0.01
    for m in range(2):
        mine = z[component == m]
        cov = mixture.scale_tril[m].astype(np.float64) @ mixture.scale_tril[m].T
        np.testing.assert_allclose(mine.mean(0), mixture.locs[m], atol=0.05)
        np.testing.assert_allclose(np.cov(mine.T), cov, atol=0.05)


def test_temperature_scales_within_components() -> None:
    """Noise eps scaled by t moves each draw away from its component's mean by t times as much."""
    mixture = random_prior().mixture
    rng = np.random.default_rng(3)
    eps, u = rng.standard_normal((8, Z)).astype(np.float32), rng.random(8)
    centre = mixture.draw(np.zeros_like(eps), u)
    np.testing.assert_allclose(mixture.draw(eps * 0.5, u) - centre, 0.5 * (mixture.draw(eps, u) - centre), atol=1e-5)


def test_typicality_is_the_reference_cdf() -> None:
    prior = random_prior()
    low, mid, high = prior.reference[0] - 1, prior.reference[50], prior.reference[-1] + 1
    np.testing.assert_allclose(prior.typicality(np.array([low, mid, high])), [0.0, 51 / 101, 1.0])


# A bundle folder holding only what read_prior reads: a manifest with its prior entry, and prior.npz.


def prior_bundle(tmp_path: Path, data: bytes, info: PriorInfo, classes: int = 2) -> bundle.Bundle:
    image = bundle.ImageSpec(height=8, width=8, channels=1)
    manifest = bundle.Manifest(
        format_version=bundle.FORMAT_VERSION,
        name="m",
        version="v",
        created_at="2026-01-01T00:00:00+00:00",
        preset="tiny",
        image=image,
        latent_dim=Z,
        similarity_features=16,
        dataset="embedded-mnist",
        preprocessing=bundle.Preprocessing(channels=1, height=8, width=8, fit=(8, 8)),
        training=bundle.Training(epochs=1, steps=1, seed=0, mode="vaegan", gamma=0.1),
        parity={},
        signatures=bundle.network_signatures(image, Z, 16),
        class_names=tuple(str(k) for k in range(classes)),
        prior=info,
    )
    (tmp_path / bundle.PRIOR).write_bytes(data)
    return bundle.Bundle(path=tmp_path, manifest=manifest)


def npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_round_trip(tmp_path: Path) -> None:
    prior = random_prior()
    loaded = bundle.read_prior(prior_bundle(tmp_path, bundle.prior_bytes(prior, Z, 2), info_of(prior)))
    assert loaded is not None
    np.testing.assert_array_equal(loaded.mixture.scale_tril, prior.mixture.scale_tril)
    np.testing.assert_array_equal(loaded.classes[1].locs, prior.classes[1].locs)


def _broken(arrays: dict[str, np.ndarray], case: str) -> dict[str, np.ndarray]:
    """One way of breaking a prior.npz: the arrays after the change."""
    a = dict(arrays)
    if case == "nan":
        a["locs"] = a["locs"].copy()
        a["locs"][0, 0] = np.nan
    elif case == "weights":
        a["weights"] = a["weights"] * 2
    elif case == "negative weight":
        a["weights"] = np.array([1.5, -0.5, 0.0], np.float32)
    elif case == "upper":
        a["scale_tril"] = a["scale_tril"].copy()
        a["scale_tril"][0, 0, 1] = 0.5
    elif case == "diagonal":
        a["class_scale_tril"] = a["class_scale_tril"].copy()
        a["class_scale_tril"][1, 0, 2, 2] = -0.1
    elif case == "shape":
        a["locs"] = a["locs"][:, :3]
    elif case == "float64":
        a["weights"] = a["weights"].astype(np.float64)
    elif case == "extra":
        a["other"] = np.zeros(2, np.float32)
    elif case == "missing":
        del a["reference"]
    return a


CASES = {
    "nan": "finite float32",
    "weights": "sum to 1",
    "negative weight": ">= 0",
    "upper": "lower triangular",
    "diagonal": "positive diagonal",
    "shape": "shape",
    "float64": "finite float32",
    "extra": "holds arrays",
    "missing": "holds arrays",
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_prior_files_are_refused_naming_the_file(tmp_path: Path, case: str) -> None:
    prior = random_prior()
    data = npz(**_broken(prior.arrays(), case))
    with pytest.raises(bundle.BundleError, match=r"prior\.npz") as caught:
        bundle.read_prior(prior_bundle(tmp_path, data, info_of(prior)))
    assert CASES[case] in str(caught.value)


def test_pickles_and_garbage_are_refused(tmp_path: Path) -> None:
    prior = random_prior()
    objects = npz(**{**prior.arrays(), "weights": np.array([{"a": 1}], dtype=object)})  # needs allow_pickle
    for data in (objects, b"not a zip archive"):
        with pytest.raises(bundle.BundleError, match=r"prior\.npz"):
            bundle.read_prior(prior_bundle(tmp_path, data, info_of(prior)))


def test_components_must_match_the_manifest(tmp_path: Path) -> None:
    prior = random_prior()
    wrong = info_of(prior).model_copy(update={"components": 4})
    with pytest.raises(bundle.BundleError, match="manifest says 4"):
        bundle.read_prior(prior_bundle(tmp_path, bundle.prior_bytes(prior, Z, 2), wrong))


def test_prior_bytes_refuses_what_a_reader_would() -> None:
    prior = random_prior()
    bad = LatentPrior(
        Mixture(prior.mixture.weights * 3, prior.mixture.locs, prior.mixture.scale_tril), (), prior.reference
    )
    with pytest.raises(bundle.BundleError, match="sum to 1"):
        bundle.prior_bytes(bad, Z, 0)
