"""Runtime pieces: provider choice and the CUDA fallback check, session options and their precedence."""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort
import pytest

from model_core.bundle import Manifest, OrtSessionOptions, read_manifest
from service import sessions as runtime
from service.settings import Settings

CPU_ONLY = "CUDAExecutionProvider" not in ort.get_available_providers()


def test_cpu_provider_and_auto() -> None:
    assert runtime.requested_providers("cpu") == ["CPUExecutionProvider"]
    assert runtime.requested_providers("auto")[-1] == "CPUExecutionProvider"


@pytest.mark.skipif(not CPU_ONLY, reason="needs an onnxruntime build without CUDA")
def test_cuda_requested_without_a_cuda_build_is_a_start_up_error() -> None:
    with pytest.raises(runtime.ModelLoadError, match="serve-gpu"):
        runtime.requested_providers("cuda")


@pytest.mark.skipif(not CPU_ONLY, reason="needs an onnxruntime build without CUDA")
@pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider'")
def test_silent_cpu_fallback_is_caught(bundles: Path, caplog: pytest.LogCaptureFixture) -> None:
    """onnxruntime quietly runs on CPU when CUDA cannot load: an error under cuda, a warning under auto."""
    path = bundles / "mnist" / "v1" / "decoder.onnx"
    options = runtime.session_options(OrtSessionOptions().model_dump())
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(runtime.ModelLoadError, match=r"fell back to CPU for decoder\.onnx"):
        runtime.create_session(path, providers, options, "cuda")
    with caplog.at_level(logging.WARNING):
        session = runtime.create_session(path, providers, options, "auto")
    assert session.get_providers() == ["CPUExecutionProvider"]
    assert any("CUDA provider unavailable" in r.getMessage() for r in caplog.records)


def test_session_option_precedence(bundles: Path) -> None:
    manifest = read_manifest(bundles / "mnist" / "v1")
    recommended = manifest.export.get("ort_session", {})
    chosen = runtime.session_settings(manifest, Settings())
    assert chosen["allow_spinning"] is False and chosen["execution_mode"] == "ORT_SEQUENTIAL"
    expected = recommended.get("intra_op_num_threads", OrtSessionOptions().intra_op_num_threads)
    assert chosen["intra_op_num_threads"] == expected  # the bundle's recommendation over our default
    assert runtime.session_settings(manifest, Settings(intra_op_threads=3))["intra_op_num_threads"] == 3
    with pytest.raises(runtime.ModelLoadError):
        runtime.session_options({**chosen, "graph_optimization_level": "ORT_TURBO"})


def test_session_options_parse_the_manifest_through_the_typed_model(bundles: Path) -> None:
    """Defaults fill what the bundle leaves out, unknown keys are ignored, a bad value refuses the bundle."""
    manifest = read_manifest(bundles / "mnist" / "v1")

    def with_ort_session(value: object) -> Manifest:
        return manifest.model_copy(update={"export": {**manifest.export, "ort_session": value}})

    defaults = OrtSessionOptions().model_dump()
    assert runtime.session_settings(with_ort_session(None), Settings()) == defaults
    newer = {"intra_op_num_threads": 2, "enable_mem_pattern": False}  # a key this build does not know
    assert runtime.session_settings(with_ort_session(newer), Settings()) == {**defaults, "intra_op_num_threads": 2}
    with pytest.raises(runtime.ModelLoadError, match="intra_op_num_threads"):
        runtime.session_settings(with_ort_session({"intra_op_num_threads": -1}), Settings())
