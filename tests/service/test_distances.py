"""service.distances: the learned (Dis_l) and pixel distances that /similarity answers with."""

from __future__ import annotations

import numpy as np
import pytest

from service.distances import pair_distances


def test_known_pair() -> None:
    features = np.array([[0.0, 0.0, 0.0, 0.0], [3.0, 4.0, 0.0, 0.0]], np.float32)  # (2, F): |diff| = 5
    images = np.zeros((2, 1, 2, 2), np.float32)  # (2, C, H, W)
    images[1, 0, 0, 0] = 2.0
    d = pair_distances(features, images)
    assert (d.learned_distance, d.learned_mse, d.features) == (12.5, 25 / 4, 4)
    assert (d.pixel_distance, d.pixel_mse, d.pixels) == (2.0, 4 / 4, 4)


def test_matches_norms_and_is_symmetric() -> None:
    rng = np.random.default_rng(0)
    features, images = rng.standard_normal((2, 64)), rng.uniform(-1, 1, (2, 3, 8, 8))
    d = pair_distances(features.astype(np.float32), images.astype(np.float32))
    np.testing.assert_allclose(d.learned_distance, 0.5 * np.linalg.norm(features[0] - features[1]) ** 2, rtol=1e-6)
    np.testing.assert_allclose(d.pixel_mse, np.mean((images[0] - images[1]) ** 2), rtol=1e-6)
    assert d == pair_distances(features[::-1].astype(np.float32), images[::-1].astype(np.float32))
    same = pair_distances(features[[0, 0]], images[[0, 0]])
    assert same.learned_distance == same.pixel_distance == 0.0


def test_learned_distance_is_the_training_loss_term() -> None:
    """Between a and b, the learned distance is L_llike^{Dis_l} of model_core.losses (Eq. 5-6)."""
    torch = pytest.importorskip("torch")
    from model_core.losses import feature_llike

    features = np.random.default_rng(1).standard_normal((2, 16)).astype(np.float32)
    expected = feature_llike(torch.from_numpy(features[:1]), torch.from_numpy(features[1:])).item()
    assert pair_distances(features, np.zeros((2, 1, 1, 1), np.float32)).learned_distance == pytest.approx(expected)
