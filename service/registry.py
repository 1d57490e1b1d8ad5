"""The served models: one ``ModelManager`` per bundle name, in the order VAEGAN_MODEL_NAME lists them.

Each model is verified, loaded, warmed up, batched and hot-reloaded on its own; one that fails is
reported (``reason``, logs, ``/models``) and absent while the others serve. The service is ready
when every configured model is (docs/api.md, "Several models"). Every route takes ``model=``, the
first model listed being the default; the ONNX Runtime calls of all models share one thread pool.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from model_core.bundle import list_bundles
from service.errors import NotReady, ServiceError
from service.lifecycle import ModelManager
from service.metrics import Metrics
from service.runtime import ModelRuntime
from service.settings import Settings

log = logging.getLogger(__name__)


class UnknownModel(ServiceError):
    status_code, code = 404, "unknown_model"


class ModelRegistry:
    """Every served model by name; readiness, shutdown and the default model for the routes."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings, self.metrics = settings, metrics
        self.managers: dict[str, ModelManager] = {}
        self.draining = False  # SIGTERM arrived: not ready, but in-flight work still completes
        self._problem = "starting: no model is loaded yet"
        self._executor: ThreadPoolExecutor | None = None

    def configured(self) -> list[str]:
        """The names VAEGAN_MODEL_NAME gives, or for '*' every bundle under VAEGAN_MODELS_DIR now."""
        return self.settings.model_name_list() or list_bundles(self.settings.models_dir)

    async def start(self) -> None:
        """Load every configured model at once; a failure leaves the others serving and the service unready."""
        self.draining = False
        self._executor = ThreadPoolExecutor(self.settings.inference_threads, thread_name_prefix="vaegan-ort")
        names = await asyncio.to_thread(self.configured)
        if not names:
            self._problem = f"no bundle under {self.settings.models_dir} (VAEGAN_MODEL_NAME=*)"
        self.managers = {
            name: ModelManager(name, self.settings, self.metrics, self._executor, self._show_readiness)
            for name in names
        }
        for name in names:
            self.metrics.declare_model(name)
        await asyncio.gather(*(manager.start() for manager in self.managers.values()))
        self._show_readiness()

    def begin_shutdown(self) -> None:
        """Turn /readyz to 503 now (called from the SIGTERM handler); serving goes on meanwhile."""
        if not self.draining:
            log.info("shutdown requested: /readyz now answers 503")
        self.draining = True
        for manager in self.managers.values():
            manager.begin_shutdown()
        self.metrics.ready.set(0)

    async def stop(self) -> None:
        """Finish every model's queued work, then release the threads."""
        self.begin_shutdown()
        await asyncio.gather(*(manager.stop() for manager in self.managers.values()))
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._executor = None

    @property
    def ready(self) -> bool:
        return bool(self.managers) and not self.draining and all(m.ready for m in self.managers.values())

    @property
    def reason(self) -> str:
        """Why the service is not ready ("" when it is), naming each model that is not."""
        if self.draining:
            return "shutting down: no new work should be sent here"
        if not self.managers:
            return self._problem
        return "; ".join(f"{name}: {m.reason}" for name, m in self.managers.items() if not m.ready)

    @property
    def default(self) -> str | None:
        """The model a route serves when no ``model=`` is given: the first one listed."""
        return next(iter(self.managers), None)

    @property
    def current(self) -> ModelRuntime | None:
        """The default model's runtime (None before it loads)."""
        default = self.default
        return None if default is None else self.managers[default].current

    def get(self, name: str | None) -> ModelManager:
        """The manager of ``name`` (None: the default); 404 naming the served ones for an unknown name."""
        name = name or self.default
        if name is None:
            raise NotReady(self.reason or "no model is configured", {"Retry-After": str(self.settings.retry_after_s)})
        manager = self.managers.get(name)
        if manager is None:
            known = ", ".join(self.managers) or "none"
            raise UnknownModel(f"no model {name!r} is served here; models: {known}")
        return manager

    def runtime(self, name: str | None) -> ModelRuntime:
        """The runtime serving ``name`` now; 503 with the reason while it has none."""
        manager = self.get(name)
        if manager.current is None:
            retry = str(self.settings.retry_after_s)
            raise NotReady(f"{manager.name}: {manager.reason or 'not loaded'}", {"Retry-After": retry})
        return manager.current

    def _show_readiness(self) -> None:
        self.metrics.ready.set(1 if self.ready else 0)
