"""End to end: a real ``vaegan-serve`` process scraped by a real Prometheus.

Prometheus (Debian package ``prometheus``) scrapes /metrics every second; its HTTP API must then
report the target up and return ``vaegan_requests_total``. The server is stopped with SIGTERM and
must exit 0 (graceful shutdown).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests import polling
from tests.service.helpers import export_mnist32
from tests.service.live_server import LiveServer, free_port

pytestmark = pytest.mark.slow
PROMETHEUS = shutil.which("prometheus")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


# tests.polling.poll every 0.25 s, connection errors and unreadable JSON counting as not yet.
poll = partial(polling.poll, interval_s=0.25, ignore=(OSError, ValueError))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """``vaegan-serve`` on a free port, serving a freshly exported bundle; stopped with SIGTERM, which it must
    answer by exiting 0."""
    models = tmp_path / "models"
    export_mnist32(models, "e2e", seed=0)
    with LiveServer(models, tmp_path / "serve.log", log_level="warning") as live:
        yield live.base
        code = live.stop(timeout_s=30)
        assert code == 0, f"vaegan-serve exited {code} after SIGTERM:\n{live.log_text()[-3000:]}"


@pytest.fixture
def prometheus(tmp_path: Path, server: str) -> Iterator[str]:
    """A Prometheus scraping ``server`` every second; yields its base URL."""
    if PROMETHEUS is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus; .ci/run does it)")
    target = urllib.parse.urlsplit(server).netloc
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        f"scrape_configs:\n  - job_name: vaegan\n    static_configs:\n      - targets: ['{target}']\n"
    )
    port = free_port()
    command = [
        PROMETHEUS,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_prometheus_scrapes_the_service(server: str, prometheus: str) -> None:
    for query in ("n=4&seed=1", "n=1"):
        with urllib.request.urlopen(f"{server}/sample?{query}", timeout=10) as response:
            assert response.status == 200 and response.headers["Content-Type"] == "image/png"

    def target_up() -> bool:
        targets = get_json(f"{prometheus}/api/v1/targets")["data"]["activeTargets"]
        return any(t["labels"]["job"] == "vaegan" and t["health"] == "up" for t in targets)

    poll(target_up, 60, "Prometheus to report the vaegan target up")

    def series(query: str) -> list[dict[str, Any]]:
        url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        body = get_json(url)
        assert body["status"] == "success"
        return body["data"]["result"]

    found = poll(lambda: series('vaegan_requests_total{route="/sample",status="200"}'), 30, "vaegan_requests_total")
    assert float(found[0]["value"][1]) >= 2
    assert poll(lambda: series('up{job="vaegan"} == 1'), 30, "up == 1")
    info = poll(lambda: series("vaegan_model_info"), 30, "vaegan_model_info")
    assert info[0]["metric"]["version"] == "e2e"
