"""ONNX Runtime for one bundle: three sessions, one runner per network, warmed up before use.

``ModelRuntime.load`` is blocking (verify checksums and signatures, create sessions, warm up) and
runs in a thread; the async methods (``encode``, ``decode``, ``features``) go through each
network's micro-batcher, whose ONNX Runtime calls run in a shared thread pool, never on the event
loop. ``InferenceSession.run`` is thread-safe, so one session per network serves every request.
A runtime counts its users so that, after a hot swap, it closes only once the requests that
started on it have finished.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import time
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from pydantic import ValidationError

from model_core.bundle import Bundle, BundleError, Manifest, OrtSessionOptions, first_error, load_bundle
from service.batching import DirectRunner, MicroBatcher, Outputs, Runner
from service.imaging import check_preprocessing
from service.metrics import Metrics
from service.settings import Settings

log = logging.getLogger(__name__)

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"
INPUTS = {"encoder": "image", "decoder": "z", "discriminator_features": "image"}


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


def create_session(path: Path, providers: list[str], options: ort.SessionOptions, choice: str) -> ort.InferenceSession:
    """One session; a silent CPU fallback is an error under VAEGAN_PROVIDER=cuda."""
    session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    if CUDA in providers and CUDA not in session.get_providers():
        missing = missing_cuda_libraries()
        why = f"missing {', '.join(missing)}" if missing else "see onnxruntime's log above"
        if choice == "cuda":
            raise ModelLoadError(f"VAEGAN_PROVIDER=cuda, but onnxruntime fell back to CPU for {path.name} ({why})")
        log.warning("CUDA provider unavailable for %s (%s); running on CPU", path.name, why)
    return session


@dataclass
class Network:
    """One ONNX session and its single input; ``run`` is blocking and thread-safe."""

    name: str
    session: ort.InferenceSession
    input_name: str
    metrics: Metrics

    def run(self, rows: np.ndarray) -> list[np.ndarray]:
        start = time.perf_counter()
        outputs = self.session.run(None, {self.input_name: np.ascontiguousarray(rows, dtype=np.float32)})
        self.metrics.inference_latency.labels(self.name).observe(time.perf_counter() - start)
        self.metrics.batch_size.labels(self.name).observe(len(rows))
        return outputs


def _warm_up(networks: dict[str, Network], manifest: Manifest, max_batch: int) -> None:
    """Run every network at batch 1 and at the largest batch, so the first request pays nothing."""
    spec = manifest.image
    shapes = {
        "encoder": (spec.channels, spec.height, spec.width),
        "decoder": (manifest.latent_dim,),
        "discriminator_features": (spec.channels, spec.height, spec.width),
    }
    for name, network in networks.items():
        for batch in sorted({1, max_batch}):
            network.session.run(None, {network.input_name: np.zeros((batch, *shapes[name]), np.float32)})


def _check_manifest(manifest: Manifest) -> None:
    """The preprocessing must produce exactly the encoder's input."""
    pre, image = manifest.preprocessing, manifest.image
    label = f"bundle {manifest.name}/{manifest.version}"
    if (pre.channels, pre.height, pre.width) != (image.channels, image.height, image.width):
        shape = f"{pre.channels}x{pre.height}x{pre.width}"
        raise BundleError(f"{label}: preprocessing output {shape} differs from the image spec")
    problem = check_preprocessing(pre)
    if problem:
        raise BundleError(f"{label}: {problem}")


class ModelRuntime:
    """A verified, loaded and warmed-up bundle, with a batcher (or direct runner) per network."""

    def __init__(
        self,
        bundle: Bundle,
        networks: dict[str, Network],
        provider: str,
        options: dict[str, Any],
        load_seconds: float,
        settings: Settings,
        executor: Executor,
        metrics: Metrics,
    ) -> None:
        self.bundle, self.manifest = bundle, bundle.manifest
        self.networks, self.provider, self.session_options = networks, provider, options
        self.load_seconds = load_seconds
        self.loaded_at = time.time()
        self.runners: dict[str, Runner] = {
            name: _runner(network, settings, executor, metrics) for name, network in networks.items()
        }
        self._users = 0
        self._idle: asyncio.Event | None = None

    @classmethod
    def load(cls, path: Path, settings: Settings, executor: Executor, metrics: Metrics) -> ModelRuntime:
        """Verify, load and warm up the bundle at ``path`` (blocking: call it in a thread)."""
        start = time.perf_counter()
        bundle = load_bundle(path)  # manifest, sha256 of every file, ONNX signatures
        _check_manifest(bundle.manifest)
        chosen = session_settings(bundle.manifest, settings)
        options = session_options(chosen)
        providers = requested_providers(settings.provider)
        networks = {}
        for name, input_name in INPUTS.items():
            session = create_session(bundle.file(f"{name}.onnx"), providers, options, settings.provider)
            networks[name] = Network(name, session, input_name, metrics)
        _warm_up(networks, bundle.manifest, settings.max_batch if settings.batching_enabled else 1)
        provider = networks["decoder"].session.get_providers()[0]
        seconds = time.perf_counter() - start
        log.info(
            "loaded %s/%s on %s in %.2f s (session options %s)",
            bundle.manifest.name,
            bundle.manifest.version,
            provider,
            seconds,
            chosen,
        )
        return cls(bundle, networks, provider, chosen, seconds, settings, executor, metrics)

    @property
    def version(self) -> str:
        return self.manifest.version

    def start(self) -> None:
        """Start the runners' worker tasks (on the serving event loop)."""
        self._idle = asyncio.Event()
        self._idle.set()
        for runner in self.runners.values():
            runner.start()

    # Requests hold the runtime they started on until they finish (hot swap safety).
    def acquire(self) -> None:
        self._users += 1
        if self._idle is not None:
            self._idle.clear()

    def release(self) -> None:
        self._users -= 1
        if self._users == 0 and self._idle is not None:
            self._idle.set()

    async def close(self) -> None:
        """Wait for the requests using this runtime, finish the queued rows, stop the workers."""
        if self._idle is not None:
            await self._idle.wait()
        for runner in self.runners.values():
            await runner.close()

    # Inference (async; every call is batched with concurrent ones).
    async def _run(self, network: str, rows: np.ndarray) -> Outputs:
        return await self.runners[network](rows.astype(np.float32, copy=False))

    async def encode(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, C, H, W) in value_range -> mu, logvar, each (N, Z)."""
        mu, logvar = await self._run("encoder", images)
        return mu, logvar

    async def decode(self, z: np.ndarray) -> np.ndarray:
        """(N, Z) -> (N, C, H, W) in value_range."""
        (images,) = await self._run("decoder", z)
        return images

    async def features(self, images: np.ndarray) -> np.ndarray:
        """(N, C, H, W) -> Dis_l(x) flattened, (N, F): the learned similarity space."""
        (features,) = await self._run("discriminator_features", images)
        return features

    def describe(self) -> dict[str, Any]:
        """What /model shows besides the manifest."""
        return {
            "provider": self.provider,
            "session_options": self.session_options,
            "path": str(self.bundle.path),
            "loaded_at": self.loaded_at,
            "load_seconds": round(self.load_seconds, 3),
        }


def _runner(network: Network, settings: Settings, executor: Executor, metrics: Metrics) -> Runner:
    """A micro-batcher for ``network``, or a direct runner when batching is off."""
    reject = metrics.rejected.labels(network.name).inc
    if not settings.batching_enabled:
        return DirectRunner(
            network.name,
            network.run,
            executor,
            max_queue=settings.max_queue,
            retry_after_s=settings.retry_after_s,
            on_reject=reject,
        )
    return MicroBatcher(
        network.name,
        network.run,
        executor,
        max_batch=settings.max_batch,
        max_wait_s=settings.max_wait_ms / 1000.0,
        max_queue=settings.max_queue,
        workers=settings.batch_workers,
        retry_after_s=settings.retry_after_s,
        on_depth=metrics.queue_depth.labels(network.name).set,
        on_reject=reject,
    )
