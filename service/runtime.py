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
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from model_core.bundle import NETWORKS, Bundle, BundleError, Manifest, TensorSpec, load_bundle, network_file
from service.batching import DirectRunner, Inputs, MicroBatcher, Outputs, RunFn, Runner
from service.errors import InferenceTimeout
from service.imaging import check_preprocessing
from service.labels import Classes
from service.metrics import AUTOENCODER, Metrics
from service.priors import Priors
from service.sessions import ModelLoadError, create_session, requested_providers, session_options, session_settings
from service.settings import Settings

__all__ = ["ModelLoadError", "ModelRuntime", "Network"]

log = logging.getLogger(__name__)

MAIN_INPUT = {"encoder": "image", "decoder": "z", "discriminator_features": "image"}  # besides "label"


@dataclass
class Network:
    """One ONNX session of one model; ``run`` is blocking and thread-safe."""

    name: str  # "encoder", "decoder" or "discriminator_features"
    model: str  # the served model's name (metrics label)
    session: ort.InferenceSession
    metrics: Metrics
    inputs: dict[str, tuple[int, ...]]  # input name -> shape of one row (the manifest's signature)
    outputs: dict[str, tuple[int, ...]]

    @classmethod
    def of(cls, name: str, model: str, session: ort.InferenceSession, manifest: Manifest, metrics: Metrics) -> Network:
        signature = manifest.signatures[network_file(name)]

        def rows(specs: tuple[TensorSpec, ...]) -> dict[str, tuple[int, ...]]:
            return {spec.name: tuple(int(d or 0) for d in spec.shape[1:]) for spec in specs}

        return cls(name, model, session, metrics, rows(signature.inputs), rows(signature.outputs))

    def run(self, inputs: Inputs) -> list[np.ndarray]:
        feeds = {name: np.ascontiguousarray(inputs[name], dtype=np.float32) for name in self.inputs}
        start = time.perf_counter()
        outputs = self.session.run(None, feeds)
        self.metrics.inference_latency.labels(self.model, self.name).observe(time.perf_counter() - start)
        self.metrics.batch_size.labels(self.model, self.name).observe(len(next(iter(feeds.values()))))
        return outputs


def _warm_up(networks: dict[str, Network], max_batch: int) -> None:
    """Run every network at batch 1 and at the largest batch, so the first request pays nothing (not counted)."""
    for network in networks.values():
        for batch in sorted({1, max_batch}):
            feeds = {name: np.zeros((batch, *shape), np.float32) for name, shape in network.inputs.items()}
            network.session.run(None, feeds)


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
        model: str,
        bundle: Bundle,
        networks: dict[str, Network],
        provider: str,
        options: dict[str, Any],
        load_seconds: float,
        settings: Settings,
        executor: Executor,
        metrics: Metrics,
    ) -> None:
        self.model, self.bundle, self.manifest = model, bundle, bundle.manifest
        self.settings, self.metrics = settings, metrics
        self.timeouts = 0  # inference calls in a row that missed their deadline
        self.classes = Classes.of(bundle)
        self.priors = Priors.of(bundle, self.classes)
        self.bundle = bundle.model_copy(update={"data": {}})  # everything is loaded: drop the verified bytes
        self.networks, self.provider, self.session_options = networks, provider, options
        self.load_seconds = load_seconds
        self.loaded_at = time.time()
        runs = {name: network.run for name, network in networks.items()} | {AUTOENCODER: self._autoencode}
        self.runners: dict[str, Runner] = {
            name: _runner(model, name, run, settings, executor, metrics) for name, run in runs.items()
        }
        self._users = 0
        self._idle: asyncio.Event | None = None

    @classmethod
    def load(cls, path: Path, settings: Settings, executor: Executor, metrics: Metrics, model: str) -> ModelRuntime:
        """Verify, load and warm up the bundle at ``path``, served as ``model`` (blocking: call it in a thread)."""
        start = time.perf_counter()
        bundle = load_bundle(path)  # manifest, sha256 of every file, ONNX signatures
        _check_manifest(bundle.manifest)
        chosen = session_settings(bundle.manifest, settings)
        options = session_options(chosen)
        providers = requested_providers(settings.provider)
        networks = {}
        for name in NETWORKS:
            session = create_session(bundle.file(network_file(name)), providers, options, settings.provider, bundle)
            networks[name] = Network.of(name, model, session, bundle.manifest, metrics)
        _warm_up(networks, settings.max_batch if settings.batching_enabled else 1)
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
        return cls(model, bundle, networks, provider, chosen, seconds, settings, executor, metrics)

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
    async def run(self, network: str, inputs: Inputs) -> Outputs:
        """The network's outputs for ``inputs``; 504 past VAEGAN_INFERENCE_TIMEOUT_S (the call itself runs on)."""
        call = self.runners[network]({name: a.astype(np.float32, copy=False) for name, a in inputs.items()})
        deadline = self.settings.inference_timeout_s
        if not deadline:
            return await call
        try:
            outputs = await asyncio.wait_for(call, deadline)
        except TimeoutError:
            self.timeouts += 1
            self.metrics.inference_timeouts.labels(self.model, network).inc()
            raise InferenceTimeout(f"{network}: no answer within {deadline:g} s (VAEGAN_INFERENCE_TIMEOUT_S)") from None
        self.timeouts = 0
        return outputs

    @property
    def stalled(self) -> bool:
        """VAEGAN_STALLED_AFTER inference calls in a row timed out: the runtime is stuck (not ready)."""
        return self.timeouts >= self.settings.stalled_after

    async def _run_labelled(self, network: str, rows: np.ndarray, labels: np.ndarray | None) -> Outputs:
        """A network's main input, with the one-hot labels (N, K) of a conditional bundle."""
        if self.classes.conditional != (labels is not None):
            raise ValueError(f"{network}: labels go with a conditional bundle, and only with one")
        inputs = {MAIN_INPUT.get(network, "image"): rows}
        if labels is not None:
            inputs["label"] = labels
        return await self.run(network, inputs)

    async def encode(self, images: np.ndarray, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(N, C, H, W) in value_range [, one-hot labels (N, K)] -> mu, logvar, each (N, Z)."""
        mu, logvar = await self._run_labelled("encoder", images, labels)
        return mu, logvar

    async def reconstruct(
        self, images: np.ndarray, labels: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Dec(mu(x)): (N, C, H, W) [, one-hot labels (N, K)] -> mu, logvar (N, Z) and the images.

        Both networks run in one trip to a worker thread (``_autoencode``) instead of one each.
        """
        mu, logvar, decoded = await self._run_labelled(AUTOENCODER, images, labels)
        return mu, logvar, decoded

    def _autoencode(self, inputs: Inputs) -> list[np.ndarray]:
        """Encoder then decoder on the mean, blocking (a worker thread); the label goes to both."""
        mu, logvar = self.networks["encoder"].run(inputs)
        (decoded,) = self.networks["decoder"].run({"z": mu} | {k: v for k, v in inputs.items() if k == "label"})
        return [mu, logvar, decoded]

    async def decode(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """(N, Z) [, one-hot labels (N, K)] -> (N, C, H, W) in value_range."""
        (images,) = await self._run_labelled("decoder", z, labels)
        return images

    async def features(self, images: np.ndarray) -> np.ndarray:
        """(N, C, H, W) -> Dis_l(x) flattened, (N, F): the learned similarity space."""
        (features,) = await self.run("discriminator_features", {"image": images})
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


def _runner(model: str, name: str, run: RunFn, settings: Settings, executor: Executor, metrics: Metrics) -> Runner:
    """A micro-batcher for ``run`` (one network, or the autoencoder chain), or a direct runner when batching is off."""
    reject = metrics.rejected.labels(model, name).inc
    if not settings.batching_enabled:
        return DirectRunner(
            name, run, executor, max_queue=settings.max_queue, retry_after_s=settings.retry_after_s, on_reject=reject
        )
    return MicroBatcher(
        name,
        run,
        executor,
        max_batch=settings.max_batch,
        max_wait_s=settings.max_wait_ms / 1000.0,
        max_queue=settings.max_queue,
        workers=settings.batch_workers,
        retry_after_s=settings.retry_after_s,
        on_depth=metrics.queue_depth.labels(model, name).set,
        on_reject=reject,
    )
