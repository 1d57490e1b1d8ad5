"""A compiled load generator for ``bench/serve.py``: one ``wrk`` run is one cell.

httpx costs the benchmark process ~1.5-2 ms of CPU per request, as much as the server's own
overhead, on the same cores; ``wrk`` (C, one thread, epoll) costs a few tens of microseconds, so
its cells measure the server. It keeps ``c`` connections each with one request in flight for a
whole number of seconds. A Lua script sets the method, body and headers, and prints the
figures (completed requests, errors, latency percentiles) as one JSON line when the run ends.
The client's CPU is the ``wrk`` process's own, from ``getrusage(RUSAGE_CHILDREN)``: the servers
are children too, but only reaped ones count, and they are still running.

Debian and Ubuntu: ``apt-get install wrk`` (4.1); Homebrew: ``brew install wrk``.
"""

from __future__ import annotations

import json
import math
import resource
import shutil
import subprocess
from pathlib import Path

MARK = "WRK-RESULT "

# init(args): args[1] is the method, args[2] a body file ("-" for none), args[3] its Content-Type.
SCRIPT = """
function init(args)
  wrk.method = args[1]
  if args[2] ~= "-" then
    local f = assert(io.open(args[2], "rb"))
    wrk.body = f:read("*a")
    f:close()
    wrk.headers["Content-Type"] = args[3]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, '
      .. '"p50_us": %d, "p95_us": %d, "p99_us": %d}\\n',
    "MARK", summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
""".replace("MARK", MARK)


def available() -> bool:
    return shutil.which("wrk") is not None


def version() -> str:
    """``wrk -v``'s first line (wrk exits 1 after printing it)."""
    run = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return (run.stdout or run.stderr).splitlines()[0].strip() if (run.stdout or run.stderr) else "wrk"


def write_script(folder: Path) -> Path:
    path = folder / "bench.lua"
    path.write_text(SCRIPT)
    return path


def run(
    script: Path, url: str, method: str, body: Path | None, content_type: str, concurrency: int, seconds: float
) -> tuple[dict[str, int], float]:
    """One ``wrk`` run: its figures (see ``SCRIPT``) and the CPU seconds it used."""
    duration = max(1, math.ceil(seconds))
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--timeout", "60s", "-s", str(script), url]
    command += ["--", method, str(body) if body else "-", content_type]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=duration + 90)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if not lines:
        raise RuntimeError(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
    return json.loads(lines[-1].removeprefix(MARK)), cpu
