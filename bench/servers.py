"""The live side of bench/serve.py and bench/protocol.py: a seeded bundle, a digit, ``vaegan-serve`` processes.

Each server is the console script's own code (``python -m service``) on a free loopback port, with
its settings from the environment, and is stopped by SIGTERM as an orchestrator would.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image

NAME = "mnist"
HOST = "127.0.0.1"


def export_seeded_bundle(models_dir: Path) -> Path:
    """A seeded random-weight mnist32 VAEGAN with non-trivial batch-norm statistics, exported."""
    from bench.runtime import seeded_model
    from model_core.export import export_bundle
    from trainer.preprocessing_specs import mnist_spec

    model = seeded_model("mnist32")
    return export_bundle(
        model,
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
