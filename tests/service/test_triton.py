"""vaegan-triton: a tiny bundle as a Triton model repository. Every config.pbtxt must parse into
Triton's own ModelConfig protobuf (tritonclient's model_config_pb2), and its names, element types
and dims must be those of the ONNX file beside it, read with onnx (not with what wrote them)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import onnx
import pytest
import torch
from google.protobuf import text_format
from tiny_models import PREPROCESSING, TINY, trained_like
from tritonclient.grpc import model_config_pb2 as mc

from model_core.bundle import MANIFEST, NETWORK_FILES, read_manifest
from model_core.export import export_bundle
from service.triton.cli import main
from service.triton.config import PLATFORM, TritonOptions

ONNX_TYPES = {onnx.TensorProto.FLOAT: mc.TYPE_FP32, onnx.TensorProto.FLOAT16: mc.TYPE_FP16}


def export_tiny(models_dir: Path, version: str, latent_dim: int = TINY.latent_dim, **kwargs: object) -> Path:
    """A seeded tiny VAEGAN exported as ``models_dir/tiny/version``."""
    torch.manual_seed(0)
    return export_bundle(
        trained_like(replace(TINY, latent_dim=latent_dim)),
        models_dir,
        "tiny",
        preset="tiny",
        dataset="test",
        preprocessing=PREPROCESSING,
        training={"epochs": 1, "steps": 1, "seed": 0, "mode": "vaegan", "gamma": 1e-6},
        version=version,
        **kwargs,
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models/tiny with v1 (LATEST) and v2 (latent 6, published but not LATEST)."""
    root = tmp_path_factory.mktemp("models")
    export_tiny(root, "v1")
    export_tiny(root, "v2", latent_dim=6, update_latest=False)
    return root


def parse(config: Path) -> mc.ModelConfig:
    return text_format.Parse(config.read_text(), mc.ModelConfig())


def onnx_io(file: Path) -> tuple[list[tuple[str, int, list[int]]], list[tuple[str, int, list[int]]]]:
    """(name, Triton data type, dims) of each graph input and output, the batch axis as -1."""
    graph = onnx.load(str(file)).graph

    def describe(value: onnx.ValueInfoProto) -> tuple[str, int, list[int]]:
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        return value.name, ONNX_TYPES[tensor.elem_type], dims

    return [describe(v) for v in graph.input], [describe(v) for v in graph.output]


def test_writes_one_triton_model_per_onnx_file_of_latest(models: Path, tmp_path: Path) -> None:
    out = tmp_path / "repo"
    assert main([str(models / "tiny"), str(out)]) == 0
    manifest = read_manifest(models / "tiny" / "v1")  # what LATEST names
    assert sorted(p.name for p in out.iterdir()) == sorted(f"tiny_{f.removesuffix('.onnx')}" for f in NETWORK_FILES)
    for fname in NETWORK_FILES:
        folder = out / f"tiny_{fname.removesuffix('.onnx')}"
        config = parse(folder / "config.pbtxt")
        model_file = folder / "1" / "model.onnx"
        assert config.name == folder.name and config.platform == PLATFORM
        assert config.max_batch_size == TritonOptions().max_batch
        signature = manifest.signatures[fname]
        inputs, outputs = onnx_io(model_file)
        for declared, actual, specs in (
            (config.input, inputs, signature.inputs),
            (config.output, outputs, signature.outputs),
        ):
            assert [(t.name, t.data_type) for t in declared] == [(name, kind) for name, kind, _ in actual], fname
            for tensor, (_, _, dims), spec in zip(declared, actual, specs, strict=True):
                assert list(tensor.dims) == list(spec.shape[1:])  # the manifest's dims, batch axis left out
                assert dims[0] == -1 and len(dims) == len(tensor.dims) + 1, fname  # the file batches
                assert all(d in (-1, c) for d, c in zip(dims[1:], tensor.dims, strict=True)), fname
        params = {key: value.string_value for key, value in config.parameters.items()}
        assert params["vaegan_bundle_version"] == "v1" and params["vaegan_bundle_file"] == fname
        assert params["vaegan_sha256"] == manifest.files[fname] == hashlib.sha256(model_file.read_bytes()).hexdigest()
        copied = (folder / "1" / MANIFEST).read_bytes()
        assert copied == (models / "tiny" / "v1" / MANIFEST).read_bytes()
        assert params["vaegan_manifest_sha256"] == hashlib.sha256(copied).hexdigest()


def test_batching_and_instances(models: Path, tmp_path: Path) -> None:
    out = tmp_path / "repo"
    assert main([str(models / "tiny" / "v1"), str(out)]) == 0
    config = parse(out / "tiny_decoder" / "config.pbtxt")
    assert list(config.dynamic_batching.preferred_batch_size) == [16, 32]
    assert config.dynamic_batching.max_queue_delay_microseconds == 0
    assert [(g.kind, g.count) for g in config.instance_group] == [(mc.ModelInstanceGroup.KIND_GPU, 1)]
    params = {key: value.string_value for key, value in config.parameters.items()}
    assert params["intra_op_thread_count"] == params["inter_op_thread_count"] == "1"  # the bundle's recommendation

    cpu = tmp_path / "cpu"
    flags = [
        "--kind",
        "cpu",
        "--instances",
        "2",
        "--max-batch",
        "8",
        "--preferred-batch",
        "8",
        "--queue-delay-us",
        "500",
    ]
    assert main([str(models / "tiny" / "v1"), str(cpu), *flags]) == 0
    config = parse(cpu / "tiny_encoder" / "config.pbtxt")
    assert [(g.kind, g.count) for g in config.instance_group] == [(mc.ModelInstanceGroup.KIND_CPU, 2)]
    assert config.max_batch_size == 8 and list(config.dynamic_batching.preferred_batch_size) == [8]
    assert config.dynamic_batching.max_queue_delay_microseconds == 500


def test_a_later_version_joins_and_nothing_is_overwritten(
    models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "repo"
    assert main([str(models / "tiny"), str(out)]) == 0
    assert main([str(models / "tiny"), str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main([str(models / "tiny" / "v1"), str(out), "--triton-version", "3", "--kind", "cpu"]) == 0
    assert sorted(p.name for p in (out / "tiny_encoder").iterdir()) == ["1", "3", "config.pbtxt"]
    # v2 has a latent of 6: Triton serves every version of a model with one config, so it is refused.
    before = (out / "tiny_decoder" / "config.pbtxt").read_text()
    assert main([str(models / "tiny" / "v2"), str(out), "--triton-version", "4"]) == 2
    assert "other inputs or outputs" in capsys.readouterr().err
    assert (out / "tiny_decoder" / "config.pbtxt").read_text() == before
    assert not (out / "tiny_decoder" / "4").exists()


def test_refuses_a_tampered_bundle_and_bad_paths(
    models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "models" / "tiny" / "v1"
    bad.mkdir(parents=True)
    for file in (models / "tiny" / "v1").iterdir():
        (bad / file.name).write_bytes(file.read_bytes())
    (bad / "decoder.onnx").write_bytes((bad / "decoder.onnx").read_bytes() + b"\0")
    assert main([str(bad), str(tmp_path / "repo")]) == 2
    assert "sha256" in capsys.readouterr().err
    assert not (tmp_path / "repo").exists()  # nothing is written before everything is checked
    assert main([str(tmp_path / "nowhere"), str(tmp_path / "repo")]) == 2
    assert "neither a bundle version" in capsys.readouterr().err
    assert main([str(models / "tiny"), str(tmp_path / "repo"), "--preferred-batch", "64"]) == 2
    assert "preferred batch sizes" in capsys.readouterr().err
