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

from model_core.bundle import Bundle, BundleError, Manifest, load_bundle
from service.batching import DirectRunner, MicroBatcher, Outputs, RunFn, Runner
from service.classes import Classes
from service.errors import InferenceTimeout
from service.imaging import check_preprocessing
from service.metrics import AUTOENCODER, Metrics
from service.priors import Priors
from service.sessions import ModelLoadError, create_session, requested_providers, session_options, session_settings
from service.settings import Settings

__all__ = ["ModelLoadError", "ModelRuntime", "Network"]

log = logging.getLogger(__name__)

INPUTS = {"encoder": "image", "decoder": "z", "discriminator_features": "image"}


@dataclass
class Network:
    """One ONNX session and its input; ``run`` is blocking and thread-safe.

    A conditional network's rows carry their one-hot label in the last ``label_width`` columns
    (the rest flattened), so that the micro-batcher still stacks one array per request; ``run``
    splits them into the "label" input and the main input of shape ``row_shape``.
    """

    name: str
    session: ort.InferenceSession
    input_name: str
    metrics: Metrics
    row_shape: tuple[int, ...] = ()
    label_width: int = 0

    def feeds(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        if not self.label_width:
            return {self.input_name: rows}
        main = rows[:, : -self.label_width].reshape(len(rows), *self.row_shape)
        return {
            self.input_name: np.ascontiguousarray(main),
            "label": np.ascontiguousarray(rows[:, -self.label_width :]),
        }

    def run(self, rows: np.ndarray) -> list[np.ndarray]:
        start = time.perf_counter()
        outputs = self.session.run(None, self.feeds(rows))
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
        width = int(np.prod(shapes[name])) + network.label_width if network.label_width else None
        for batch in sorted({1, max_batch}):
            rows = np.zeros((batch, width) if width else (batch, *shapes[name]), np.float32)
            network.session.run(None, network.feeds(rows))


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
            name: _runner(name, run, settings, executor, metrics) for name, run in runs.items()
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
        manifest, k = bundle.manifest, bundle.manifest.num_classes
        image = (manifest.image.channels, manifest.image.height, manifest.image.width)
        row_shapes = {"encoder": image, "decoder": (manifest.latent_dim,), "discriminator_features": image}
        for name, input_name in INPUTS.items():
            session = create_session(bundle.file(f"{name}.onnx"), providers, options, settings.provider, bundle)
            label_width = k if name in ("encoder", "decoder") else 0
            networks[name] = Network(name, session, input_name, metrics, row_shapes[name], label_width)
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
        """The network's outputs for ``rows``; 504 past VAEGAN_INFERENCE_TIMEOUT_S (the call itself runs on)."""
        call = self.runners[network](rows.astype(np.float32, copy=False))
        deadline = self.settings.inference_timeout_s
        if not deadline:
            return await call
        try:
            outputs = await asyncio.wait_for(call, deadline)
        except TimeoutError:
            self.timeouts += 1
            self.metrics.inference_timeouts.labels(network).inc()
            raise InferenceTimeout(f"{network}: no answer within {deadline:g} s (VAEGAN_INFERENCE_TIMEOUT_S)") from None
        self.timeouts = 0
        return outputs

    @property
    def stalled(self) -> bool:
        """VAEGAN_STALLED_AFTER inference calls in a row timed out: the runtime is stuck (not ready)."""
        return self.timeouts >= self.settings.stalled_after

    async def _run_labelled(self, network: str, rows: np.ndarray, labels: np.ndarray | None) -> Outputs:
        """A conditional network's rows with their one-hot labels (N, K) appended (see ``Network``)."""
        if self.classes.conditional != (labels is not None):
            raise ValueError(f"{network}: labels go with a conditional bundle, and only with one")
        if labels is not None:
            rows = np.concatenate([rows.reshape(len(rows), -1), labels.astype(np.float32)], axis=1)
        return await self._run(network, rows)

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

    def _autoencode(self, rows: np.ndarray) -> list[np.ndarray]:
        """Encoder then decoder on the mean, blocking (a worker thread); labels stay in the last columns."""
        mu, logvar = self.networks["encoder"].run(rows)
        width = self.networks["decoder"].label_width
        z = np.concatenate([mu, rows[:, -width:]], axis=1) if width else mu  # (N, Z [+ K])
        (decoded,) = self.networks["decoder"].run(z)
        return [mu, logvar, decoded]

    async def decode(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """(N, Z) [, one-hot labels (N, K)] -> (N, C, H, W) in value_range."""
        (images,) = await self._run_labelled("decoder", z, labels)
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


def _runner(name: str, run: RunFn, settings: Settings, executor: Executor, metrics: Metrics) -> Runner:
    """A micro-batcher for ``run`` (one network, or the autoencoder chain), or a direct runner when batching is off."""
    reject = metrics.rejected.labels(name).inc
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
        on_depth=metrics.queue_depth.labels(name).set,
        on_reject=reject,
    )
