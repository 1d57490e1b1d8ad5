"""Class-conditional networks: labels reach every network, Algorithm 1 trains them, export keeps them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from tiny_models import (
    CLASS_NAMES,
    PREPROCESSING,
    TINY,
    TINY_COND,
    TINY_COND_PLANES,
    TINY_COND_PROJECTION,
    trained_like,
)

from model_core import bundle, export
from model_core.config import ModelConfig, ObjectiveConfig
from model_core.networks import split_logits
from model_core.vaegan import VAEGAN, compute_losses

TRAINING = {"epochs": 1, "steps": 3, "seed": 0, "mode": "vaegan", "gamma": 1e-6}


def onehot(labels: list[int], k: int = 3) -> torch.Tensor:
    return F.one_hot(torch.tensor(labels), k).float()


@pytest.mark.parametrize(
    "cfg", [TINY_COND, TINY_COND_PROJECTION, TINY_COND_PLANES], ids=["auxiliary", "projection", "planes"]
)
def test_shapes_and_the_label_changes_every_output_but_dis_l(cfg: ModelConfig) -> None:
    model = trained_like(cfg)
    x, z = torch.rand(4, 1, 8, 8) * 2 - 1, torch.randn(4, cfg.latent_dim)
    a, b = onehot([0, 1, 2, 0]), onehot([1, 2, 0, 1])
    with torch.no_grad():
        mu_a, logvar_a = model.encoder(x, a)
        mu_b, _ = model.encoder(x, b)
        assert mu_a.shape == logvar_a.shape == (4, cfg.latent_dim)
        assert not torch.allclose(mu_a, mu_b)
        image = model.decoder(z, a)
        assert image.shape == (4, 1, 8, 8)
        assert not torch.allclose(image, model.decoder(z, b))
        out_a, features_a = model.discriminator(x, a)
        out_b, features_b = model.discriminator(x, b)
        (logits_a, classes_a), (logits_b, classes_b) = split_logits(out_a), split_logits(out_b)
        assert logits_a.shape == (4,) and not torch.allclose(logits_a, logits_b)
        if cfg.dis_conditioning == "auxiliary":  # the class head reads the image, not the label
            assert classes_a is not None and classes_a.shape == (4, 3)
            torch.testing.assert_close(classes_a, classes_b)
        else:
            assert classes_a is None
        torch.testing.assert_close(features_a, features_b)  # Dis_l is label-free
        torch.testing.assert_close(model.discriminator.features(x), features_a)


def test_a_missing_or_stray_label_is_an_error() -> None:
    cond, plain = trained_like(TINY_COND), trained_like(TINY)
    x, z = torch.rand(2, 1, 8, 8), torch.randn(2, 4)
    with pytest.raises(ValueError, match="one-hot label of shape"):
        cond.decoder(z)
    with pytest.raises(ValueError, match="one-hot label of shape"):
        cond.encoder(x, onehot([0, 1], k=4))
    with pytest.raises(ValueError, match="unconditional"):
        plain.decoder(z, onehot([0, 1]))


def test_config_refuses_one_class_and_unknown_conditioning() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        ModelConfig(num_classes=1)
    with pytest.raises(ValueError, match="dis_conditioning"):
        ModelConfig(num_classes=3, dis_conditioning="concat")


@pytest.mark.parametrize("passes", ["joint", "separate"])
def test_prior_labels_are_the_batch_labels_shuffled(passes: str) -> None:
    """z_p's labels are a permutation of the batch's: a draw from the training label frequencies."""
    torch.manual_seed(0)
    model = VAEGAN(TINY_COND, ObjectiveConfig(dis_passes=passes))
    seen: list[torch.Tensor] = []
    decoder_forward = model.decoder.forward

    def spy(z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        assert y is not None
        seen.append(y)
        return decoder_forward(z, y)

    model.decoder.forward = spy  # type: ignore[method-assign]
    y = onehot([0, 0, 1, 2, 2, 2])
    step = compute_losses(
        model.encoder, model.decoder, model.discriminator, torch.rand(6, 1, 8, 8), model.objective,
        torch.Generator().manual_seed(1), y,
    )  # fmt: skip
    assert torch.isfinite(step.enc) and torch.isfinite(step.dec) and step.dis is not None
    assert {"dis_class_ce", "dec_class_ce"} <= set(step.logs)  # the class head's terms
    labels = seen[0]  # (2B, K): y for Dec(z), then y_p for Dec(z_p)
    torch.testing.assert_close(labels[:6], y)
    assert sorted(labels[6:].argmax(1).tolist()) == sorted(y.argmax(1).tolist())


def test_conditional_vae_training_reduces_its_pixel_loss() -> None:
    torch.manual_seed(0)
    model = VAEGAN(TINY_COND, ObjectiveConfig(mode="vae", pixel_sigma=0.3))
    optimizers = model.make_optimizers(1e-3)
    x, y = torch.rand(16, 1, 8, 8) * 2 - 1, onehot([i % 3 for i in range(16)])
    generator = torch.Generator().manual_seed(0)
    first = model.train_step(x, optimizers, generator, y=y)
    for _ in range(60):
        last = model.train_step(x, optimizers, generator, y=y)
    assert float(last["llike"]) < float(first["llike"])


def publish(model: VAEGAN, models_dir: Path, **kwargs: object) -> Path:
    return export.export_bundle(
        model, models_dir, "tiny", preset="tiny", dataset="test", preprocessing=PREPROCESSING, training=TRAINING,
        **kwargs,
    )  # fmt: skip


def test_conditional_export_records_the_label_input_and_matches_pytorch(tmp_path: Path) -> None:
    model = trained_like(TINY_COND)
    means = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    path = publish(model, tmp_path, class_names=CLASS_NAMES, class_means=means)
    manifest = bundle.verify(path)
    assert (manifest.num_classes, manifest.class_names, manifest.class_means) == (3, CLASS_NAMES, bundle.CLASS_MEANS)
    assert [t.name for t in manifest.signatures["decoder.onnx"].inputs] == ["z", "label"]
    assert [t.name for t in manifest.signatures["encoder.onnx"].inputs] == ["image", "label"]
    assert all(err <= export.PARITY_TOLERANCE for err in manifest.parity.values())
    np.testing.assert_array_equal(bundle.read_class_means(bundle.load_bundle(path)), means)

    z, y = torch.randn(5, 4), onehot([0, 1, 2, 2, 1])
    session = ort.InferenceSession(str(path / "decoder.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(["image"], {"z": z.numpy(), "label": y.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, model.decoder(z, y).numpy(), atol=1e-4)


def test_conditional_export_needs_a_name_per_class(tmp_path: Path) -> None:
    with pytest.raises(export.ExportError, match="class names"):
        publish(trained_like(TINY_COND), tmp_path, class_names=("a", "b"))


def test_unconditional_export_with_class_means(tmp_path: Path) -> None:
    path = publish(trained_like(TINY), tmp_path, class_names=CLASS_NAMES, class_means=np.zeros((3, 4), np.float32))
    manifest = bundle.verify(path)
    assert manifest.num_classes == 0 and manifest.class_names == CLASS_NAMES
    assert bundle.CLASS_MEANS in manifest.files
    (path / bundle.CLASS_MEANS).write_bytes(b"tampered")
    with pytest.raises(bundle.BundleError, match="sha256"):
        bundle.verify(path)


def test_class_means_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    with pytest.raises(export.ExportError, match="do not fit"):
        publish(trained_like(TINY), tmp_path, class_names=CLASS_NAMES, class_means=np.zeros((2, 4), np.float32))


def test_class_weight_adds_the_class_head_terms_to_dis_and_dec() -> None:
    """class_weight w: Dis's objective gains w * CE(real), Dec's w * (CE(Dec(z)) + CE(Dec(z_p)))."""
    x, y = torch.rand(6, 1, 8, 8) * 2 - 1, onehot([0, 1, 2, 0, 1, 2])
    steps = {}
    for weight in (0.0, 2.0):
        torch.manual_seed(0)
        model = VAEGAN(TINY_COND, ObjectiveConfig(dis_passes="separate", class_weight=weight))
        args = (model.encoder, model.decoder, model.discriminator, x, model.objective)
        steps[weight] = compute_losses(*args, torch.Generator().manual_seed(1), y)
    off, on = steps[0.0], steps[2.0]
    assert off.dis is not None and on.dis is not None
    torch.testing.assert_close(on.dis - off.dis, 2.0 * on.logs["dis_class_ce"])
    torch.testing.assert_close(on.dec - off.dec, 2.0 * on.logs["dec_class_ce"])
    torch.testing.assert_close(on.enc, off.enc)
