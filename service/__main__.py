"""``vaegan-serve``: uvicorn with graceful shutdown.

On SIGTERM (or Ctrl-C) /readyz turns 503 at once; after ``VAEGAN_SHUTDOWN_DELAY_S`` (time for a
load balancer to notice) uvicorn stops accepting connections, lets in-flight requests finish for
up to ``VAEGAN_SHUTDOWN_GRACE_S``, then the lifespan drains the batchers and the process exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import math
import signal
import sys
from collections.abc import Sequence
from types import FrameType

import uvicorn
from prometheus_client import start_http_server
from pydantic import ValidationError

from service.app import create_app
from service.registry import ModelRegistry
from service.requestlog import configure_logging
from service.settings import Settings

log = logging.getLogger("service")


class Server(uvicorn.Server):
    """uvicorn's server, telling the app about SIGTERM before it stops listening."""

    def __init__(self, config: uvicorn.Config, manager: ModelRegistry, delay_s: float) -> None:
        super().__init__(config)
        self.manager, self.delay_s = manager, delay_s

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.manager.begin_shutdown()
        if self.delay_s > 0 and not self.should_exit:
            loop = asyncio.get_running_loop()  # signal handlers run on the loop's thread
            loop.call_later(self.delay_s, super().handle_exit, sig, frame)
            return
        super().handle_exit(sig, frame)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="vaegan-serve", description="Serve a vaegan model bundle over HTTP (settings: VAEGAN_* variables)."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    return parser.parse_args(argv)


def http_stack(settings: Settings) -> tuple[str, str]:
    """uvicorn's HTTP parser and event loop: the settings', "auto" being httptools and uvloop when installed."""
    http, loop = settings.http, settings.loop
    if http == "auto":
        http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    if loop == "auto":
        loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return http, loop


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        sys.stderr.write(f"vaegan-serve: invalid settings:\n{exc}\n")
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        app = create_app(settings)
    except (OSError, ValueError) as exc:  # VAEGAN_API_KEYS_FILE unreadable, or holding a short key
        sys.stderr.write(f"vaegan-serve: invalid settings: {exc}\n")
        return 2
    if settings.metrics_port:
        # /metrics alone on a port of its own, no key: for a Prometheus on a private network while the
        # API port needs keys (docs/security.md). A daemon thread; it ends with the process.
        start_http_server(settings.metrics_port, addr=args.host, registry=app.state.metrics.registry)
        log.info("metrics on %s:%d/metrics", args.host, settings.metrics_port)
    http, loop = http_stack(settings)
    log.info("HTTP parser %s, event loop %s", http, loop)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=settings.log_level,
        log_config=None,  # uvicorn's loggers propagate to configure_logging's handler (text or JSON)
        access_log=False,  # service.access logs each request by route template, with its id
        limit_concurrency=settings.max_connections,  # beyond it: 503 (VAEGAN_MAX_CONNECTIONS)
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s),
        lifespan="on",
        server_header=False,
        http=http,
        loop=loop,
    )
    # uvicorn re-raises the signal that stopped it once shutdown is complete; answering it with a
    # no-op makes a graceful stop exit 0 (uvicorn's own handlers are in place while it serves).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stopped)
    Server(config, app.state.models, settings.shutdown_delay_s).run()
    return 0


def _stopped(sig: int, frame: FrameType | None) -> None:
    """The re-raised stop signal after a graceful shutdown: nothing left to do."""


if __name__ == "__main__":
    sys.exit(main())
