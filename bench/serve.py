"""The REST service against the limit of its stack: ``vaegan-serve`` on loopback vs raw onnxruntime.

Two real ``vaegan-serve`` processes serve one mnist32 bundle (random seeded weights: speed does not
depend on what was learned; ``--models-dir`` serves an existing bundle instead), one with
micro-batching on (the default settings) and one with ``VAEGAN_BATCHING=false``. Both stay up, but
only one is driven at a time. An async httpx load generator (one client per server, bodies encoded
once) or ``wrk`` (``--client``; the default when installed, bench/wrk.py) keeps ``concurrency``
requests in flight, bounded in time (and, with httpx, in count), on:

- ``GET /sample?n=16`` (16 prior samples as one PNG grid);
- ``POST /reconstruct`` (one held-out digit of the embedded MNIST as a raw PNG body).

In the same rounds a raw onnxruntime loop gives the limit: the bundle's own ONNX files, sessions
built exactly as the service builds them (``service.sessions.session_settings``), ``concurrency``
threads each calling ``session.run`` back to back on pre-made inputs: the decoder on 16 latents for
``sample``, the encoder then the decoder on one image for ``reconstruct``.

Every (endpoint, concurrency) cell runs its targets (batching on, off, raw) one after the other in
an order that rotates each round; the figures are medians over rounds. The load generator shares
the CPU with the server (loopback, same cores): on a 2-core machine it takes a visible share of it,
which the output reports (client CPU / (client + server) CPU per cell).

Keys (last line, one JSON object): ``service_over_raw_ort`` = service throughput / raw throughput
for ``/sample?n=16`` at concurrency 16 (batching on, the default); ``batching_on_over_off`` =
``/reconstruct`` throughput at concurrency 32, batching on / off.
Run: ``python -m bench.serve [--quick] [--out bench/results/serve.json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import onnxruntime as ort

from bench import report, wrk
from bench.load import Cell, Request, measure_raw, measure_server, measure_wrk, raw_calls, requests_of, summarize
from bench.servers import HOST, NAME, Server, digit_png, export_seeded_bundle, serve
from model_core.bundle import LATEST, load_bundle, resolve
from service.__main__ import http_stack
from service.sessions import session_settings
from service.settings import Settings

ENDPOINTS = ("sample", "reconstruct")
TARGETS = ("batching on", "batching off", "raw ort")
CONCURRENCY = (1, 4, 16, 32, 64)
QUICK_CONCURRENCY = (1, 16, 32)
KEY_SAMPLE_CONCURRENCY = 16
KEY_RECONSTRUCT_CONCURRENCY = 32


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="concurrency 1/16/32, one round, short cells (<= 90 s)")
    p.add_argument("--models-dir", type=Path, help="serve this models folder (default: export a seeded mnist32)")
    p.add_argument("--model-name", default=NAME, help="bundle name under --models-dir")
    p.add_argument("--concurrency", type=int, nargs="+", help=f"default {CONCURRENCY} ({QUICK_CONCURRENCY} quick)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 1 quick, 3 full)")
    p.add_argument("--seconds", type=float, help="time bound of one cell (default 1.5 quick, 5 full)")
    p.add_argument("--requests", type=int, help="count bound of one cell (default 300 quick, 3000 full)")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="VAEGAN_X=V",
        help="a setting for both servers and the raw sessions, e.g. VAEGAN_BATCH_WORKERS=2 (repeatable)",
    )
    p.add_argument(
        "--client",
        choices=("auto", "wrk", "httpx"),
        default="auto",
        help="load generator: wrk (compiled, bench/wrk.py) or the async httpx one; auto: wrk when installed",
    )
    p.add_argument("--out", type=Path, default=Path("bench/results/serve.json"), help="also write the JSON here")
    args = p.parse_args(argv)
    if any("=" not in e or not e.startswith("VAEGAN_") for e in args.env):
        p.error("--env takes VAEGAN_NAME=VALUE")
    return args


@dataclass
class Budget:
    """How much each cell measures, from the flags (quick or full defaults)."""

    concurrencies: tuple[int, ...]
    rounds: int
    seconds: float
    count: int

    @classmethod
    def of(cls, args: argparse.Namespace) -> Budget:
        return cls(
            concurrencies=tuple(args.concurrency or (QUICK_CONCURRENCY if args.quick else CONCURRENCY)),
            rounds=args.rounds or (1 if args.quick else 3),
            seconds=args.seconds or (1.5 if args.quick else 5.0),
            count=args.requests or (300 if args.quick else 3000),
        )


@dataclass
class Setup:
    """What the measure phase drives: both servers and their clients, the raw calls, the requests."""

    bundle_path: Path
    settings: Settings  # as the servers read them
    ort_session: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    servers: dict[str, Server]
    clients: dict[str, httpx.AsyncClient]
    raw: dict[str, Callable[[], Any]]
    requests: dict[str, Request]
    client: str  # "wrk" or "httpx"
    wrk_files: tuple[Path, Path]


# Setup: the bundle, the digit, both servers (only one is driven at a time).


def set_up(args: argparse.Namespace, budget: Budget, stack: ExitStack) -> Setup:
    """Export (or find) the bundle, start both servers and their clients; ``stack`` stops them."""
    work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vaegan-bench-serve-")))
    models_dir = args.models_dir or work / "models"
    if args.models_dir is None:
        export_seeded_bundle(models_dir)
    bundle_path = resolve(models_dir, args.model_name, LATEST)
    env = {"VAEGAN_MODELS_DIR": str(models_dir), "VAEGAN_MODEL_NAME": args.model_name, "VAEGAN_LOG_LEVEL": "warning"}
    env |= dict(e.split("=", 1) for e in args.env)
    settings = Settings(**{k.removeprefix("VAEGAN_").lower(): v for k, v in env.items()})  # as the servers read it
    png = digit_png()
    servers = {
        "batching on": stack.enter_context(serve("batching on", env, work / "on.log")),
        "batching off": stack.enter_context(
            serve("batching off", {**env, "VAEGAN_BATCHING": "false"}, work / "off.log")
        ),
    }
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    stack.callback(loop.close)
    clients = {}
    most = max(budget.concurrencies)
    for label, server in servers.items():
        limits = httpx.Limits(max_connections=most, max_keepalive_connections=most)
        clients[label] = httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60.0)
        stack.callback(loop.run_until_complete, clients[label].aclose())
    client = "wrk" if args.client == "wrk" or (args.client == "auto" and wrk.available()) else "httpx"
    (work / "digit.png").write_bytes(png)
    return Setup(
        bundle_path=bundle_path,
        settings=settings,
        ort_session=session_settings(load_bundle(bundle_path).manifest, settings),
        loop=loop,
        servers=servers,
        clients=clients,
        raw=raw_calls(bundle_path, settings, png),
        requests=requests_of(png),
        client=client,
        wrk_files=(wrk.write_script(work), work / "digit.png"),
    )


# Measure: every (endpoint, concurrency) cell runs on, off and raw in a rotating order.


def measure(setup: Setup, budget: Budget) -> dict[tuple[str, int, str], list[Cell]]:
    """Every round, every cell, every target; the cells of each (endpoint, concurrency, target)."""
    samples: dict[tuple[str, int, str], list[Cell]] = {}
    for r in range(budget.rounds):
        for endpoint in ENDPOINTS:
            for c in budget.concurrencies:
                for target in TARGETS[r % 3 :] + TARGETS[: r % 3]:
                    samples.setdefault((endpoint, c, target), []).append(
                        measure_one(setup, budget, endpoint, c, target)
                    )
    return samples


def measure_one(setup: Setup, budget: Budget, endpoint: str, c: int, target: str) -> Cell:
    """One cell: the raw calls, or a server driven by wrk or httpx."""
    if target == "raw ort":
        return measure_raw(setup.raw[endpoint], c, budget.count, budget.seconds)
    server, client, request = setup.servers[target], setup.clients[target], setup.requests[endpoint]
    if setup.client == "wrk":
        return measure_wrk(setup.loop, server, client, request, c, budget.seconds, setup.wrk_files)
    return measure_server(setup.loop, server, client, request, c, budget.count, budget.seconds)


# Report: the table, the keys, the JSON.


def print_table(table: dict[str, dict[str, float]], concurrencies: tuple[int, ...]) -> None:
    columns = ("req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "cpu ms/req", "client cpu")
    print(f"{'endpoint':12s} {'conc':>4s} {'target':13s} " + " ".join(f"{h:>10s}" for h in columns))
    for e in ENDPOINTS:
        for c in concurrencies:
            for t in TARGETS:
                row = table[f"{e} c={c} {t}"]
                values = (row["rps"], row["p50_ms"], row["p95_ms"], row["p99_ms"], row["errors"], row["cpu_ms"])
                shown = " ".join(f"{v:10.1f}" for v in values) + f" {row['client_cpu_share']:10.2f}"
                print(f"{e:12s} {c:4d} {t:13s} {shown}")


def keys(table: dict[str, dict[str, float]], concurrencies: tuple[int, ...]) -> dict[str, Any]:
    """The keys: throughput and CPU ratios between cells (docs/benchmarks.md, "Serving")."""

    def ratio(key: str, a: tuple[str, int, str], b: tuple[str, int, str]) -> float:
        """table[a][key] / table[b][key] (nan when a cell was not measured)."""
        cell_a, cell_b = table.get("{} c={} {}".format(*a)), table.get("{} c={} {}".format(*b))
        return round(cell_a[key] / cell_b[key], 3) if cell_a and cell_b and cell_b[key] else float("nan")

    ks, kr = KEY_SAMPLE_CONCURRENCY, KEY_RECONSTRUCT_CONCURRENCY
    return {
        "service_over_raw_ort": ratio("rps", ("sample", ks, "batching on"), ("sample", ks, "raw ort")),
        "batching_on_over_off": ratio("rps", ("reconstruct", kr, "batching on"), ("reconstruct", kr, "batching off")),
        "service_over_raw_ort_batching_off": ratio("rps", ("sample", ks, "batching off"), ("sample", ks, "raw ort")),
        # CPU seconds per request instead of requests per second: less sensitive to other load.
        "raw_over_service_cpu_per_request": ratio("cpu_ms", ("sample", ks, "raw ort"), ("sample", ks, "batching on")),
        # Server CPU per request / raw onnxruntime CPU per call, per endpoint, server and concurrency
        # (targets: reconstruct <= 2.0, sample <= 1.1).
        "cpu_over_raw": {
            f"{e} {t}": {c: ratio("cpu_ms", (e, c, t), (e, c, "raw ort")) for c in concurrencies}
            for e in ENDPOINTS
            for t in TARGETS[:2]
        },
    }


def run_record(args: argparse.Namespace, setup: Setup, budget: Budget) -> dict[str, Any]:
    """What the run was: the settings both servers ran, the client, the budget and the machine."""
    settings = setup.settings
    return {
        "settings": {
            "max_batch": settings.max_batch,
            "max_wait_ms": settings.max_wait_ms,
            "batch_workers": settings.batch_workers,
            "inference_threads": settings.inference_threads,
            "inline_pixels": settings.inline_pixels,
            "http_parser_and_loop": http_stack(settings),
            "ort_session": setup.ort_session,
            "env": args.env,
        },
        "client": setup.client,
        "concurrency": list(budget.concurrencies),
        "rounds": budget.rounds,
        "cell_seconds": budget.seconds,
        "cell_requests": budget.count,
        "quick": args.quick,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    budget = Budget.of(args)
    started = time.perf_counter()
    with ExitStack() as stack:
        setup = set_up(args, budget, stack)
        print(
            f"vaegan-serve x2 (batching on / off) on {HOST}, bundle {setup.bundle_path}; the load generator runs on "
            f"the same {os.cpu_count()} cores as the server (its CPU share is shown per cell); client {setup.client}",
            flush=True,
        )
        samples = measure(setup, budget)

    table = {f"{e} c={c} {t}": summarize(cells) for (e, c, t), cells in samples.items()}
    print_table(table, budget.concurrencies)
    summary: dict[str, Any] = {
        **keys(table, budget.concurrencies),
        **run_record(args, setup, budget),
        "seconds": round(time.perf_counter() - started, 1),
        "note": (
            "the load generator shares the CPU with the server (loopback): client_cpu_share per cell; "
            "cpu_ms: server CPU per request (raw ort: this process's CPU per call)"
        ),
        "machine": report.machine(
            onnxruntime=ort.__version__,
            httpx=httpx.__version__,
            uvicorn=importlib.metadata.version("uvicorn"),
            **({"wrk": wrk.version()} if setup.client == "wrk" else {}),
        ),
        "results": table,
    }
    report.emit(summary, args.out)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
