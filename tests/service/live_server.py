"""A real ``vaegan-serve`` process on the loopback for the reliability tests, and its resident memory."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.checkout import checkout_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def memory_kb(pid: int, field: str = "VmRSS") -> int:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of ``pid`` from /proc, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class LiveServer:
    """``vaegan-serve`` on a free port with ``VAEGAN_*`` settings; ``stop()`` sends SIGTERM."""

    def __init__(self, models_dir: Path, log: Path, env: dict[str, str] | None = None, **settings: Any) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**(env or {}), "VAEGAN_MODELS_DIR": str(models_dir), "VAEGAN_MODEL_NAME": "mnist"}
        env.update({f"VAEGAN_{key.upper()}": str(value) for key, value in settings.items()})
        command = [str(Path(sys.executable).with_name("vaegan-serve")), "--host", "127.0.0.1", "--port", str(self.port)]
        with log.open("wb") as out:
            self.process = subprocess.Popen(command, env=checkout_env(**env), stdout=out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Until /readyz answers 200 (fails early if the process dies)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"vaegan-serve exited:\n{self.log_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"{self.base}/readyz", timeout=5) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"vaegan-serve not ready in {timeout_s} s:\n{self.log_text()[-3000:]}")

    def rss_kb(self, field: str = "VmRSS") -> int:
        return memory_kb(self.pid, field)

    def terminate(self) -> float:
        """Send SIGTERM; the monotonic time it was sent."""
        sent = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        return sent

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM (if still running), then the exit status; SIGKILL after ``timeout_s``."""
        if self.process.poll() is None:
            self.terminate()
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"vaegan-serve ignored SIGTERM for {timeout_s} s:\n{self.log_text()[-3000:]}"
            ) from None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> LiveServer:
        try:
            self.wait_ready()
        except BaseException:
            self.process.kill()
            self.process.wait()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.stop()
