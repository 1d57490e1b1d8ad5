"""docker-compose.yml and docker-compose.cpu.yml: valid against the compose specification, and wired
as the design asks (train on the GPU, then serve the bundle read-only, Prometheus once healthy)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_files import COMPOSE, COMPOSE_CPU, REPO, Reset, config, load, volume_mounts, without_tags

CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
GRAFANA = REPO / "docker" / "grafana"


@pytest.fixture(scope="module")
def gpu() -> dict[str, Any]:
    return config([COMPOSE])


@pytest.fixture(scope="module")
def cpu() -> dict[str, Any]:
    return config([COMPOSE, COMPOSE_CPU])


def flag(command: list[str], name: str) -> str:
    """The value after ``name`` in an argv list."""
    assert name in command, f"{name} missing from {command}"
    return command[command.index(name) + 1]


def gpu_reservations(service: dict[str, Any]) -> list[dict[str, Any]]:
    return service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])


def dockerfile_args(dockerfile: str) -> set[str]:
    """The build arguments a Dockerfile declares (ARG NAME[=default])."""
    return set(re.findall(r"^ARG\s+([A-Za-z_][A-Za-z0-9_]*)", (REPO / dockerfile).read_text(), re.MULTILINE))


# --- the compose specification ------------------------------------------------------------------


def check_compose_schema(path: Path) -> None:
    result = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_matches_the_compose_specification() -> None:
    check_compose_schema(COMPOSE)


def test_cpu_override_matches_the_compose_specification(tmp_path: Path) -> None:
    # check-jsonschema's YAML reader does not know Compose's !reset tag: validate the document it
    # stands for (an emptied deploy section), and check the tag is used only there.
    raw = load(COMPOSE_CPU)
    tagged = {name for name, svc in raw["services"].items() for v in svc.values() if isinstance(v, Reset)}
    assert tagged == {"trainer", "service"}
    assert all(isinstance(raw["services"][name]["deploy"], Reset) for name in tagged)
    resolved = tmp_path / "docker-compose.cpu.json"
    resolved.write_text(json.dumps(without_tags(raw)))
    check_compose_schema(resolved)


# --- trainer -------------------------------------------------------------------------------------


def test_trainer_builds_the_trainer_image_and_reserves_a_gpu(gpu: dict[str, Any]) -> None:
    trainer = gpu["services"]["trainer"]
    assert trainer["build"] == {"context": ".", "dockerfile": "docker/trainer.Dockerfile"}
    [device] = gpu_reservations(trainer)
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
    assert flag(trainer["command"], "--device") == "cuda"
    assert trainer["restart"] == "no"  # one-shot: the service waits for its successful exit


def test_trainer_defaults_reproduce_the_seed_run(gpu: dict[str, Any]) -> None:
    command = gpu["services"]["trainer"]["command"]
    assert command[0] == "vaegan-train"
    assert flag(command, "--dataset") == "mnist"
    assert flag(command, "--preset") == "mnist32"
    assert int(flag(command, "--epochs")) >= 20
    assert int(flag(command, "--batch-size")) == 64
    assert int(flag(command, "--eval-images")) >= 10_000  # all of MNIST's held-out digits
    # The step cap must not cut the epochs short: full MNIST has 60,000 training digits.
    assert int(flag(command, "--max-steps")) >= int(flag(command, "--epochs")) * 60_000 // 64


def test_trainer_settings_come_from_the_environment() -> None:
    env = {
        "VAEGAN_DATASET": "fashion-mnist",
        "VAEGAN_PRESET": "paper64",
        "VAEGAN_EPOCHS": "7",
        "VAEGAN_MAX_STEPS": "11",
        "VAEGAN_BATCH_SIZE": "32",
        "VAEGAN_EVAL_IMAGES": "500",
        "VAEGAN_MODEL_NAME": "fashion",
    }
    command = config([COMPOSE], env)["services"]["trainer"]["command"]
    assert flag(command, "--dataset") == "fashion-mnist"
    assert flag(command, "--preset") == "paper64"
    assert flag(command, "--epochs") == "7"
    assert flag(command, "--max-steps") == "11"
    assert flag(command, "--batch-size") == "32"
    assert flag(command, "--eval-images") == "500"
    assert flag(command, "--name") == "fashion"
    assert flag(command, "--out") == "/runs/fashion"


def test_trainer_writes_models_data_cache_and_runs_to_named_volumes(gpu: dict[str, Any]) -> None:
    trainer = gpu["services"]["trainer"]
    mounts = volume_mounts(trainer)
    command = trainer["command"]
    for folder in (flag(command, "--export-to"), flag(command, "--data-dir")):
        source, read_only = mounts[folder]
        assert source in gpu["volumes"], f"{folder} is not on a named volume"
        assert not read_only
    assert flag(command, "--out").startswith("/runs/")
    assert mounts["/runs"][0] in gpu["volumes"]


# --- service -------------------------------------------------------------------------------------


def test_service_serves_the_trainers_bundle_read_only(gpu: dict[str, Any]) -> None:
    trainer, service = gpu["services"]["trainer"], gpu["services"]["service"]
    env = service["environment"]
    models_source, read_only = volume_mounts(service)[env["VAEGAN_MODELS_DIR"]]
    assert read_only
    assert models_source == volume_mounts(trainer)[flag(trainer["command"], "--export-to")][0]
    assert env["VAEGAN_MODEL_NAME"] == flag(trainer["command"], "--name")
    assert env["VAEGAN_PROVIDER"] == "cuda"


def test_service_starts_after_the_trainer_succeeded(gpu: dict[str, Any]) -> None:
    service = gpu["services"]["service"]
    assert service["depends_on"] == {"trainer": {"condition": "service_completed_successfully"}}


def test_service_image_command_port_gpu_and_restart(gpu: dict[str, Any]) -> None:
    service = gpu["services"]["service"]
    assert service["build"] == {"context": ".", "dockerfile": "docker/service.Dockerfile"}
    command = service["command"]
    assert command[0] == "vaegan-serve"
    assert flag(command, "--host") == "0.0.0.0"
    assert service["ports"] == [f"127.0.0.1:8000:{flag(command, '--port')}"]
    [device] = gpu_reservations(service)
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
    assert service["restart"] in ("unless-stopped", "always", "on-failure")


def test_service_healthcheck_asks_readyz_without_curl(gpu: dict[str, Any]) -> None:
    service = gpu["services"]["service"]
    check = service["healthcheck"]
    assert check["test"][0] == "CMD"
    assert check["test"][1] == "python"  # the image has no curl nor wget
    assert f"127.0.0.1:{flag(service['command'], '--port')}/readyz" in check["test"][-1]
    for key in ("interval", "timeout", "retries", "start_period"):
        assert key in check


def test_host_port_comes_from_the_environment() -> None:
    services = config([COMPOSE], {"VAEGAN_PORT": "18000"})["services"]
    assert services["service"]["ports"] == ["127.0.0.1:18000:8000"]


def test_ports_are_published_on_the_loopback_unless_told_otherwise(gpu: dict[str, Any]) -> None:
    for name in ("service", "prometheus", "grafana", "tensorboard"):
        assert all(port.startswith("127.0.0.1:") for port in gpu["services"][name]["ports"]), name
    opened = config([COMPOSE], {"VAEGAN_BIND": "0.0.0.0"})["services"]["service"]["ports"]
    assert opened == ["0.0.0.0:8000:8000"]


def test_the_service_container_is_locked_down(gpu: dict[str, Any], cpu: dict[str, Any]) -> None:
    """As its Kubernetes pod: read-only root, /tmp a tmpfs, no capabilities, no privilege escalation."""
    for variant in (gpu, cpu):
        service = variant["services"]["service"]
        assert service["read_only"] is True and service["tmpfs"] == ["/tmp"]
        assert service["cap_drop"] == ["ALL"] and service["security_opt"] == ["no-new-privileges:true"]


def test_tensorboard_is_an_opt_in_profile_on_the_trainers_runs(gpu: dict[str, Any], cpu: dict[str, Any]) -> None:
    """`--profile tensorboard` adds it; it reads the runs volume, where the trainer writes event files."""
    for variant in (gpu, cpu):
        board, trainer = variant["services"]["tensorboard"], variant["services"]["trainer"]
        assert board["profiles"] == ["tensorboard"]
        assert "--tensorboard" in trainer["command"]
        assert board["image"] == trainer["image"] and board["build"] == trainer["build"]  # the [tensorboard] extra
        assert volume_mounts(board) == {"/runs": ("runs", True)}
        assert volume_mounts(trainer)["/runs"] == ("runs", False)
        assert flag(board["command"], "--logdir") == "/runs"
        assert board["read_only"] is True and board["cap_drop"] == ["ALL"]
    assert config([COMPOSE], {"VAEGAN_TENSORBOARD_PORT": "16006"})["services"]["tensorboard"]["ports"] == [
        "127.0.0.1:16006:6006"
    ]


def test_grafana_needs_its_admin_password() -> None:
    with pytest.raises(KeyError, match="VAEGAN_GRAFANA_PASSWORD"):
        config([COMPOSE], required=False)
    grafana = config([COMPOSE], {"VAEGAN_GRAFANA_PASSWORD": "s3cret-enough"})["services"]["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "s3cret-enough"


# --- prometheus and grafana ----------------------------------------------------------------------


def test_prometheus_starts_once_the_service_is_healthy(gpu: dict[str, Any]) -> None:
    prometheus = gpu["services"]["prometheus"]
    assert prometheus["image"].startswith("prom/prometheus:v")
    assert prometheus["depends_on"] == {"service": {"condition": "service_healthy"}}
    assert prometheus["ports"] == ["127.0.0.1:9090:9090"]
    mounts = volume_mounts(prometheus)
    assert mounts["/etc/prometheus/prometheus.yml"] == ("./docker/prometheus.yml", True)


def test_prometheus_scrapes_the_services_metrics_port(gpu: dict[str, Any]) -> None:
    """On VAEGAN_METRICS_PORT (no key needed, so scraping works with VAEGAN_API_KEYS set), never published."""
    scrape = yaml.safe_load((REPO / "docker" / "prometheus.yml").read_text())["scrape_configs"]
    service = gpu["services"]["service"]
    port = service["environment"]["VAEGAN_METRICS_PORT"]
    [job] = [job for job in scrape if job["job_name"] == "vaegan"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job["static_configs"] == [{"targets": [f"service:{port}"]}]
    assert not any(published.endswith(f":{port}") for published in service["ports"])
    keyed = config([COMPOSE], {"VAEGAN_API_KEYS": "k" * 20})["services"]["service"]["environment"]
    assert keyed["VAEGAN_API_KEYS"] == "k" * 20 and gpu["services"]["service"]["environment"]["VAEGAN_API_KEYS"] == ""


def test_prometheus_config_passes_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (.ci/run installs the Debian prometheus package)")
    result = subprocess.run(
        [promtool, "check", "config", str(REPO / "docker" / "prometheus.yml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_reads_the_compose_prometheus(gpu: dict[str, Any]) -> None:
    [source] = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090"
    assert "prometheus" in gpu["services"]
    dashboard = json.loads((GRAFANA / "dashboards" / "vaegan.json").read_text())
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
    [provider] = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "vaegan.yml").read_text())["providers"]
    mounts = volume_mounts(gpu["services"]["grafana"])
    assert mounts[provider["options"]["path"]] == ("./docker/grafana/dashboards", True)


def test_grafana_dashboard_queries_only_metrics_the_service_exports() -> None:
    from service.metrics import Metrics

    exported = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            exported |= {f"{family.name}_total", f"{family.name}_created"}
        elif family.type == "histogram":
            exported |= {f"{family.name}_bucket", f"{family.name}_sum", f"{family.name}_count"}
        else:
            exported.add(family.name)
    dashboard = json.loads((GRAFANA / "dashboards" / "vaegan.json").read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bvaegan_[a-z_]+", target["expr"])
    }
    assert queried, "the dashboard queries nothing"
    assert queried <= exported, f"not exported by service.metrics: {sorted(queried - exported)}"


# --- images and volumes --------------------------------------------------------------------------


def test_every_image_is_pinned_and_every_named_volume_declared(gpu: dict[str, Any]) -> None:
    for name, service in gpu["services"].items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: {image}"
        for source, _ in volume_mounts(service).values():
            if not source.startswith((".", "/")):
                assert source in gpu["volumes"], f"{name}: volume {source} not declared"


# --- the CPU variant -----------------------------------------------------------------------------


def test_cpu_variant_drops_the_gpu_reservations(cpu: dict[str, Any]) -> None:
    for name, service in cpu["services"].items():
        assert not gpu_reservations(service), name


def test_cpu_variant_builds_cpu_images(cpu: dict[str, Any]) -> None:
    trainer, service = cpu["services"]["trainer"], cpu["services"]["service"]
    assert trainer["build"]["dockerfile"] == "docker/trainer.Dockerfile"
    assert trainer["build"]["args"] == {
        "BASE_IMAGE": "ubuntu:24.04",
        "TORCH_INDEX_URL": "https://download.pytorch.org/whl/cpu",
    }
    assert service["build"]["args"] == {"BASE_IMAGE": "ubuntu:24.04", "SERVE_EXTRA": "serve"}
    assert set(trainer["build"]["args"]) <= dockerfile_args("docker/trainer.Dockerfile")
    assert set(service["build"]["args"]) <= dockerfile_args("docker/service.Dockerfile")
    assert trainer["image"].endswith(":cpu") and service["image"].endswith(":cpu")
    assert flag(trainer["command"], "--device") == "cpu"
    assert service["environment"]["VAEGAN_PROVIDER"] == "cpu"


def test_cpu_trainer_command_is_the_gpu_command_on_cpu(gpu: dict[str, Any], cpu: dict[str, Any]) -> None:
    gpu_command = gpu["services"]["trainer"]["command"]
    cpu_command = cpu["services"]["trainer"]["command"]
    device = gpu_command.index("--device") + 1
    assert cpu_command[:device] + cpu_command[device + 1 :] == gpu_command[:device] + gpu_command[device + 1 :]
    # Both read the same variable, so VAEGAN_DEVICE still decides when it is set.
    both = config([COMPOSE, COMPOSE_CPU], {"VAEGAN_DEVICE": "cuda"})["services"]["trainer"]["command"]
    assert flag(both, "--device") == "cuda"


def test_cpu_variant_keeps_the_wiring(gpu: dict[str, Any], cpu: dict[str, Any]) -> None:
    for name in ("trainer", "service"):
        for key in ("volumes", "depends_on", "healthcheck", "restart", "ports"):
            assert cpu["services"][name].get(key) == gpu["services"][name].get(key), f"{name}.{key}"
    assert cpu["services"]["prometheus"] == gpu["services"]["prometheus"]
