"""ONNX export: the inference graphs equal the networks, the files verify themselves, the CLI publishes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from model_core import bundle, export
from model_core.config import PRESETS, ModelConfig, ObjectiveConfig
from model_core.vaegan import VAEGAN
from trainer import export as export_cli

TINY = ModelConfig(
    image_size=8,
    channels=1,
    latent_dim=4,
    enc_channels=(4, 6, 8),
    enc_fc=16,
    dec_fc_channels=8,
    dec_channels=(8, 6, 4),
    dis_stem=4,
    dis_channels=(6, 8, 8),
    dis_fc=16,
)
PREPROCESSING = {"channels": 1, "height": 8, "width": 8, "fit": (8, 8)}
TRAINING = {"epochs": 1, "steps": 3, "seed": 0, "mode": "vaegan", "gamma": 1e-6}


def trained_like(cfg: ModelConfig, seed: int = 0) -> VAEGAN:
    """A seeded model whose batch norms hold non-trivial statistics, so folding them is really tested."""
    torch.manual_seed(seed)
    model = VAEGAN(cfg)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
    return model.eval()


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
def test_inference_decoder_equals_decoder(variant: export.DecoderVariant, kernel: int) -> None:
    cfg = ModelConfig(**{**TINY.to_dict(), "kernel_size": kernel})
    model = trained_like(cfg)
    z = torch.randn(5, cfg.latent_dim)
    with torch.no_grad():
        torch.testing.assert_close(export.InferenceDecoder(model.decoder, variant)(z), model.decoder(z))


def test_inference_encoder_and_features_equal_networks() -> None:
    model = trained_like(PRESETS["mnist32"])
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        for got, want in zip(export.InferenceEncoder(model.encoder)(x), model.encoder(x), strict=True):
            torch.testing.assert_close(got, want)
        torch.testing.assert_close(export.InferenceFeatures(model.discriminator)(x), model.discriminator.features(x))


def test_round_trip_matches_pytorch(tmp_path: Path) -> None:
    model = trained_like(TINY)
    path = publish(model, tmp_path, metrics={"fd": 1.5})
    loaded = bundle.load_bundle(bundle.resolve(tmp_path, "tiny"))
    assert loaded.path == path
    m = loaded.manifest
    assert set(m.parity) == set(bundle.NETWORK_FILES)
    assert all(0 <= err <= export.PARITY_TOLERANCE for err in m.parity.values())
    assert m.export["decoder_variant"] == export.default_decoder_variant(TINY) == "convtranspose"
    assert m.export["ort_session"] == export.RECOMMENDED_SESSION
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
    class Shifted(export.InferenceDecoder):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return super().forward(z) + 1e-3

    monkeypatch.setattr(export, "InferenceDecoder", Shifted)
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


def checkpoint_dict(model: VAEGAN, preset: str = "tiny") -> dict[str, object]:
    """A checkpoint in the trainer's format 1 (trainer/checkpoint.py), optimizer states left out."""
    return {
        "format_version": 1,
        "step": 120,
        "epoch": 2,
        "preset": preset,
        "model_config": model.config.to_dict(),
        "objective": ObjectiveConfig(gamma=0.01).to_dict(),
        "train_config": {"epochs": 2, "batch_size": 16, "lr": 3e-4, "seed": 7},
        "dataset": "embedded-mnist",
        "preprocessing": PREPROCESSING,
        "models": {
            "encoder": model.encoder.state_dict(),
            "decoder": model.decoder.state_dict(),
            "discriminator": model.discriminator.state_dict(),
        },
        "eval": {"fd_cls": 123.5, "kl": 20.0},
        "optimizers": {},
    }


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
