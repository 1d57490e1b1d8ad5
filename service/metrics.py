"""All Prometheus metrics of the service, declared in one place (prefix ``vaegan_``).

Each app owns a ``CollectorRegistry`` (no import-time globals), so several apps can live in one
process (tests) without clashing. Labels are bounded: routes are templates (``/sample``), never
raw paths; networks are the three file stems (queues also "autoencoder"); statuses are HTTP codes.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from model_core.bundle import NETWORKS

AUTOENCODER = "autoencoder"  # /reconstruct's queue: encoder then decoder in one batch (service/runtime.py)
UNMATCHED_ROUTE = "<unmatched>"  # one label value for every path no route matched (404s)


def route_label(scope: MutableMapping[str, Any]) -> str:
    """The matched route's template (``/sample``), never the raw path: bounded label values."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


# Seconds, from a sub-millisecond ONNX Runtime call to a slow upload.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


_TYPICALITY_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)


def _batch_buckets(max_batch: int) -> tuple[float, ...]:
    """Powers of two up to ``max_batch`` (and ``max_batch`` itself): 1, 2, 4, ..., max."""
    edges, edge = [], 1
    while edge < max_batch:
        edges.append(float(edge))
        edge *= 2
    edges.append(float(max_batch))
    return tuple(edges)


class Metrics:
    """The service's metrics, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None, max_batch: int = 32) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # HTTP.
        self.requests = Counter("vaegan_requests", "HTTP requests answered", ("route", "method", "status"), registry=r)
        self.request_latency = Histogram(
            "vaegan_request_duration_seconds",
            "Time from request start to the end of the response",
            ("route", "method"),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("vaegan_requests_in_flight", "HTTP requests being handled", registry=r)
        self.images = Counter("vaegan_images_produced", "Images returned to clients", ("route",), registry=r)
        # Inference.
        self.inference_latency = Histogram(
            "vaegan_inference_duration_seconds",
            "ONNX Runtime run time per batch",
            ("model", "network"),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "vaegan_batch_size",
            "Rows per ONNX Runtime call",
            ("model", "network"),
            buckets=_batch_buckets(max_batch),
            registry=r,
        )
        self.queue_depth = Gauge("vaegan_queue_depth", "Rows waiting for a batch", ("model", "network"), registry=r)
        self.rejected = Counter(
            "vaegan_queue_rejections", "Requests refused because the queue was full", ("model", "network"), registry=r
        )
        self.inference_timeouts = Counter(
            "vaegan_inference_timeouts", "Inference calls that missed VAEGAN_INFERENCE_TIMEOUT_S (504)",
            ("model", "network"),
            registry=r,
        )  # fmt: skip
        self._declare_model_and_inputs(r)
        self._info: dict[str, tuple[str, str]] = {}  # model -> (version, provider) shown in model_info

    def declare_model(self, model: str) -> None:
        """The series of a configured model, present from the first scrape, before any traffic."""
        for network in NETWORKS:
            self.queue_depth.labels(model, network)
            self.batch_size.labels(model, network)
            self.inference_latency.labels(model, network)
            self.inference_timeouts.labels(model, network)
        self.queue_depth.labels(model, AUTOENCODER)
        for result in ("success", "failure"):
            self.reloads.labels(model, result)

    def _declare_model_and_inputs(self, r: CollectorRegistry) -> None:
        """The serving model's metrics, and the drift signal of its inputs."""
        # Model.
        self.model_info = Gauge(
            "vaegan_model_info", "The version each model serves (value 1)", ("model", "version", "provider"), registry=r
        )
        self.model_load = Gauge(
            "vaegan_model_load_seconds", "Time to verify, load and warm up the serving version", ("model",), registry=r
        )
        self.reloads = Counter(
            "vaegan_model_reloads", "Model loads after start-up, by result", ("model", "result"), registry=r
        )
        self.ready = Gauge(
            "vaegan_ready", "1 when every configured model is loaded and the service is not shutting down", registry=r
        )
        # Inputs: a drift signal (docs/api.md, "Drift"): the typicality of each encoded image's posterior
        # under the fitted prior, the share of held-out training images whose posteriors are less likely.
        # Its buckets mean the same for every model; inputs unlike the training data pile up near 0.
        self.input_typicality = Histogram(
            "vaegan_input_typicality",
            "Share of held-out training images whose posterior is less likely than the input's under the fitted prior",
            ("model",),
            buckets=_TYPICALITY_BUCKETS,
            registry=r,
        )

    def set_model(self, model: str, version: str, provider: str, load_seconds: float) -> None:
        """Show exactly one serving version of ``model`` in ``vaegan_model_info``."""
        shown = self._info.pop(model, None)
        if shown is not None:
            self.model_info.remove(model, *shown)
        self._info[model] = (version, provider)
        self.model_info.labels(model, version, provider).set(1)
        self.model_load.labels(model).set(load_seconds)
