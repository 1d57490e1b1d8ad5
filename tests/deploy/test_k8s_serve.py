"""The service as the cpu overlay's Deployment runs it, outside a cluster: the container's command
and the environment Kubernetes would give it (the ConfigMap), a local models folder standing for
the claim, on the loopback. The kubelet's probes are asked as declared (path, period, timeout,
threshold), and SIGTERM must follow the pod's graceful-shutdown timing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from k8s_manifests import container_env, mounts, one, render

from tests.checkout import checkout_env
from tests.service.helpers import export_mnist32
from tests.service.live_server import free_port

pytestmark = pytest.mark.slow
LOOPBACK = "127.0.0.1"


def status(url: str, timeout_s: float) -> int | None:
    """The HTTP status of a GET (None: no answer, as a kubelet sees a refused or timed-out probe)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def until(check: Callable[[], bool], period_s: float, attempts: int) -> None:
    """Call ``check`` every ``period_s`` until it passes, at most ``attempts`` times: a count of probes, as the
    kubelet's failureThreshold is, not the deadline of tests.polling.poll (a probe may take its timeout)."""
    for _ in range(attempts):
        if check():
            return
        time.sleep(period_s)
    raise AssertionError(f"failed {attempts} times, every {period_s} s")


@dataclass
class Pod:
    """A vaegan-serve process started from the Deployment, and what the Deployment says of it."""

    template: dict[str, Any]  # the Deployment's pod template
    env: dict[str, str]  # the container's environment, as Kubernetes would set it
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def container(self) -> dict[str, Any]:
        (container,) = self.template["spec"]["containers"]
        return dict(container)

    def probe(self, kind: str) -> bool:
        """One kubelet httpGet probe of ``kind``: success is a 2xx or 3xx answer within timeoutSeconds."""
        spec = self.container[kind]
        code = status(self.base + spec["httpGet"]["path"], spec["timeoutSeconds"])
        return code is not None and 200 <= code < 400

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture
def pod(tmp_path: Path) -> Iterator[Pod]:
    docs = render("cpu")
    template = one(docs, "Deployment", "vaegan-service")["spec"]["template"]
    (container,) = template["spec"]["containers"]
    env = container_env(docs, container)
    claim_path = next(
        path for path, (source, _) in mounts(template["spec"], container).items() if source == "vaegan-models"
    )
    assert env["VAEGAN_MODELS_DIR"] == claim_path
    models = tmp_path / "models"
    export_mnist32(models, "k8s", seed=0)  # what the trainer Job would have published
    assert env["VAEGAN_MODEL_NAME"] == "mnist"

    port = free_port()
    command = list(container["command"])
    command[0] = str(Path(sys.executable).with_name(command[0]))  # this environment's console script
    command[command.index("--host") + 1] = LOOPBACK  # the pod listens on 0.0.0.0; here the loopback only
    command[command.index("--port") + 1] = str(port)  # a free port stands for the container's
    kept = {k: v for k, v in os.environ.items() if not k.startswith("VAEGAN_")}
    process_env = checkout_env({**kept, **env, "VAEGAN_MODELS_DIR": str(models)})
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=process_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield Pod(template, env, f"http://{LOOPBACK}:{port}", process, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_probes_pass_and_sigterm_keeps_the_pods_timing(pod: Pod) -> None:
    startup = pod.container["startupProbe"]

    # Start-up within the budget the kubelet allows before it restarts the container, then ready
    # at once (the bundle is there) and alive, under our names and KServe's.
    until(
        lambda: pod.process.poll() is None and pod.probe("startupProbe"),
        startup["periodSeconds"],
        startup["failureThreshold"],
    )
    assert pod.probe("readinessProbe") and pod.probe("livenessProbe"), pod.output()
    assert status(pod.base + "/v2/health/ready", 5) == 200 and status(pod.base + "/v2/health/live", 5) == 200
    scrape = pod.template["metadata"]["annotations"]["prometheus.io/path"]
    with urllib.request.urlopen(pod.base + scrape, timeout=5) as response:
        assert b"vaegan_model_info{" in response.read()

    # SIGTERM: not ready before the next readiness period, still listening for the shutdown delay
    # (so the endpoints drop the pod first), then exit 0 well within terminationGracePeriodSeconds.
    ready = pod.container["readinessProbe"]
    delay_s = float(pod.env["VAEGAN_SHUTDOWN_DELAY_S"])
    pod.process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    readyz = pod.base + ready["httpGet"]["path"]
    until(lambda: status(readyz, ready["timeoutSeconds"]) == 503, 0.1, 10 * ready["periodSeconds"])
    assert time.monotonic() - sent < ready["periodSeconds"]
    assert pod.probe("livenessProbe")
    code = pod.process.wait(timeout=pod.template["spec"]["terminationGracePeriodSeconds"])
    elapsed = time.monotonic() - sent
    assert code == 0, pod.output()
    assert delay_s <= elapsed < pod.template["spec"]["terminationGracePeriodSeconds"]
