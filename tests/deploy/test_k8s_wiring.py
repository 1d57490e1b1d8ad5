"""deploy/k8s wired as the design asks: probes on real routes, matching ports and selectors, the
bundle claim read-only in the service and read-write in the trainer, GPUs in the GPU overlays,
settings that service/settings.py and vaegan-train accept, docker-compose.yml's timing."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_manifests import (
    GPU_OVERLAYS,
    OVERLAYS,
    REPO,
    autoscaler,
    config,
    container_env,
    expand,
    kinds,
    mounts,
    one,
    pod_specs,
    render,
    service_pod,
    trainer_pods,
    workloads,
)
from starlette.routing import Match

from service.app import create_app
from service.settings import Settings
from trainer.cli import parse_args

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
MODELS_CLAIM = "vaegan-models"
GPU = "nvidia.com/gpu"
# Each overlay's VAEGAN_PROVIDER and VAEGAN_DEVICE.
DEVICE = {"base": "auto", "cpu": "cpu", "gpu": "cuda", "multinode": "cuda", "keda": "cpu"}


def seconds(text: str) -> float:
    """A compose duration ("40s", "1m30s") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([hms])", text))


def dockerfile(name: str) -> str:
    return (REPO / "docker" / name).read_text()


def image_uid(name: str) -> int:
    """The uid of the final stage's USER line of docker/<name>."""
    return int(re.findall(r"^USER (\d+)", dockerfile(name), re.M)[-1])


@pytest.fixture(scope="module")
def is_get_route(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], bool]:
    """Whether the app vaegan-serve runs routes a GET of a path (its lifespan never runs: nothing loads)."""
    app = create_app(Settings(models_dir=tmp_path_factory.mktemp("models")))

    def routed(path: str) -> bool:
        scope = {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": [], "app": app}
        return any(route.matches(scope)[0] is Match.FULL for route in app.routes)

    assert routed("/docs") and not routed("/no-such-page") and not routed("/reconstruct")  # POST only
    return routed


def the_container(pod: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod["containers"]
    return container


# The service: probes, ports, scraping, selectors.


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_ask_real_routes_on_the_served_port(overlay: str, is_get_route: Callable[[str], bool]) -> None:
    container = the_container(service_pod(render(overlay)))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    command = container["command"]
    metrics_port = int(config(render(overlay), "vaegan-service-config")["VAEGAN_METRICS_PORT"])
    assert ports == {"http": int(command[command.index("--port") + 1]), "metrics": metrics_port}
    probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert {kind: probe["path"] for kind, probe in probes.items()} == {
        "startupProbe": "/healthz",  # answers once the lifespan has verified and loaded the bundle
        "readinessProbe": "/readyz",
        "livenessProbe": "/healthz",
    }
    for probe in probes.values():
        assert is_get_route(probe["path"]) and probe["port"] in ports


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probe_timing_follows_the_compose_healthcheck(overlay: str) -> None:
    container = the_container(service_pod(render(overlay)))
    health = COMPOSE["service"]["healthcheck"]
    startup, live = container["startupProbe"], container["livenessProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= seconds(health["start_period"])
    assert (live["periodSeconds"], live["timeoutSeconds"], live["failureThreshold"]) == (
        seconds(health["interval"]),
        seconds(health["timeout"]),
        health["retries"],
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_service_runs_the_image_command(overlay: str) -> None:
    command = the_container(service_pod(render(overlay)))["command"]
    cmd = json.loads(re.findall(r"^CMD (\[.*\])$", dockerfile("service.Dockerfile"), re.M)[-1])
    assert command == cmd == COMPOSE["service"]["command"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_monitor_and_annotations_reach_the_pods(overlay: str, is_get_route: Callable[[str], bool]) -> None:
    docs = render(overlay)
    deployment = one(docs, "Deployment", "vaegan-service")
    template = deployment["spec"]["template"]
    labels = template["metadata"]["labels"]
    ports = {p["name"]: p["containerPort"] for p in the_container(template["spec"])["ports"]}
    service = one(docs, "Service", "vaegan-service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert all(p["targetPort"] in ports for p in service_ports.values())
    monitor = one(docs, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and is_get_route(endpoint["path"])
    # The metrics port is VAEGAN_METRICS_PORT, where /metrics needs no key (docs/security.md).
    metrics_port = ports[service_ports["metrics"]["targetPort"]]
    assert int(config(docs, "vaegan-service-config")["VAEGAN_METRICS_PORT"]) == metrics_port
    scrape = template["metadata"]["annotations"]
    assert scrape["prometheus.io/scrape"] == "true"
    assert int(scrape["prometheus.io/port"]) == metrics_port
    assert scrape["prometheus.io/path"] == endpoint["path"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_replicas_autoscaler_and_disruption_budget(overlay: str) -> None:
    docs = render(overlay)
    deployment = one(docs, "Deployment", "vaegan-service")
    (target, low, high), pdb = autoscaler(docs), one(docs, "PodDisruptionBudget")
    assert deployment["spec"]["replicas"] >= 2 and low >= 2 and high >= low
    assert (target["kind"], target["name"]) == ("Deployment", "vaegan-service")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] < low  # a drain never takes them all
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_graceful_shutdown_fits_the_compose_stop_grace_period(overlay: str) -> None:
    docs = render(overlay)
    pod = service_pod(docs)
    settings = config(docs, "vaegan-service-config")
    grace = pod["terminationGracePeriodSeconds"]
    assert grace == seconds(COMPOSE["service"]["stop_grace_period"])
    assert float(settings["VAEGAN_SHUTDOWN_DELAY_S"]) + float(settings["VAEGAN_SHUTDOWN_GRACE_S"]) < grace
    assert float(settings["VAEGAN_SHUTDOWN_DELAY_S"]) >= pod["containers"][0]["readinessProbe"]["periodSeconds"]


# Settings.


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_service_configmap_holds_only_real_settings(overlay: str) -> None:
    settings = config(render(overlay), "vaegan-service-config")
    fields = {f"VAEGAN_{name.upper()}" for name in Settings.model_fields}
    assert set(settings) - fields == set()
    parsed = Settings(**{key.removeprefix("VAEGAN_").lower(): value for key, value in settings.items()})
    assert parsed.provider == DEVICE[overlay]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_trainer_configmap_holds_the_compose_variables(overlay: str) -> None:
    settings = config(render(overlay), "vaegan-trainer-config")
    compose_vars = set(re.findall(r"\$\{(VAEGAN_\w+)", " ".join(COMPOSE["trainer"]["command"])))
    assert set(settings) <= compose_vars
    assert settings["VAEGAN_DEVICE"] == DEVICE[overlay]


# Storage: the trainer writes what the service reads.


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_bundle_claim_is_read_only_in_the_service_and_writable_in_the_trainer(overlay: str) -> None:
    docs = render(overlay)
    models_dir = config(docs, "vaegan-service-config")["VAEGAN_MODELS_DIR"]
    pod = service_pod(docs)
    assert mounts(pod, the_container(pod))[models_dir] == (MODELS_CLAIM, True)
    claims = [v["persistentVolumeClaim"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claims == [{"claimName": MODELS_CLAIM, "readOnly": True}]  # the service can write no claim
    assert trainer_pods(docs)
    for label, trainer in trainer_pods(docs):
        assert mounts(trainer, the_container(trainer))[models_dir] == (MODELS_CLAIM, False), label


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_reference_names_a_rendered_object(overlay: str) -> None:
    docs = render(overlay)
    claims = {d["metadata"]["name"] for d in kinds(docs, "PersistentVolumeClaim")}
    maps = {d["metadata"]["name"] for d in kinds(docs, "ConfigMap")}
    for doc in workloads(docs):
        for label, pod in pod_specs(doc):
            used = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
            assert used <= claims, label
            container = the_container(pod)
            refs = {s["configMapRef"]["name"] for s in container.get("envFrom", [])}
            refs |= {v["valueFrom"]["configMapKeyRef"]["name"] for v in container.get("env", []) if "valueFrom" in v}
            assert refs <= maps, label


# The trainer: the same vaegan-train command everywhere.


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_trainer_command_is_a_valid_vaegan_train(overlay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = render(overlay)
    service_settings = config(docs, "vaegan-service-config")
    for label, pod in trainer_pods(docs):
        container = the_container(pod)
        command = expand(container["command"], container_env(docs, container))
        assert "$(" not in " ".join(command), label
        if command[0] == "torchrun":
            assert command[:3] == ["torchrun", "--no-python", "vaegan-train"], label
            monkeypatch.setenv("WORLD_SIZE", "2")  # what torchrun tells each process
        cfg = parse_args(command[command.index("vaegan-train") + 1 :])
        places = mounts(pod, container)
        assert cfg.export_to == Path(service_settings["VAEGAN_MODELS_DIR"]), label
        assert cfg.name == service_settings["VAEGAN_MODEL_NAME"], label
        assert places[str(cfg.export_to)][0] == MODELS_CLAIM
        assert places[str(cfg.data_dir)] == ("vaegan-data", False)
        assert places[str(cfg.out.parent)] == ("vaegan-runs", False)


def test_the_pytorchjob_runs_the_job_command_under_torchrun() -> None:
    job = the_container(one(render("gpu"), "Job")["spec"]["template"]["spec"])
    pytorchjob = one(render("multinode"), "PyTorchJob")
    roles = pytorchjob["spec"]["pytorchReplicaSpecs"]
    assert set(roles) == {"Master", "Worker"} and roles["Master"]["replicas"] == 1
    assert roles["Master"]["template"] == roles["Worker"]["template"]
    container = the_container(roles["Master"]["template"]["spec"])
    assert container["name"] == "pytorch"  # the operator's training container
    assert container["command"] == ["torchrun", "--no-python", *job["command"]]
    assert [p["name"] for p in container["ports"]] == ["pytorchjob-port"]
    assert [v for v in container["env"] if not v["name"].startswith("NCCL_")] == job["env"]
    same = ("image", "envFrom", "securityContext", "volumeMounts")
    assert {k: container[k] for k in same} == {k: job[k] for k in same}
    nproc = int(pytorchjob["spec"]["nprocPerNode"])
    assert nproc == container["resources"]["limits"][GPU]
    world = nproc * sum(role["replicas"] for role in roles.values())
    assert int(config(render("multinode"), "vaegan-trainer-config")["VAEGAN_BATCH_SIZE"]) % world == 0


def test_the_multinode_overlay_replaces_the_job() -> None:
    docs = render("multinode")
    assert kinds(docs, "Job") == [] and len(kinds(docs, "PyTorchJob")) == 1
    assert {d["kind"] for d in render("gpu")} - {d["kind"] for d in docs} == {"Job"}


# Pods: non-root, read-only, sized; GPUs where the overlay says.


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_as_the_image_user_locked_down(overlay: str) -> None:
    for doc in workloads(render(overlay)):
        image = "service.Dockerfile" if doc["kind"] == "Deployment" else "trainer.Dockerfile"
        for label, pod in pod_specs(doc):
            context = pod["securityContext"]
            assert context["runAsNonRoot"] and context["runAsUser"] == image_uid(image), label
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, label
            for container in pod["containers"]:
                security = container["securityContext"]
                assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"], label
                assert security["capabilities"] == {"drop": ["ALL"]}, label
                assert "/tmp" in mounts(pod, container), label  # the one writable place besides the claims
                resources = container["resources"]
                assert {"cpu", "memory"} <= resources["requests"].keys() and "memory" in resources["limits"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_pod_mounts_a_service_account_token(overlay: str) -> None:
    for doc in workloads(render(overlay)):
        for label, pod in pod_specs(doc):
            assert pod["automountServiceAccountToken"] is False, label


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_service_takes_requests_on_its_port_and_sends_none(overlay: str) -> None:
    """docs/security.md: ingress to the service port from the namespace, a gateway or Prometheus; no egress."""
    docs = render(overlay)
    policy = one(docs, "NetworkPolicy", "vaegan-service")["spec"]
    deployment = one(docs, "Deployment", "vaegan-service")
    assert policy["podSelector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"} and policy["egress"] == []
    api, metrics = policy["ingress"]
    ports = {p["name"] for p in the_container(service_pod(docs))["ports"]}
    assert [p["port"] for p in api["ports"]] == ["http"] and "http" in ports
    assert [next(iter(source)) for source in api["from"]] == ["podSelector", "namespaceSelector", "namespaceSelector"]
    assert [p["port"] for p in metrics["ports"]] == ["metrics"] and "metrics" in ports
    (monitoring,) = metrics["from"]  # the keyless metrics port: Prometheus's namespace only
    assert monitoring["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gpus_exactly_in_the_gpu_overlays(overlay: str) -> None:
    docs = render(overlay)
    pods = [("service", service_pod(docs)), *trainer_pods(docs)]
    for label, pod in pods:
        limits = the_container(pod)["resources"]["limits"]
        if overlay in GPU_OVERLAYS:
            assert limits.get(GPU, 0) >= 1, label
            assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}, label
            assert {"key": GPU, "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"], label
        else:
            assert GPU not in limits and "nodeSelector" not in pod, label


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_and_tags(overlay: str) -> None:
    tag = {"base": None, "cpu": "cpu", "gpu": "cuda13", "multinode": "cuda13", "keda": "cpu"}[overlay]
    for doc in workloads(render(overlay)):
        name = "vaegan-service" if doc["kind"] == "Deployment" else "vaegan-trainer"
        for label, pod in pod_specs(doc):
            assert the_container(pod)["image"] == (f"{name}:{tag}" if tag else name), label
