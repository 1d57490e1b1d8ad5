"""The commands the containers run, run for real outside containers.

Reads docker-compose.yml, sets a tiny run through the same variables a user would set (embedded
digits, the tiny preset, two steps, a small evaluation, on the CPU), maps each named volume to a temporary folder,
then runs the trainer's command with this environment's console scripts, starts the service's
command, waits for /readyz, fetches /sample?n=4 and runs the compose healthcheck against it; then
starts the tensorboard profile's command on the same runs volume and finds the run's scalars there.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from compose_files import COMPOSE, config, volume_mounts
from PIL import Image

from tests.polling import poll
from tests.service.live_server import free_port

BIN = Path(sys.executable).parent
TINY_RUN = {
    "VAEGAN_DATASET": "embedded-mnist",  # shipped with the repository: no download
    "VAEGAN_PRESET": "tiny",  # mnist32's architecture at test widths (model_core.config.PRESETS)
    "VAEGAN_EPOCHS": "1",
    "VAEGAN_MAX_STEPS": "2",
    "VAEGAN_BATCH_SIZE": "16",
    "VAEGAN_EVAL_IMAGES": "64",
    "VAEGAN_DEVICE": "cpu",
    "VAEGAN_PROVIDER": "cpu",
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def host_paths(service: dict[str, Any], volumes: Path) -> dict[str, Path]:
    """Container folder -> the temporary folder standing for its named volume (one per volume name)."""
    mapping = {}
    for target, (source, _) in volume_mounts(service).items():
        mapping[target] = volumes / source
        mapping[target].mkdir(parents=True, exist_ok=True)
    return mapping


def on_host(value: str, paths: dict[str, Path]) -> str:
    """``value`` with a leading container folder replaced by its host folder."""
    for target, host in paths.items():
        if value == target or value.startswith(target + "/"):
            return str(host) + value[len(target) :]
    return value


def process_env(service: dict[str, Any], paths: dict[str, Path]) -> dict[str, str]:
    """This process's environment without VAEGAN_* settings, plus the service's own environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAEGAN_")}
    env.update({k: on_host(str(v), paths) for k, v in service.get("environment", {}).items()})
    return env


def get(url: str, timeout: float = 5.0) -> tuple[int, str, bytes]:
    """(status, content type, body) of a GET; HTTP errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers.get("content-type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), e.read()


def wait_for(
    url: str,
    proc: subprocess.Popen[bytes],
    log: Path,
    deadline_s: float,
    done: Callable[[bytes], bool] = lambda body: True,
) -> bytes:
    """Poll ``url`` until a 200 whose body is ``done``, and return the body; fail with the process's log if it
    exits or the deadline passes."""

    def answered() -> tuple[bytes] | None:
        if proc.poll() is not None:  # a process that exits is a failure at once, not a wait to the deadline
            pytest.fail(f"{proc.args[0]} exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        status, _, body = get(url, timeout=5)
        return (body,) if status == 200 and done(body) else None  # a tuple: an empty body is an answer too

    try:
        return poll(answered, deadline_s, f"an answer from {url}", interval_s=0.25)[0]
    except AssertionError as exc:
        pytest.fail(f"{exc}:\n{log.read_text()[-4000:]}")


@pytest.mark.slow
def test_compose_trainer_then_service_commands_work(tmp_path: Path) -> None:
    services = config([COMPOSE], TINY_RUN)["services"]
    trainer, service = services["trainer"], services["service"]
    volumes = tmp_path / "volumes"

    # Train and export, as the trainer container does.
    paths = host_paths(trainer, volumes)
    argv = [on_host(arg, paths) for arg in trainer["command"]]
    argv[0] = str(BIN / argv[0])
    result = subprocess.run(
        argv, env=process_env(trainer, paths), cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    name = service["environment"]["VAEGAN_MODEL_NAME"]
    models = Path(on_host(trainer["command"][trainer["command"].index("--export-to") + 1], paths))
    assert (models / name / "LATEST").is_file(), sorted(p.name for p in models.rglob("*"))

    # Serve the bundle from the same volume, on a free port of the loopback instead of 0.0.0.0:8000.
    paths = host_paths(service, volumes)
    port, metrics_port = free_port(), free_port()
    service["environment"]["VAEGAN_METRICS_PORT"] = str(metrics_port)  # Prometheus's port, free here
    argv = [on_host(arg, paths) for arg in service["command"]]
    argv[0] = str(BIN / argv[0])
    container_port = argv[argv.index("--port") + 1]
    argv[argv.index("--port") + 1] = str(port)
    argv[argv.index("--host") + 1] = "127.0.0.1"
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=process_env(service, paths), cwd=tmp_path, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    healthcheck = [str(BIN / "python"), *service["healthcheck"]["test"][2:]]
    healthcheck[-1] = healthcheck[-1].replace(f"127.0.0.1:{container_port}/", f"127.0.0.1:{port}/")
    try:
        wait_for(f"{base}/readyz", proc, log, deadline_s=120)

        status, content_type, body = get(f"{base}/sample?n=4&seed=0", timeout=30)
        assert status == 200, body[:500]
        assert content_type.startswith("image/png")
        assert body.startswith(PNG_MAGIC)
        grid = Image.open(io.BytesIO(body))
        grid.load()
        assert grid.width * grid.height >= 4 * 32 * 32  # four 32x32 digits

        # The compose healthcheck passes against the ready service.
        check = subprocess.run(healthcheck, capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        assert get(f"{base}/healthz")[0] == 200
        status, _, scraped = get(f"http://127.0.0.1:{metrics_port}/metrics")  # what Prometheus scrapes
        assert status == 200 and b"vaegan_ready 1.0" in scraped
    finally:
        proc.send_signal(signal.SIGTERM)  # what `docker compose stop` sends
        try:
            proc.wait(timeout=45)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"service ignored SIGTERM:\n{log.read_text()[-4000:]}")
    assert proc.returncode == 0, log.read_text()[-4000:]  # a graceful stop, as `docker compose stop` expects

    # Once the service is gone the healthcheck fails: it does not pass by accident.
    assert subprocess.run(healthcheck, capture_output=True, timeout=30).returncode != 0

    check_tensorboard(services["tensorboard"], volumes, tmp_path, run=name)


def check_tensorboard(board: dict[str, Any], volumes: Path, tmp_path: Path, run: str) -> None:
    """The tensorboard profile's command, on the loopback and a free port, lists the run and its scalars."""
    paths = host_paths(board, volumes)
    argv = [on_host(arg, paths) for arg in board["command"]]
    argv[0] = str(BIN / argv[0])
    port = free_port()
    argv[argv.index("--port") + 1] = str(port)
    argv[argv.index("--bind_all")] = "--host=127.0.0.1"
    log = tmp_path / "tensorboard.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=process_env(board, paths), cwd=tmp_path, stdout=out, stderr=out)
    try:
        url = f"http://127.0.0.1:{port}/data/plugin/scalars/tags"
        tags = json.loads(wait_for(url, proc, log, deadline_s=90, done=lambda body: json.loads(body) != {}))
        assert [key for key in tags if key.split("/")[0] == run], (tags, log.read_text()[-2000:])
        assert any("kl" in tag for scalars in tags.values() for tag in scalars), tags
    finally:
        proc.terminate()
        proc.wait(timeout=30)
