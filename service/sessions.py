"""ONNX Runtime sessions: the options (bundle's recommendation, then settings) and the providers.

Every session of a bundle is made here; VAEGAN_PROVIDER=cuda refuses a silent CPU fallback.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnxruntime as ort
from pydantic import ValidationError

from model_core.bundle import Bundle, Manifest, OrtSessionOptions, first_error
from service.settings import Settings

log = logging.getLogger(__name__)

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"


class ModelLoadError(Exception):
    """A bundle cannot be served: bad files, bad manifest, or the requested provider is missing."""


def _parse_session(label: str, values: Mapping[str, Any]) -> OrtSessionOptions:
    """``OrtSessionOptions`` from a dict (unknown keys ignored); a bad value is a ModelLoadError."""
    try:
        return OrtSessionOptions.model_validate(values)
    except ValidationError as exc:
        where, message = first_error(exc)
        raise ModelLoadError(f"{label}: onnxruntime session option {where!r}: {message}") from None


def session_settings(manifest: Manifest, settings: Settings) -> dict[str, Any]:
    """Effective session options: OrtSessionOptions' defaults < the bundle's recommendation < VAEGAN_ settings."""
    recommended = manifest.export.get("ort_session")
    label = f"bundle {manifest.name}/{manifest.version} export.ort_session"
    chosen = _parse_session(label, recommended if isinstance(recommended, dict) else {})
    if settings.intra_op_threads:
        chosen = chosen.model_copy(update={"intra_op_num_threads": settings.intra_op_threads})
    return chosen.model_dump()


def session_options(chosen: Mapping[str, Any]) -> ort.SessionOptions:
    """``ort.SessionOptions`` from the dict ``session_settings`` returns."""
    parsed = _parse_session("session options", chosen)
    try:
        return parsed.to_ort()
    except AttributeError as exc:
        raise ModelLoadError(f"unknown onnxruntime session option value ({exc})") from None


def requested_providers(choice: str) -> list[str]:
    """Providers to ask ONNX Runtime for under VAEGAN_PROVIDER=``choice``."""
    available = ort.get_available_providers()
    if choice == "cpu":
        return [CPU]
    if choice == "cuda" and CUDA not in available:
        raise ModelLoadError(
            "VAEGAN_PROVIDER=cuda, but this onnxruntime build has no CUDA provider "
            f"(available: {', '.join(available)}); install vaegan[serve-gpu] (onnxruntime-gpu)"
        )
    return [CUDA, CPU] if CUDA in available else [CPU]


def missing_cuda_libraries() -> list[str]:
    """The CUDA libraries onnxruntime-gpu needs that the dynamic loader cannot find."""
    from onnxruntime.capi import build_and_package_info

    cuda_major = str(getattr(build_and_package_info, "cuda_version", "12") or "12").split(".")[0]
    cudnn_major = str(getattr(build_and_package_info, "cudnn_version", "9") or "9").split(".")[0]
    names = [f"lib{lib}.so.{cuda_major}" for lib in ("cudart", "cublas", "cublasLt")]
    names += ["libcufft.so." + ("11" if cuda_major == "12" else "12"), f"libcudnn.so.{cudnn_major}"]
    missing = []
    for name in names:
        try:
            ctypes.CDLL(name)
        except OSError:
            missing.append(name)
    return missing


def create_session(
    path: Path, providers: list[str], options: ort.SessionOptions, choice: str, bundle: Bundle | None = None
) -> ort.InferenceSession:
    """One session, from the bundle's verified bytes of ``path`` when given; a silent CPU fallback is an
    error under VAEGAN_PROVIDER=cuda."""
    model = bundle.read(path.name) if bundle is not None else str(path)
    session = ort.InferenceSession(model, sess_options=options, providers=providers)
    if CUDA in providers and CUDA not in session.get_providers():
        missing = missing_cuda_libraries()
        why = f"missing {', '.join(missing)}" if missing else "see onnxruntime's log above"
        if choice == "cuda":
            raise ModelLoadError(f"VAEGAN_PROVIDER=cuda, but onnxruntime fell back to CPU for {path.name} ({why})")
        log.warning("CUDA provider unavailable for %s (%s); running on CPU", path.name, why)
    return session
