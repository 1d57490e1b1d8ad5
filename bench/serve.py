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
import io
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
from PIL import Image

from bench import report, wrk
from model_core.bundle import LATEST, load_bundle, resolve
from service.__main__ import http_stack
from service.sessions import CPU, session_options, session_settings
from service.settings import Settings

ENDPOINTS = ("sample", "reconstruct")
CONCURRENCY = (1, 4, 16, 32, 64)
QUICK_CONCURRENCY = (1, 16, 32)
SAMPLE_N = 16
KEY_SAMPLE_CONCURRENCY = 16
KEY_RECONSTRUCT_CONCURRENCY = 32
NAME = "mnist"
HOST = "127.0.0.1"


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


# Setup: a bundle, a digit, two servers.


def export_seeded_bundle(models_dir: Path) -> Path:
    """A seeded random-weight mnist32 VAEGAN with non-trivial batch-norm statistics, exported."""
    import torch
    from torch import nn

    from model_core.config import PRESETS
    from model_core.export import export_bundle
    from model_core.vaegan import VAEGAN
    from trainer.imaging import mnist_spec

    torch.manual_seed(0)
    model = VAEGAN(PRESETS["mnist32"])
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return export_bundle(
        model.eval(),
        models_dir,
        NAME,
        preset="mnist32",
        dataset="embedded-mnist",
        preprocessing=mnist_spec(1, 32),
        training={"epochs": 0, "steps": 0, "seed": 0, "mode": "vaegan", "gamma": 1e-6},
        version="bench",
    )


def digit_png() -> bytes:
    """The first held-out embedded MNIST digit as PNG bytes (what a client uploads)."""
    from trainer.mnist import HELDOUT_SLICE, load_embedded_mnist

    images, _ = load_embedded_mnist()
    buffer = io.BytesIO()
    Image.fromarray(images[HELDOUT_SLICE][0], "L").save(buffer, format="PNG")
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One running vaegan-serve process."""

    label: str
    process: subprocess.Popen[bytes]
    url: str

    def cpu_seconds(self) -> float:
        """user + system CPU seconds of the server process so far (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


@contextmanager
def serve(label: str, env: dict[str, str], log: Path) -> Iterator[Server]:
    """``vaegan-serve`` (service.__main__, the console script's code) on a free loopback port until exit."""
    port = free_port()
    command = [sys.executable, "-m", "service", "--host", HOST, "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    server = Server(label, process, f"http://{HOST}:{port}")
    try:
        wait_ready(server, log)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_ready(server: Server, log: Path, timeout_s: float = 120.0) -> None:
    """Poll /readyz until 200; fail with the server's log if it exits or never gets ready."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"vaegan-serve ({server.label}) exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(server.url + "/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"vaegan-serve ({server.label}) not ready after {timeout_s:.0f} s:\n{log.read_text()[-2000:]}")


# Measurement: one cell is one target driven at one concurrency, bounded in count and time.


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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    concurrencies = tuple(args.concurrency or (QUICK_CONCURRENCY if args.quick else CONCURRENCY))
    rounds = args.rounds or (1 if args.quick else 3)
    seconds = args.seconds or (1.5 if args.quick else 5.0)
    count = args.requests or (300 if args.quick else 3000)
    started = time.perf_counter()

    with ExitStack() as stack:
        # Setup: the bundle, the digit, both servers (only one is driven at a time).
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vaegan-bench-serve-")))
        models_dir = args.models_dir or work / "models"
        if args.models_dir is None:
            export_seeded_bundle(models_dir)
        bundle_path = resolve(models_dir, args.model_name, LATEST)
        env = {
            "VAEGAN_MODELS_DIR": str(models_dir),
            "VAEGAN_MODEL_NAME": args.model_name,
            "VAEGAN_LOG_LEVEL": "warning",
        }
        env |= dict(e.split("=", 1) for e in args.env)
        settings = Settings(**{k.removeprefix("VAEGAN_").lower(): v for k, v in env.items()})  # as the servers read it
        ort_session = session_settings(load_bundle(bundle_path).manifest, settings)
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
        for label, server in servers.items():
            limits = httpx.Limits(max_connections=max(concurrencies), max_keepalive_connections=max(concurrencies))
            clients[label] = httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60.0)
            stack.callback(loop.run_until_complete, clients[label].aclose())
        raw = raw_calls(bundle_path, settings, png)
        requests = requests_of(png)
        client = "wrk" if args.client == "wrk" or (args.client == "auto" and wrk.available()) else "httpx"
        (work / "digit.png").write_bytes(png)
        wrk_files = (wrk.write_script(work), work / "digit.png")
        print(
            f"vaegan-serve x2 (batching on / off) on {HOST}, bundle {bundle_path}; the load generator runs on the same "
            f"{os.cpu_count()} cores as the server (its CPU share is shown per cell); client {client}",
            flush=True,
        )

        # Measure: every (endpoint, concurrency) cell runs on, off and raw in a rotating order.
        targets = ("batching on", "batching off", "raw ort")
        samples: dict[tuple[str, int, str], list[Cell]] = {}
        for r in range(rounds):
            for endpoint in ENDPOINTS:
                for c in concurrencies:
                    for target in targets[r % 3 :] + targets[: r % 3]:
                        if target == "raw ort":
                            cell = measure_raw(raw[endpoint], c, count, seconds)
                        elif client == "wrk":
                            cell = measure_wrk(
                                loop, servers[target], clients[target], requests[endpoint], c, seconds, wrk_files
                            )
                        else:
                            cell = measure_server(
                                loop, servers[target], clients[target], requests[endpoint], c, count, seconds
                            )
                        samples.setdefault((endpoint, c, target), []).append(cell)

    # Report: the table, the keys, the JSON.
    table = {f"{e} c={c} {t}": summarize(cells) for (e, c, t), cells in samples.items()}
    columns = ("req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "cpu ms/req", "client cpu")
    print(f"{'endpoint':12s} {'conc':>4s} {'target':13s} " + " ".join(f"{h:>10s}" for h in columns))
    for e in ENDPOINTS:
        for c in concurrencies:
            for t in targets:
                row = table[f"{e} c={c} {t}"]
                values = (row["rps"], row["p50_ms"], row["p95_ms"], row["p99_ms"], row["errors"], row["cpu_ms"])
                shown = " ".join(f"{v:10.1f}" for v in values) + f" {row['client_cpu_share']:10.2f}"
                print(f"{e:12s} {c:4d} {t:13s} {shown}")

    def ratio(key: str, a: tuple[str, int, str], b: tuple[str, int, str]) -> float:
        """table[a][key] / table[b][key] (nan when a cell was not measured)."""
        cell_a, cell_b = table.get("{} c={} {}".format(*a)), table.get("{} c={} {}".format(*b))
        return round(cell_a[key] / cell_b[key], 3) if cell_a and cell_b and cell_b[key] else float("nan")

    ks, kr = KEY_SAMPLE_CONCURRENCY, KEY_RECONSTRUCT_CONCURRENCY
    summary: dict[str, Any] = {
        "service_over_raw_ort": ratio("rps", ("sample", ks, "batching on"), ("sample", ks, "raw ort")),
        "batching_on_over_off": ratio("rps", ("reconstruct", kr, "batching on"), ("reconstruct", kr, "batching off")),
        "service_over_raw_ort_batching_off": ratio("rps", ("sample", ks, "batching off"), ("sample", ks, "raw ort")),
        # CPU seconds per request instead of requests per second: less sensitive to other load.
        "raw_over_service_cpu_per_request": ratio("cpu_ms", ("sample", ks, "raw ort"), ("sample", ks, "batching on")),
        # Server CPU per request / raw onnxruntime CPU per call, per endpoint, server and concurrency
        # (issue 17's targets: reconstruct <= 2.0, sample <= 1.1).
        "cpu_over_raw": {
            f"{e} {t}": {c: ratio("cpu_ms", (e, c, t), (e, c, "raw ort")) for c in concurrencies}
            for e in ENDPOINTS
            for t in targets[:2]
        },
        "settings": {
            "max_batch": settings.max_batch,
            "max_wait_ms": settings.max_wait_ms,
            "batch_workers": settings.batch_workers,
            "inference_threads": settings.inference_threads,
            "inline_pixels": settings.inline_pixels,
            "http_parser_and_loop": http_stack(settings),
            "ort_session": ort_session,
            "env": args.env,
        },
        "client": client,
        "concurrency": list(concurrencies),
        "rounds": rounds,
        "cell_seconds": seconds,
        "cell_requests": count,
        "quick": args.quick,
        "seconds": round(time.perf_counter() - started, 1),
        "note": (
            "the load generator shares the CPU with the server (loopback): client_cpu_share per cell; "
            "cpu_ms: server CPU per request (raw ort: this process's CPU per call)"
        ),
        "machine": report.machine(
            onnxruntime=ort.__version__,
            httpx=httpx.__version__,
            uvicorn=importlib.metadata.version("uvicorn"),
            **({"wrk": wrk.version()} if client == "wrk" else {}),
        ),
        "results": table,
    }
    report.emit(summary, args.out)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
