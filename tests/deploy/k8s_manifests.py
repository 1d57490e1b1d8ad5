"""deploy/k8s rendered by a real Kustomize and validated offline, plus lookups the wiring tests share.

Kustomize: ``kubectl kustomize`` (kubectl on PATH or beside this Python; .ci/run installs one when
the machine has none). Kubernetes' own kinds are validated by kubernetes-validate against the
OpenAPI schemas of Kubernetes ``K8S_VERSION`` in strict mode (unknown fields are errors); the three
custom resources against the schemas vendored in ``schemas/`` (where they come from: the docstring
of ``schemas/derive_crd_schemas.py``), whose Kubernetes types resolve into the same definitions.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from referencing import Registry, Resource

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("base", "cpu", "gpu", "multinode", "keda")
GPU_OVERLAYS = ("gpu", "multinode")
K8S_VERSION = "1.32"  # the Kubernetes release whose API the manifests are checked against
MIN_KUSTOMIZE = (5, 0)  # `labels`, `patches` with targets, components-era field names
SCHEMAS = Path(__file__).resolve().parent / "schemas"
CRD_SCHEMAS = {
    ("kubeflow.org/v1", "PyTorchJob"): SCHEMAS / "pytorchjob-kubeflow.org-v1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SCHEMAS / "servicemonitor-monitoring.coreos.com-v1.json",
    ("keda.sh/v1alpha1", "ScaledObject"): SCHEMAS / "scaledobject-keda.sh-v1alpha1.json",
}
POD_KINDS = ("Deployment", "Job", "PyTorchJob")
# What scales the service: base's HPA, or KEDA's ScaledObject (which writes an HPA of its own); the
# names of their replica bounds.
AUTOSCALERS = {
    "HorizontalPodAutoscaler": ("minReplicas", "maxReplicas"),
    "ScaledObject": ("minReplicaCount", "maxReplicaCount"),
}

# A series in a PromQL expression: its name and the text of its label matchers.
SERIES = re.compile(r"\b(vaegan_\w+)(?:\{([^}]*)\})?")

Doc = dict[str, Any]


# Rendering.


def kubectl() -> str | None:
    """A kubectl on PATH, else one installed into this virtual environment."""
    beside = Path(sys.executable).with_name("kubectl")
    return shutil.which("kubectl") or (str(beside) if beside.exists() else None)


@functools.cache
def kustomize_problem() -> str | None:
    """Why no Kustomize can render here (None when one can)."""
    binary = kubectl()
    if binary is None:
        return "no kubectl with kustomize here (.ci/run installs one)"
    result = subprocess.run([binary, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=60)
    found = json.loads(result.stdout or "{}").get("kustomizeVersion", "")
    version = tuple(int(n) for n in re.findall(r"\d+", found)[:2])
    if version < MIN_KUSTOMIZE:
        return f"kubectl's kustomize {found or '(none)'} is older than v{MIN_KUSTOMIZE[0]}"
    return None


@functools.cache
def render(overlay: str) -> tuple[Doc, ...]:
    """``kubectl kustomize deploy/k8s/<overlay>`` (or an absolute folder): what a user's apply would send."""
    problem = kustomize_problem()
    if problem:
        pytest.skip(problem)
    binary = kubectl()
    assert binary is not None
    result = subprocess.run([binary, "kustomize", str(K8S / overlay)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"kustomize {overlay} failed:\n{result.stderr}"
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


# Validation.


@functools.cache
def _registry() -> Registry:
    """The Kubernetes definitions of K8S_VERSION, where the vendored CRD schemas point."""
    folder = resources.files(kubernetes_validate) / "kubernetes-json-schema" / f"v{K8S_VERSION}.0-local-strict"
    definitions = json.loads((folder / "_definitions.json").read_text())
    return Registry().with_resource(definitions["$id"], Resource.from_contents(definitions))


@functools.cache
def _crd_validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(CRD_SCHEMAS[api_version, kind].read_text())
    return jsonschema.Draft202012Validator(schema, registry=_registry())


def schema_errors(doc: Doc) -> list[str]:
    """What the API server of K8S_VERSION (with the CRDs installed) would refuse in ``doc``."""
    key = (doc.get("apiVersion", ""), doc.get("kind", ""))
    where = f"{key[1]}/{doc.get('metadata', {}).get('name')}"
    if key in CRD_SCHEMAS:
        errors = _crd_validator(*key).iter_errors(doc)
        return [f"{where} {'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{where}: no schema for {key[0]} {key[1]} in Kubernetes {K8S_VERSION} nor in tests/deploy/schemas"]
    except kubernetes_validate.ValidationError as exc:
        return [f"{where} {'.'.join(map(str, exc.absolute_path))}: {exc.message}"]
    return []


# Lookups.


def one(docs: tuple[Doc, ...], kind: str, name: str | None = None) -> Doc:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def kinds(docs: tuple[Doc, ...], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def pod_specs(doc: Doc) -> Iterator[tuple[str, Doc]]:
    """(label, pod spec) of each pod template of a Deployment, Job or PyTorchJob."""
    if doc["kind"] == "PyTorchJob":
        for role, replica in doc["spec"]["pytorchReplicaSpecs"].items():
            yield f"PyTorchJob {role}", replica["template"]["spec"]
    elif doc["kind"] in ("Deployment", "Job"):
        yield doc["kind"], doc["spec"]["template"]["spec"]


def workloads(docs: tuple[Doc, ...]) -> list[Doc]:
    return [d for d in docs if d["kind"] in POD_KINDS]


def trainer_pods(docs: tuple[Doc, ...]) -> list[tuple[str, Doc]]:
    return [pair for d in docs if d["kind"] in ("Job", "PyTorchJob") for pair in pod_specs(d)]


def service_pod(docs: tuple[Doc, ...]) -> Doc:
    return one(docs, "Deployment", "vaegan-service")["spec"]["template"]["spec"]


def autoscaler(docs: tuple[Doc, ...]) -> tuple[Doc, int, int]:
    """(scale target, min, max) of the one autoscaler rendered: two on one Deployment would fight."""
    found = [d for d in docs if d["kind"] in AUTOSCALERS]
    assert len(found) == 1, f"expected one autoscaler, found {[d['kind'] for d in found]}"
    low, high = AUTOSCALERS[found[0]["kind"]]
    spec = found[0]["spec"]
    return spec["scaleTargetRef"], spec[low], spec[high]


@functools.cache
def exported_series() -> dict[str, frozenset[str]]:
    """Each series name the service exports (``vaegan_requests_total``, ``..._bucket``) -> its label names,
    read from a fresh ``service.metrics.Metrics`` registry."""
    from prometheus_client.metrics import MetricWrapperBase

    from service.metrics import Metrics

    metrics = Metrics()
    labels = {m._name: m._labelnames for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)}
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}
    series = {}
    for family in metrics.registry.collect():
        assert family.name in labels, f"{family.name} is registered but not an attribute of Metrics"
        for suffix in suffixes.get(family.type, ("",)):
            series[family.name + suffix] = frozenset(labels[family.name]) | ({"le"} if suffix == "_bucket" else set())
    return series


def config(docs: tuple[Doc, ...], name: str) -> dict[str, str]:
    """The data of the ConfigMap generated as ``name`` (Kustomize adds a hash suffix)."""
    found = [d for d in kinds(docs, "ConfigMap") if re.fullmatch(rf"{name}-[a-z0-9]{{10}}", d["metadata"]["name"])]
    assert len(found) == 1, f"expected one ConfigMap {name}-<hash>, found {len(found)}"
    return dict(found[0]["data"])


def container_env(docs: tuple[Doc, ...], container: Doc) -> dict[str, str]:
    """The environment Kubernetes gives ``container``: its envFrom ConfigMaps, then its env."""
    maps = {d["metadata"]["name"]: d["data"] for d in kinds(docs, "ConfigMap")}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]])
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["configMapKeyRef"]
            env[var["name"]] = maps[ref["name"]][ref["key"]]
    return env


def expand(arguments: list[str], env: dict[str, str]) -> list[str]:
    """Kubernetes' ``$(VAR)`` expansion of command and args (an unknown variable stays as written)."""
    return [re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), a) for a in arguments]


def mounts(pod: Doc, container: Doc) -> dict[str, tuple[str, bool]]:
    """mountPath -> (claim name or volume kind, mounted read-only) for ``container`` of ``pod``."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    found = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        claim = volume.get("persistentVolumeClaim")
        source = claim["claimName"] if claim else next(k for k in volume if k != "name")
        found[mount["mountPath"]] = (source, bool(mount.get("readOnly")))
    return found
