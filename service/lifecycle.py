"""One served model's life: first load, readiness, hot reload and shutdown.

``ModelManager`` owns the current ``ModelRuntime`` of one bundle name (``service.registry`` holds
one manager per served model). It loads the version the settings name (LATEST by default) in a
thread, and only a bundle that verified, loaded and warmed up becomes current. With
``reload_interval_s`` > 0 it polls LATEST; a new version is loaded beside the old one and swapped
in with one assignment, so a request sees either runtime whole. The old runtime closes once the
requests that hold it are done. A version that fails is refused (logged, counted in
``vaegan_model_reloads_total{result="failure"}``) and not retried until LATEST changes, while the
old one keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

from model_core.bundle import BundleError, resolve
from service.metrics import Metrics
from service.runtime import ModelRuntime
from service.settings import Settings

log = logging.getLogger(__name__)


class ModelManager:
    """Holds the runtime that serves, and says why the service is not ready when it is not."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        metrics: Metrics,
        executor: Executor,
        on_swap: Callable[[], None] = lambda: None,
    ) -> None:
        self.name, self.settings, self.metrics = name, settings, metrics
        self.current: ModelRuntime | None = None
        self.draining = False  # SIGTERM arrived: not ready, but in-flight work still completes
        self._problem = "starting: the model is not loaded yet"
        self._refused: str | None = None  # the version that failed, not retried until LATEST moves
        self._executor = executor  # the registry's, shared by every model's ONNX Runtime calls
        self._on_swap = on_swap
        self._watcher: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def ready(self) -> bool:
        return self.current is not None and not self.draining and not self.current.stalled

    @property
    def reason(self) -> str:
        """Why the service is not ready ("" when it is)."""
        if self.draining:
            return "shutting down: no new work should be sent here"
        if self.current is not None and self.current.stalled:
            return f"inference is stalled: {self.current.timeouts} calls in a row missed VAEGAN_INFERENCE_TIMEOUT_S"
        return "" if self.current is not None else self._problem

    async def start(self) -> None:
        """Load the configured model (failure leaves the service up but not ready), then watch."""
        self.current, self.draining, self._refused = None, False, None  # a lifespan may run again
        await self.refresh()
        if self.settings.reload_interval_s > 0:
            self._watcher = asyncio.create_task(self._watch(), name="vaegan-reload")

    def begin_shutdown(self) -> None:
        """Not ready from now on (the registry's SIGTERM handling); serving goes on meanwhile."""
        self.draining = True

    async def stop(self) -> None:
        """Stop watching, finish the queued work of every runtime of this model."""
        self.begin_shutdown()
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        if self.current is not None:
            await self.current.close()
        await asyncio.gather(*self._closing, return_exceptions=True)
        self.current, self._watcher = None, None

    def _resolve(self) -> Path:
        return resolve(self.settings.models_dir, self.name, self.settings.model_version)

    async def refresh(self) -> bool:
        """Load the version LATEST (or the setting) names if it is new; True when one was swapped in."""
        try:
            path = await asyncio.to_thread(self._resolve)
        except BundleError as exc:
            self._note_problem(f"model not found: {exc}")
            return False
        if self.current is not None and path.name == self.current.version:
            return False
        if path.name == self._refused:
            return False
        first = self.current is None
        try:
            runtime = await asyncio.to_thread(
                ModelRuntime.load, path, self.settings, self._executor, self.metrics, self.name
            )
        except Exception as exc:  # BundleError, ModelLoadError, onnxruntime's own errors: refuse, keep serving
            self._refused = path.name
            detail = str(exc) if isinstance(exc, BundleError) else f"{type(exc).__name__}: {exc}"
            log.error("refusing model %s: %s", path, detail)
            if not first:
                self.metrics.reloads.labels(self.name, "failure").inc()
            self._note_problem(f"model not loaded: {detail}")
            return False
        self._swap(runtime, first)
        return True

    def _swap(self, runtime: ModelRuntime, first: bool) -> None:
        runtime.start()
        old, self.current = self.current, runtime  # one assignment: a request sees one runtime whole
        self._refused = None
        self.metrics.set_model(self.name, runtime.version, runtime.provider, runtime.load_seconds)
        self._on_swap()
        if not first:
            self.metrics.reloads.labels(self.name, "success").inc()
        if old is not None:
            log.info("swapped model %s: %s -> %s", self.name, old.version, runtime.version)
            task = asyncio.create_task(old.close(), name=f"vaegan-close-{old.version}")
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _note_problem(self, problem: str) -> None:
        if problem != self._problem and self.current is not None:
            log.warning("%s (still serving %s/%s)", problem, self.name, self.current.version)
        self._problem = problem

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reload_interval_s)
            try:
                await self.refresh()
            except Exception:  # the watcher must survive anything a bad publish throws at it
                log.exception("model reload check failed")
