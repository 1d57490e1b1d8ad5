"""A real ``vaegan-serve`` on a bad day: sustained load, SIGTERM mid-request, swaps under load.

Each test starts the server as a process on the loopback (tests/service/live_server.py) and drives
it with an async httpx client. Figures (latency percentiles, memory, counts) are printed (``-s``)
and attached to the test report (``record_property``).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from model_core.bundle import read_manifest, set_latest, write_bundle
from tests.data import make_hostile
from tests.service.helpers import image_bytes
from tests.service.live_server import LiveServer

Z = 32  # mnist32 latent_dim
PNG = image_bytes()
Request = Callable[[httpx.AsyncClient], Any]  # returns the awaitable of one request


def mixed_requests() -> list[tuple[str, Request]]:
    """One of each kind of call a client makes, weighted towards inference."""
    z = np.random.default_rng(0).standard_normal((2, Z)).round(4).tolist()
    two = {"a": ("a.png", PNG, "image/png"), "b": ("b.png", PNG, "image/png")}
    png = {"Content-Type": "image/png"}
    return [
        ("/sample", lambda c: c.get("/sample", params={"n": 4})),
        ("/reconstruct", lambda c: c.post("/reconstruct", content=PNG, headers=png)),
        ("/encode", lambda c: c.post("/encode", files={"file": ("x.png", PNG, "image/png")})),
        ("/decode", lambda c: c.post("/decode", json={"z": z}, headers={"Accept": "application/json"})),
        ("/interpolate", lambda c: c.post("/interpolate", params={"steps": 4}, json={"a": z[0], "b": z[1]})),
        ("/similarity", lambda c: c.post("/similarity", files=two)),
        ("/sample", lambda c: c.get("/sample", params={"n": 1, "seed": 3})),
        ("/reconstruct", lambda c: c.post("/reconstruct", files={"file": ("x.png", PNG, "image/png")})),
        ("/readyz", lambda c: c.get("/readyz")),
        ("/model", lambda c: c.get("/model")),
    ]


class Load:
    """``concurrency`` clients sending ``mixed_requests()`` in turn until ``stop`` is set."""

    def __init__(self, base: str, concurrency: int) -> None:
        self.base, self.concurrency = base, concurrency
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors: list[str] = []
        self.versions: Counter[str] = Counter()
        self.stop = asyncio.Event()

    async def _client(self, worker: int, client: httpx.AsyncClient) -> None:
        calls = mixed_requests()
        i = worker
        while not self.stop.is_set():
            route, call = calls[i % len(calls)]
            i += 1
            start = time.perf_counter()
            try:
                response = await call(client)
            except httpx.HTTPError as exc:
                self.errors.append(f"{route}: {type(exc).__name__}: {exc}")
                continue
            self.latencies.append(time.perf_counter() - start)
            self.statuses[response.status_code] += 1
            if response.status_code != 200:
                self.errors.append(f"{route}: {response.status_code} {response.text[:200]}")
            if "x-model-version" in response.headers:
                self.versions[response.headers["x-model-version"]] += 1

    async def run(self, seconds: float | None = None) -> None:
        """Run the clients for ``seconds``, or until ``stop`` is set by someone else."""
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(base_url=self.base, timeout=120.0, limits=limits) as client:
            workers = [asyncio.create_task(self._client(w, client)) for w in range(self.concurrency)]
            if seconds is not None:
                await asyncio.sleep(seconds)
                self.stop.set()
            await asyncio.gather(*workers)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + sum(1 for e in self.errors if ": 2" not in e[:20])

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies else math.nan


# Sustained load: no errors, bounded memory.


@pytest.mark.parametrize("seconds", [pytest.param(15, id="15s"), pytest.param(60, id="60s", marks=pytest.mark.soak)])
def test_sustained_load(bundles: Path, tmp_path: Path, seconds: int, record_property) -> None:
    """64 concurrent clients of mixed endpoints: no error, resident memory grows < 50 MB."""
    with LiveServer(bundles, tmp_path / "serve.log", log_level="warning") as server:
        warm = Load(server.base, 64)
        asyncio.run(warm.run(3.0))  # fills the pools and caches that a steady state keeps
        assert warm.errors == [], warm.errors[:5]
        before = server.rss_kb()
        load = Load(server.base, 64)
        asyncio.run(load.run(seconds))
        time.sleep(0.5)
        after, peak = server.rss_kb(), server.rss_kb("VmHWM")
        code = server.stop()
    growth_mb = (after - before) / 1024
    figures = {
        "seconds": seconds,
        "requests": sum(load.statuses.values()),
        "rate_per_s": round(sum(load.statuses.values()) / seconds, 1),
        "errors": len(load.errors),
        "p50_ms": round(load.percentile_ms(50), 1),
        "p99_ms": round(load.percentile_ms(99), 1),
        "rss_before_mb": round(before / 1024, 1),
        "rss_after_mb": round(after / 1024, 1),
        "rss_growth_mb": round(growth_mb, 1),
        "rss_peak_mb": round(peak / 1024, 1),
    }
    print(f"\nload test: {json.dumps(figures)}")
    for key, value in figures.items():
        record_property(key, value)
    assert load.errors == [], load.errors[:5]
    assert sum(load.statuses.values()) > 64 and set(load.statuses) == {200}
    assert growth_mb < 50, figures
    assert code == 0


def test_uploads_never_sit_in_memory(bundles: Path, tmp_path: Path) -> None:
    """The hostile corpus and 64 MB streamed at a 1 MB limit leave the server's peak memory where it was."""
    limit = 1 << 20
    with LiveServer(bundles, tmp_path / "serve.log", log_level="warning", max_upload_bytes=limit) as server:

        async def send_all() -> tuple[Counter[int], int]:
            statuses: Counter[int] = Counter()
            async with httpx.AsyncClient(base_url=server.base, timeout=60.0) as client:
                for item in make_hostile.CORPUS:
                    data = (make_hostile.HERE / item.name).read_bytes()
                    response = await client.post(
                        "/reconstruct", content=data, headers={"Content-Type": item.media_type}
                    )
                    assert response.status_code == item.status, item.name
                    statuses[response.status_code] += 1
                sent = 0

                async def stream() -> AsyncIterator[bytes]:
                    nonlocal sent
                    for _ in range(1024):  # 64 MB in 64 KiB chunks, no Content-Length
                        sent += 65536
                        yield b"\0" * 65536

                try:
                    response = await client.post(
                        "/reconstruct", content=stream(), headers={"Content-Type": "image/png"}
                    )
                    statuses[response.status_code] += 1
                    assert response.status_code == 413
                except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
                    pass  # the server answered 413 and closed the connection while the upload went on
                return statuses, sent

        before = server.rss_kb("VmHWM")
        statuses, sent = asyncio.run(send_all())
        peak = server.rss_kb("VmHWM")
        assert urllib_status(f"{server.base}/readyz") == 200
        assert server.stop() == 0
    print(f"\nhostile uploads on a live server: {dict(statuses)}; streamed {sent >> 20} MB before the cut")
    assert sent < 64 << 20  # the server stopped reading: the client could not send it all
    assert (peak - before) / 1024 < 32, (before, peak)


def urllib_status(url: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


# SIGTERM with requests in flight.


def in_flight(base: str) -> float:
    import urllib.request

    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        text = response.read().decode()
    line = next(line for line in text.splitlines() if line.startswith("vaegan_requests_in_flight "))
    return float(line.split()[1]) - 1  # this scrape is in flight too


def test_sigterm_finishes_every_accepted_request(bundles: Path, tmp_path: Path, record_property) -> None:
    """Requests in flight when SIGTERM arrives all complete, even after the port has closed; exit 0 in time.

    Each request is an upload held half sent, so it is certainly accepted and in flight at SIGTERM.
    Half of them resume at once (inference while /readyz says 503), half once new connections are
    refused (the listener is closed, the connections already open are served to the end).
    """
    grace, delay, uploads = 20.0, 1.0, 16
    server = LiveServer(bundles, tmp_path / "serve.log", shutdown_grace_s=grace, shutdown_delay_s=delay)
    with server:

        async def scenario() -> dict[str, Any]:
            early, late = asyncio.Event(), asyncio.Event()

            async def upload(release: asyncio.Event) -> AsyncIterator[bytes]:
                yield PNG[: len(PNG) // 2]
                await release.wait()
                yield PNG[len(PNG) // 2 :]

            png = {"Content-Type": "image/png"}
            async with httpx.AsyncClient(base_url=server.base, timeout=60.0) as client:
                held = [
                    asyncio.create_task(
                        client.post("/reconstruct", content=upload(early if i % 2 else late), headers=png)
                    )
                    for i in range(uploads)
                ]
                deadline = time.monotonic() + 30
                while (accepted := await asyncio.to_thread(in_flight, server.base)) < uploads:
                    assert time.monotonic() < deadline, "the uploads never arrived"
                    await asyncio.sleep(0.05)
                sent = server.terminate()
                early.set()

                # /readyz turns 503 at once, while the listener stays open for the delay.
                async with httpx.AsyncClient(base_url=server.base, timeout=10.0) as fresh:
                    ready = (await fresh.get("/readyz")).status_code
                # Then new connections are refused.
                refused = None
                while refused is None and time.monotonic() < sent + delay + 10:
                    try:
                        async with httpx.AsyncClient(base_url=server.base, timeout=2.0) as fresh:
                            await fresh.get("/healthz")
                        await asyncio.sleep(0.05)
                    except httpx.ConnectError:
                        refused = time.monotonic() - sent
                late.set()
                answers = await asyncio.gather(*held, return_exceptions=True)
            exit_code = await asyncio.to_thread(server.process.wait, grace + 10)
            return {
                "in_flight_at_sigterm": int(accepted),
                "completed": sum(isinstance(r, httpx.Response) and r.status_code == 200 for r in answers),
                "failed": [repr(r) for r in answers if not (isinstance(r, httpx.Response) and r.status_code == 200)],
                "readyz_after_sigterm": ready,
                "refused_after_s": None if refused is None else round(refused, 2),
                "exit_code": exit_code,
                "exit_after_s": round(time.monotonic() - sent, 2),
            }

        figures = asyncio.run(scenario())
    print(f"\nshutdown: {json.dumps(figures)}")
    for key, value in figures.items():
        record_property(key, value)
    assert figures["in_flight_at_sigterm"] == uploads and figures["completed"] == uploads, figures
    assert figures["readyz_after_sigterm"] == 503
    assert figures["refused_after_s"] is not None and figures["refused_after_s"] >= delay * 0.9, figures
    assert figures["exit_code"] == 0 and figures["exit_after_s"] < grace, figures


# Publishing versions while clients run.


def publish(models_dir: Path, source: str, version: str, tamper: str | None = None) -> None:
    """Publish a copy of ``source`` as ``version`` (write_bundle, then LATEST); ``tamper`` one file first."""
    folder = models_dir / "mnist" / source
    manifest = read_manifest(folder).model_copy(update={"version": version})
    contents = {name: (folder / name).read_bytes() for name in manifest.files}
    target = write_bundle(models_dir, manifest, contents, update_latest=False)
    if tamper is not None:
        data = (target / tamper).read_bytes()
        (target / tamper).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    set_latest(models_dir, "mnist", version)


def reloads(base: str) -> dict[str, float]:
    import urllib.request

    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = {}
    for line in text.splitlines():
        if line.startswith("vaegan_model_reloads_total{"):
            found[line.split('result="')[1].split('"')[0]] = float(line.split()[-1])
    return found


def test_hot_swap_under_load(models_dir: Path, tmp_path: Path, record_property) -> None:
    """A good version swaps in with no failed request; a tampered one is refused, said in log and metrics."""
    server = LiveServer(models_dir, tmp_path / "serve.log", reload_interval_s=0.2, log_level="info")
    with server:

        async def scenario() -> tuple[Load, dict[str, Any]]:
            load = Load(server.base, 16)
            running = asyncio.create_task(load.run())
            await asyncio.sleep(2.0)
            before = sum(load.statuses.values())
            publish(models_dir, "v2", "v3")
            deadline = time.monotonic() + 60
            while load.versions["v3"] == 0:
                assert time.monotonic() < deadline, "v3 never served"
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
            swap = sum(load.statuses.values()) - before
            publish(models_dir, "v2", "v4", tamper="decoder.onnx")
            while (await asyncio.to_thread(reloads, server.base)).get("failure", 0) < 1:
                assert time.monotonic() < deadline, "v4 was never refused"
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)
            load.stop.set()
            await running
            return load, {"requests_around_good_swap": swap, "metrics": await asyncio.to_thread(reloads, server.base)}

        load, seen = asyncio.run(scenario())
        still = urllib_ready_version(server.base)
        code = server.stop()
    log = server.log_text()
    figures = {
        "requests": sum(load.statuses.values()),
        "requests_around_good_swap": seen["requests_around_good_swap"],
        "failed": len(load.errors),
        "versions_served": dict(load.versions),
        "reloads_total": seen["metrics"],
        "serving_after": still,
    }
    print(f"\nhot swap: {json.dumps(figures)}")
    for key, value in figures.items():
        record_property(key, value)
    assert load.errors == [], load.errors[:5]
    assert set(load.versions) == {"v1", "v3"} and still == "v3"
    assert seen["metrics"] == {"success": 1.0, "failure": 1.0}
    assert "refusing model" in log and "decoder.onnx has sha256" in log and "v4" in log
    assert code == 0


def urllib_ready_version(base: str) -> str:
    import urllib.request

    with urllib.request.urlopen(f"{base}/readyz", timeout=10) as response:
        return str(json.loads(response.read())["version"])
