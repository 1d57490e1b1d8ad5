"""The body deadline (VAEGAN_BODY_TIMEOUT_S, docs/security.md) on a live server: stalled uploads are closed
with 408 at the deadline, and the upload files they had spooled are gone."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.service.live_server import LiveServer

DEADLINE_S = 1.0
STALLED = 40
SPOOLED = 2 * 1024 * 1024  # past Starlette's 1 MiB in memory: the part is spooled to a file in TMPDIR


def stalled_upload(base: str) -> tuple[bytes, float]:
    """Send a multipart /reconstruct whose file part stops after SPOOLED bytes; (the answer, its delay)."""
    host, port = base.removeprefix("http://").split(":")
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    declared = len(head) + SPOOLED + 1000  # the rest never comes
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            f"POST /reconstruct HTTP/1.1\r\nHost: {host}\r\nContent-Length: {declared}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n".encode()
        )
        sock.sendall(head + b"\x00" * SPOOLED)
        start = time.monotonic()
        answer = b""
        while chunk := sock.recv(65536):  # until the server closes the connection
            answer += chunk
        return answer, time.monotonic() - start


def spooled(pid: int, folder: Path) -> list[str]:
    """The files under ``folder`` the process holds open, deleted ones included (a spooled upload is an
    unlinked temporary file: it takes disk space while open but is in no directory listing)."""
    targets = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:  # closed meanwhile
            continue
        if target.startswith(str(folder)):
            targets.append(target)
    return sorted(targets)


def test_stalled_uploads_are_408_at_the_deadline_and_leave_no_files(bundles: Path, tmp_path: Path) -> None:
    spool = tmp_path / "tmp"
    spool.mkdir()
    with (
        LiveServer(
            bundles, tmp_path / "serve.log", env={"TMPDIR": str(spool)}, log_level="warning", body_timeout_s=DEADLINE_S
        ) as server,
        ThreadPoolExecutor(STALLED) as pool,
    ):
        before = spooled(server.pid, spool)  # what the process keeps there anyway
        results = list(pool.map(lambda _: stalled_upload(server.base), range(STALLED)))
        for answer, waited in results:
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            assert b'"error":"body_timeout"' in answer and waited < DEADLINE_S + 2
        time.sleep(0.5)
        assert spooled(server.pid, spool) == before


def test_connections_beyond_the_cap_are_refused(bundles: Path, tmp_path: Path) -> None:
    """VAEGAN_MAX_CONNECTIONS: with 4 connections open and idle, a fifth's request is answered 503 at once."""
    with LiveServer(bundles, tmp_path / "serve.log", log_level="warning", max_connections=4) as server:
        host, port = server.base.removeprefix("http://").split(":")
        idle = [socket.create_connection((host, int(port)), timeout=10) for _ in range(4)]
        try:
            time.sleep(0.3)  # the server has accepted them
            with socket.create_connection((host, int(port)), timeout=10) as extra:
                extra.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                assert extra.recv(4096).startswith(b"HTTP/1.1 503")
        finally:
            for sock in idle:
                sock.close()
        time.sleep(0.3)
        with socket.create_connection((host, int(port)), timeout=10) as again:
            again.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            assert again.recv(4096).startswith(b"HTTP/1.1 200")
