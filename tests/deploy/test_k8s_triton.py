"""The Triton and KServe manifests of deploy/k8s/triton and deploy/k8s/kserve: valid Kubernetes
objects of the same version as the overlays, admissible in their namespace (Pod Security
"restricted"), wired to the repository vaegan-triton writes, and shown by docs/scaling.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_manifests import K8S, K8S_VERSION, REPO, Doc, mounts, pod_specs, schema_errors

from service.triton.cli import parse_args

FILES = (K8S / "triton" / "repository.yaml", K8S / "triton" / "triton.yaml", K8S / "kserve" / "inferenceservice.yaml")
NOT_VALIDATED_HERE = {("serving.kserve.io/v1beta1", "InferenceService")}  # no schema vendored; checked below


def load(path: Path) -> list[Doc]:
    """The Kubernetes objects of one manifest file, as kubectl apply -f reads them."""
    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]


OBJECTS = [doc for path in FILES for doc in load(path)]


def named(kind: str, name: str) -> Doc:
    (doc,) = [d for d in OBJECTS if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


@pytest.mark.parametrize("doc", OBJECTS, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_each_object_is_valid(doc: Doc) -> None:
    assert doc["metadata"]["namespace"] == "vaegan"
    if (doc["apiVersion"], doc["kind"]) not in NOT_VALIDATED_HERE:
        assert schema_errors(doc) == [], f"against Kubernetes {K8S_VERSION}"


def restricted(label: str, pod: dict[str, Any], containers: list[dict[str, Any]]) -> None:
    """The "restricted" Pod Security Standard's demands that a manifest can get wrong."""
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["seccompProfile"] == {
        "type": "RuntimeDefault"
    }, label
    for container in containers:
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, label
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}, label


def test_pods_meet_the_namespaces_pod_security() -> None:
    for doc in OBJECTS:
        for label, pod in pod_specs(doc):
            restricted(f"{doc['metadata']['name']} {label}", pod, pod["containers"])
    predictor = named("InferenceService", "vaegan")["spec"]["predictor"]
    restricted("InferenceService", predictor, [predictor["model"]])


def test_the_repository_job_feeds_triton_and_kserve() -> None:
    job = named("Job", "vaegan-triton-repository")["spec"]["template"]["spec"]
    (convert,) = job["containers"]
    args = parse_args(convert["command"][1:])
    assert convert["command"][0] == "vaegan-triton"
    places = mounts(job, convert)
    assert places["/models"] == ("vaegan-models", True) and str(args.bundle).startswith("/models/")
    assert places[str(args.out)] == ("vaegan-triton-repo", False) and args.kind == "gpu"
    named("PersistentVolumeClaim", "vaegan-triton-repo")

    triton = named("Deployment", "vaegan-triton")["spec"]["template"]["spec"]
    (server,) = triton["containers"]
    repository = next(a.split("=", 1)[1] for a in server["command"] if a.startswith("--model-repository="))
    assert mounts(triton, server)[repository] == ("vaegan-triton-repo", True)
    ports = {p["name"] for p in server["ports"]}
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert server[kind]["httpGet"]["port"] in ports
    service = named("Service", "vaegan-triton")
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports

    model = named("InferenceService", "vaegan")["spec"]["predictor"]["model"]
    assert model["storageUri"] == "pvc://vaegan-triton-repo/"
    assert (model["modelFormat"]["name"], model["protocolVersion"]) == ("triton", "v2")


def test_every_file_holds_objects_and_the_docs_name_it() -> None:
    """Each file is a list of objects with a kind, docs/scaling.md links it, and its restart names Triton."""
    scaling = (REPO / "docs" / "scaling.md").read_text()
    for path in FILES:
        objects = load(path)
        assert objects and all("apiVersion" in d and "kind" in d for d in objects), path
        assert str(path.relative_to(REPO)) in scaling, path
    restarted = re.findall(r"rollout restart deployment/([\w-]+)", scaling + FILES[1].read_text())
    assert restarted and set(restarted) == {named("Deployment", "vaegan-triton")["metadata"]["name"]}
