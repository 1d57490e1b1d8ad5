"""Load on one target for one cell, bounded in count and time, and the medians over rounds.

A target is a live server driven over HTTP (httpx's async client, or ``wrk``: bench/wrk.py) or the
raw onnxruntime calls of the same endpoint, made by threads back to back (the limit of the stack).
A ``Cell`` is what one bounded run measured; ``summarize`` turns a cell's rounds into the table's row.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort

from bench import wrk
from bench.servers import Server
from model_core.bundle import load_bundle
from service.sessions import CPU, session_options, session_settings
from service.settings import Settings

SAMPLE_N = 16


@dataclass
class Cell:
    """What one bounded run measured."""

    latencies: list[float]  # seconds, of the requests (or calls) that succeeded (empty from wrk)
    seconds: float  # first start to last completion
    errors: int
    client_cpu: float  # CPU seconds of the load generator (this process, or wrk) during the run
    server_cpu: float  # CPU seconds of the server process (0 for raw onnxruntime)
    completed: int | None = None  # requests that succeeded, when only a summary came back (wrk)
    percentiles_ms: dict[int, float] | None = None  # {50: ..., 95: ..., 99: ...}, ditto

    @property
    def ok(self) -> int:
        return len(self.latencies) if self.completed is None else self.completed

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Request:
    """One endpoint's request, encoded once."""

    method: str
    path: str
    body: bytes | None
    headers: dict[str, str]


def requests_of(png: bytes) -> dict[str, Request]:
    return {
        "sample": Request("GET", f"/sample?n={SAMPLE_N}&seed=1", None, {}),
        "reconstruct": Request("POST", "/reconstruct", png, {"content-type": "image/png"}),
    }


async def drive(client: httpx.AsyncClient, request: Request, concurrency: int, count: int, seconds: float) -> Cell:
    """``concurrency`` workers send ``request`` back to back until ``count`` were sent or time is up.

    The request is built once and sent again and again (a bytes body can be): the generator's own
    CPU per request stays as small as httpx allows.
    """
    prepared = client.build_request(request.method, request.path, content=request.body, headers=request.headers)
    latencies: list[float] = []
    errors = 0
    sent = 0
    start = time.perf_counter()
    deadline = start + seconds
    last = start

    async def worker() -> None:
        nonlocal errors, sent, last
        while sent < count and time.perf_counter() < deadline:
            sent += 1
            t0 = time.perf_counter()
            try:
                ok = (await client.send(prepared)).status_code == 200
            except httpx.HTTPError:
                ok = False
            t1 = time.perf_counter()
            if ok:
                latencies.append(t1 - t0)
            else:
                errors += 1
            last = max(last, t1)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Cell(latencies, last - start, errors, 0.0, 0.0)


def measure_server(
    loop: asyncio.AbstractEventLoop,
    server: Server,
    client: httpx.AsyncClient,
    request: Request,
    concurrency: int,
    count: int,
    seconds: float,
) -> Cell:
    """One cell against a server, warmed up by a few requests at the same concurrency."""
    loop.run_until_complete(drive(client, request, concurrency, 2 * concurrency, seconds))
    cpu0, server0 = time.process_time(), server.cpu_seconds()
    cell = loop.run_until_complete(drive(client, request, concurrency, count, seconds))
    cell.client_cpu, cell.server_cpu = time.process_time() - cpu0, server.cpu_seconds() - server0
    return cell


def measure_wrk(
    loop: asyncio.AbstractEventLoop,
    server: Server,
    client: httpx.AsyncClient,
    request: Request,
    concurrency: int,
    seconds: float,
    files: tuple[Path, Path],
) -> Cell:
    """One cell driven by ``wrk`` (``files``: its Lua script, the body); warmed up by httpx as above."""
    loop.run_until_complete(drive(client, request, concurrency, 2 * concurrency, seconds))
    script, body = files
    content_type = request.headers.get("content-type", "")
    server0 = server.cpu_seconds()
    figures, client_cpu = wrk.run(
        script,
        server.url + request.path,
        request.method,
        body if request.body else None,
        content_type,
        concurrency,
        seconds,
    )
    ok = figures["requests"] - figures["status_errors"]
    return Cell(
        [],
        figures["duration_us"] / 1e6,
        figures["status_errors"] + figures["socket_errors"],
        client_cpu,
        server.cpu_seconds() - server0,
        completed=ok,
        percentiles_ms={q: figures[f"p{q}_us"] / 1e3 for q in (50, 95, 99)},
    )


def measure_raw(call: Callable[[], Any], concurrency: int, count: int, seconds: float) -> Cell:
    """``concurrency`` threads call ``call`` back to back until ``count`` calls or time is up."""
    for _ in range(2):
        call()  # warm-up
    latencies: list[float] = []
    lock = threading.Lock()
    sent = 0
    start = time.perf_counter()
    deadline = start + seconds
    last = start

    def worker() -> None:
        nonlocal sent, last
        while True:
            with lock:
                if sent >= count or time.perf_counter() >= deadline:
                    return
                sent += 1
            t0 = time.perf_counter()
            call()
            t1 = time.perf_counter()
            with lock:
                latencies.append(t1 - t0)
                last = max(last, t1)

    cpu0 = time.process_time()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Cell(latencies, last - start, 0, time.process_time() - cpu0, 0.0)


def raw_calls(bundle_path: Path, settings: Settings, png: bytes) -> dict[str, Callable[[], Any]]:
    """The raw onnxruntime work of each endpoint, with the service's session options and inputs."""
    from service.imaging import load_input

    bundle = load_bundle(bundle_path)
    options = session_options(session_settings(bundle.manifest, settings))
    encoder = ort.InferenceSession(str(bundle.file("encoder.onnx")), sess_options=options, providers=[CPU])
    decoder = ort.InferenceSession(str(bundle.file("decoder.onnx")), sess_options=options, providers=[CPU])
    z = np.random.default_rng(1).standard_normal((SAMPLE_N, bundle.manifest.latent_dim), dtype=np.float32)
    x = load_input(png, bundle.manifest.preprocessing, settings.max_pixels)[None]  # (1, C, H, W)

    def sample() -> Any:
        return decoder.run(None, {"z": z})

    def reconstruct() -> Any:
        mu, _ = encoder.run(None, {"image": x})
        return decoder.run(None, {"z": mu})

    return {"sample": sample, "reconstruct": reconstruct}


def summarize(cells: list[Cell]) -> dict[str, float]:
    """Medians over rounds of throughput, percentiles (ms) and the client's CPU share."""

    def pct(cell: Cell, q: int) -> float:
        if cell.percentiles_ms is not None:
            return cell.percentiles_ms[q] if cell.ok else float("nan")
        return float(np.percentile(cell.latencies, q)) * 1e3 if cell.latencies else float("nan")

    def cpu_per_request(cell: Cell) -> float:
        """Server CPU ms per request; for raw onnxruntime (no server), this process's CPU ms per call."""
        spent = cell.server_cpu if cell.server_cpu > 0 else cell.client_cpu
        return spent / cell.ok * 1e3 if cell.ok else float("nan")

    def client_share(cell: Cell) -> float:
        total = cell.client_cpu + cell.server_cpu
        return cell.client_cpu / total if cell.server_cpu > 0 and total > 0 else float("nan")

    return {
        "rps": round(statistics.median(c.throughput for c in cells), 2),
        "p50_ms": round(statistics.median(pct(c, 50) for c in cells), 2),
        "p95_ms": round(statistics.median(pct(c, 95) for c in cells), 2),
        "p99_ms": round(statistics.median(pct(c, 99) for c in cells), 2),
        "requests": sum(c.ok for c in cells),
        "errors": sum(c.errors for c in cells),
        "client_cpu_share": round(statistics.median(client_share(c) for c in cells), 3),
        "cpu_ms": round(statistics.median(cpu_per_request(c) for c in cells), 3),
    }
