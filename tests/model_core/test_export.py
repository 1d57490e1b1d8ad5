"""ONNX export: the inference graphs equal the networks, the files verify themselves, the CLI publishes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from tiny_models import PREPROCESSING, TINY, trained_like

from model_core import bundle, export, inference
from model_core.config import PRESETS, ModelConfig
from model_core.vaegan import VAEGAN

TRAINING = {"epochs": 1, "steps": 3, "seed": 0, "mode": "vaegan", "gamma": 1e-6}


def publish(model: VAEGAN, models_dir: Path, **kwargs: object) -> Path:
    return export.export_bundle(
        model,
        models_dir,
        "tiny",
        preset="tiny",
        dataset="test",
        preprocessing=PREPROCESSING,
        training=TRAINING,
        **kwargs,
    )


@pytest.mark.parametrize("variant", ["phase4", "phase1", "convtranspose"])
@pytest.mark.parametrize("kernel", [5, 3])
def test_inference_decoder_equals_decoder(variant: inference.DecoderVariant, kernel: int) -> None:
    cfg = ModelConfig(**{**TINY.to_dict(), "kernel_size": kernel})
    model = trained_like(cfg)
    z = torch.randn(5, cfg.latent_dim)
    with torch.no_grad():
        torch.testing.assert_close(inference.InferenceDecoder(model.decoder, variant)(z), model.decoder(z))


def test_inference_encoder_and_features_equal_networks() -> None:
    model = trained_like(PRESETS["mnist32"])
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        for got, want in zip(inference.InferenceEncoder(model.encoder)(x), model.encoder(x), strict=True):
            torch.testing.assert_close(got, want)
        torch.testing.assert_close(inference.InferenceFeatures(model.discriminator)(x), model.discriminator.features(x))


def test_round_trip_matches_pytorch(tmp_path: Path) -> None:
    model = trained_like(TINY)
    path = publish(model, tmp_path, metrics={"fd": 1.5})
    loaded = bundle.load_bundle(bundle.resolve(tmp_path, "tiny"))
    assert loaded.path == path
    m = loaded.manifest
    assert set(m.parity) == set(bundle.NETWORK_FILES)
    assert all(0 <= err <= export.PARITY_TOLERANCE for err in m.parity.values())
    assert m.export["decoder_variant"] == inference.default_decoder_variant(TINY) == "convtranspose"
    assert m.export["ort_session"] == bundle.OrtSessionOptions().model_dump()
    assert (m.latent_dim, m.image.channels, m.metrics) == (4, 1, {"fd": 1.5})

    x, z = torch.rand(3, 1, 8, 8) * 2 - 1, torch.randn(3, 4)  # batch 3: not one the export checked
    with torch.no_grad():
        want = {
            "encoder.onnx": [t.numpy() for t in model.encoder(x)],
            "decoder.onnx": [model.decoder(z).numpy()],
            "discriminator_features.onnx": [model.discriminator.features(x).numpy()],
        }
    for fname, feed in (("encoder.onnx", x), ("decoder.onnx", z), ("discriminator_features.onnx", x)):
        session = ort.InferenceSession(str(loaded.file(fname)), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: feed.numpy()})
        for g, w in zip(got, want[fname], strict=True):
            np.testing.assert_allclose(g, w, atol=1e-4, rtol=0)


def test_parity_failure_names_the_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Shifted(inference.InferenceDecoder):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return super().forward(z) + 1e-3

    monkeypatch.setattr(inference, "InferenceDecoder", Shifted)
    with pytest.raises(export.ExportError, match=r"^decoder: onnxruntime differs from PyTorch by 0\.001"):
        publish(trained_like(TINY), tmp_path)
    assert bundle.list_versions(tmp_path, "tiny") == []


def test_heldout_images_are_used_and_checked(tmp_path: Path) -> None:
    heldout = np.random.default_rng(0).uniform(-1, 1, (9, 1, 8, 8)).astype(np.float32)
    path = publish(trained_like(TINY), tmp_path, heldout=heldout, version="v1")
    assert bundle.read_manifest(path).export["parity_inputs"] == "held-out images"
    with pytest.raises(export.ExportError, match="held-out images of shape"):
        publish(trained_like(TINY), tmp_path, heldout=heldout[:, :, :4], version="v2")


def test_existing_version_is_never_overwritten(tmp_path: Path) -> None:
    path = publish(trained_like(TINY, seed=0), tmp_path, version="v1")
    before = (path / "decoder.onnx").read_bytes()
    with pytest.raises(bundle.BundleError, match="tiny/v1: version already exists"):
        publish(trained_like(TINY, seed=1), tmp_path, version="v1")
    assert (path / "decoder.onnx").read_bytes() == before
