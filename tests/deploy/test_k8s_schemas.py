"""Every manifest of deploy/k8s, as Kustomize renders it, is one the Kubernetes API would accept."""

from __future__ import annotations

import copy

import pytest
from k8s_manifests import CRD_SCHEMAS, K8S_VERSION, OVERLAYS, Doc, one, render, schema_errors


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_manifest_is_valid(overlay: str) -> None:
    docs = render(overlay)
    assert docs, f"{overlay} rendered nothing"
    assert [e for d in docs for e in schema_errors(d)] == [], f"against Kubernetes {K8S_VERSION}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_has_the_namespace_and_the_part_of_label(overlay: str) -> None:
    for doc in render(overlay):
        meta = doc["metadata"]
        assert meta["labels"].get("app.kubernetes.io/part-of") == "vaegan", doc["kind"]
        assert doc["kind"] == "Namespace" or meta.get("namespace") == "vaegan", doc["kind"]


def test_the_overlays_render_the_custom_resources_validated_here() -> None:
    rendered = {(d["apiVersion"], d["kind"]) for o in OVERLAYS for d in render(o)}
    assert set(CRD_SCHEMAS) <= rendered


def mistyped(doc: Doc, *path: str) -> Doc:
    """``doc`` with the last key of ``path`` misspelled (a trailing 's' added)."""
    bad = copy.deepcopy(doc)
    node = bad
    for key in path[:-1]:
        node = node[key]
    node[path[-1] + "s"] = node.pop(path[-1])
    return bad


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("Deployment", ("spec", "replicas")),
        ("Deployment", ("spec", "template", "spec", "terminationGracePeriodSeconds")),
        ("PyTorchJob", ("spec", "nprocPerNode")),
        ("PyTorchJob", ("spec", "runPolicy", "backoffLimit")),
        ("ServiceMonitor", ("spec", "selector")),
    ],
)
def test_the_check_refuses_an_unknown_field(kind: str, path: tuple[str, ...]) -> None:
    """The validation itself: a misspelled field, in a built-in kind, a CRD or a pod template, is an error."""
    doc = one(render("multinode"), kind)
    assert schema_errors(doc) == []
    assert schema_errors(mistyped(doc, *path)) != []


def test_the_check_validates_a_pytorchjobs_pod_template() -> None:
    job = copy.deepcopy(one(render("multinode"), "PyTorchJob"))
    container = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    container["ports"][0]["containerPort"] = "23456"  # a string where the pod spec wants an integer
    assert any("Worker.template.spec.containers" in e for e in schema_errors(job))
