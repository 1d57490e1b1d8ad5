"""deploy/k8s/keda: KEDA scales the service's Deployment on a metric the service really exports, as the
only autoscaler, within base/scaling.yaml's bounds, asking the Prometheus that may scrape the pods."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from k8s_manifests import K8S, SERIES, Doc, autoscaler, exported_series, kinds, one, render, schema_errors

# The trigger metadata KEDA v2.19.0's prometheus scaler reads (pkg/scalers/prometheus_scaler.go,
# prometheusMetadata): the CRD types metadata as any string map, so a misspelled key would pass it.
PROMETHEUS_KEYS = {
    "serverAddress", "query", "queryParameters", "threshold", "activationThreshold", "namespace",
    "customHeaders", "ignoreNullValues", "unsafeSsl", "awsRegion", "timeout", "identityOwner", "authModes",
}  # fmt: skip
PROMETHEUS_REQUIRED = {"serverAddress", "query", "threshold"}
# Labels the Prometheus Operator gives every series it scrapes through a ServiceMonitor.
TARGET_LABELS = {"namespace", "service", "pod", "container", "endpoint", "job", "instance"}


def scaledobject(docs: tuple[Doc, ...]) -> Doc:
    return one(docs, "ScaledObject", "vaegan-service")


def prometheus_trigger(docs: tuple[Doc, ...]) -> Doc:
    (trigger,) = [t for t in scaledobject(docs)["spec"]["triggers"] if t["type"] == "prometheus"]
    return trigger


def test_the_scaledobject_scales_the_service_deployment_alone() -> None:
    docs = render("keda")
    deployment = one(docs, "Deployment", "vaegan-service")
    target = scaledobject(docs)["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"]) == (deployment["apiVersion"], deployment["kind"])
    assert target["name"] == deployment["metadata"]["name"]
    assert kinds(docs, "HorizontalPodAutoscaler") == []  # KEDA's HPA is the only one
    autoscaler(docs)  # and nothing else scales the Deployment


def test_the_scaledobject_takes_over_the_base_autoscaler() -> None:
    """The bounds and scale-down window of base/scaling.yaml, and its HPA's name, so KEDA adopts that HPA."""
    hpa = one(render("cpu"), "HorizontalPodAutoscaler", "vaegan-service")
    keda = scaledobject(render("keda"))
    assert (keda["spec"]["minReplicaCount"], keda["spec"]["maxReplicaCount"]) == (
        hpa["spec"]["minReplicas"],
        hpa["spec"]["maxReplicas"],
    )
    config = keda["spec"]["advanced"]["horizontalPodAutoscalerConfig"]
    assert config["behavior"] == hpa["spec"]["behavior"]
    assert config["name"] == hpa["metadata"]["name"]
    assert keda["metadata"]["annotations"]["scaledobject.keda.sh/transfer-hpa-ownership"] == "true"


def test_the_trigger_is_one_the_prometheus_scaler_reads() -> None:
    trigger = prometheus_trigger(render("keda"))
    metadata = trigger["metadata"]
    assert PROMETHEUS_REQUIRED <= set(metadata) <= PROMETHEUS_KEYS
    assert float(metadata["threshold"]) > 0
    assert metadata["ignoreNullValues"] == "false"  # no answer holds the replicas, never scales to the minimum
    assert trigger["metricType"] == "AverageValue"  # the query's total divided by the threshold: replicas wanted


def test_the_query_asks_for_a_metric_the_service_exports_in_its_namespace() -> None:
    docs = render("keda")
    query = prometheus_trigger(docs)["metadata"]["query"]
    namespace = one(docs, "Deployment", "vaegan-service")["metadata"]["namespace"]
    series = exported_series()
    selectors = SERIES.findall(query)
    assert selectors, query
    for name, matchers in selectors:
        assert name in series, f"{name} is not exported by service.metrics"
        used = dict(re.findall(r'(\w+)\s*=~?\s*"([^"]*)"', matchers))
        assert set(used) <= series[name] | TARGET_LABELS, query
        assert used.get("namespace") == namespace, "the query must count this namespace's pods"
    # KEDA refuses an answer of several series ("returned multiple elements"): one total, no `by`.
    assert query.startswith("sum(") and " by " not in query and "without" not in query


def test_keda_asks_the_prometheus_that_may_scrape_the_pods() -> None:
    docs = render("keda")
    address = urlsplit(prometheus_trigger(docs)["metadata"]["serverAddress"])
    service, namespace, *_ = (address.hostname or "").split(".")
    assert service == "prometheus-operated"  # the Prometheus Operator's service for its Prometheus pods
    scrapers = [
        source["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for rule in one(docs, "NetworkPolicy", "vaegan-service")["spec"]["ingress"]
        if [p["port"] for p in rule["ports"]] == ["metrics"]
        for source in rule["from"]
    ]
    assert scrapers == [namespace]


def test_the_scaledobject_composes_with_the_gpu_overlay(tmp_path: Path) -> None:
    """docs/scaling.md's instruction for GPUs: the keda overlay with ../gpu in place of ../cpu."""
    overlay = (K8S / "keda" / "kustomization.yaml").read_text()
    folders = {"../cpu": K8S / "gpu", "scaledobject": K8S / "keda" / "scaledobject"}
    for relative, folder in folders.items():
        assert f"  - {relative}\n" in overlay
        overlay = overlay.replace(f"  - {relative}\n", f"  - {os.path.relpath(folder, tmp_path)}\n")  # never absolute
    (tmp_path / "kustomization.yaml").write_text(overlay)
    docs = render(str(tmp_path))
    assert [e for d in docs for e in schema_errors(d)] == []
    target, low, high = autoscaler(docs)
    assert (target["name"], low, high) == ("vaegan-service", *autoscaler(render("gpu"))[1:])
    (container,) = one(docs, "Deployment", "vaegan-service")["spec"]["template"]["spec"]["containers"]
    assert "nvidia.com/gpu" in container["resources"]["limits"]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "scaleTargetRef", "name"), None),  # required
        (("spec", "triggers", 0, "metadata"), None),  # required
        (("spec", "minReplicaCount"), "2"),  # an integer
        (("spec", "triggers", 0, "metricTypes"), "AverageValue"),  # no such field
        (("spec", "advanced", "horizontalPodAutoscalerConfig", "behavior", "scaleDown", "policies"), "x"),
    ],
)
def test_the_check_refuses_a_broken_scaledobject(path: tuple[str | int, ...], value: object) -> None:
    """The vendored schema itself, down to the Kubernetes HPA behavior it refers to."""
    doc = copy.deepcopy(scaledobject(render("keda")))
    assert schema_errors(doc) == []
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    assert schema_errors(doc) != []
