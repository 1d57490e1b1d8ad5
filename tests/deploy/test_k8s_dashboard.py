"""The Grafana dashboard: compose's file, shipped to Kubernetes as a ConfigMap for Grafana's sidecar,
with a `model` variable that filters exactly the series that carry a model label."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from k8s_manifests import OVERLAYS, REPO, SERIES, exported_series, one, render

DASHBOARD = REPO / "docker" / "grafana" / "dashboards" / "vaegan.json"
MODEL_FILTER = 'model=~"$model"'
LAST_APPLIED_LIMIT = 256 * 1024  # bytes of all annotations; client-side apply copies the object into one


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def targets() -> Iterator[tuple[str, dict[str, Any]]]:
    """(panel title, target) of every query of the dashboard."""
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_gets_the_compose_dashboard_for_grafanas_sidecar(overlay: str) -> None:
    config_map = one(render(overlay), "ConfigMap", "vaegan-dashboard")  # no hash: old versions would pile up
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["data"] == {DASHBOARD.name: DASHBOARD.read_text()}
    assert len(json.dumps(config_map)) < LAST_APPLIED_LIMIT


def test_the_dashboard_declares_the_model_variable() -> None:
    (variable,) = [v for v in dashboard()["templating"]["list"] if v["name"] == "model"]
    query = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["query"])
    assert query, variable["query"]
    metric, label = query.groups()
    assert label == "model" and "model" in exported_series()[metric]
    assert variable["definition"] == variable["query"]
    # Several models at once, and "All" as a regex that also matches a model not yet listed.
    assert variable["multi"] and variable["includeAll"] and variable["allValue"] == ".*"


def test_the_model_filter_is_on_exactly_the_series_with_a_model_label() -> None:
    series = exported_series()
    filtered = 0
    for title, target in targets():
        selectors = SERIES.findall(target["expr"])
        assert selectors, title
        for name, matchers in selectors:
            assert name in series, f"{title}: {name} is not exported by service.metrics"
            assert (MODEL_FILTER in matchers) == ("model" in series[name]), f"{title}: {name}{{{matchers}}}"
            filtered += MODEL_FILTER in matchers
    assert filtered >= 6  # model info and load time, inference latency, batch sizes, queues, rejections


def test_each_legend_names_labels_its_query_keeps() -> None:
    series = exported_series()
    for title, target in targets():
        expr = target["expr"]
        labels = frozenset().union(*(series[name] for name, _ in SERIES.findall(expr)))
        grouped = {g.strip() for clause in re.findall(r"\bby \(([^)]*)\)", expr) for g in clause.split(",")}
        assert grouped <= labels, f"{title}: grouped by a label its series lack"
        kept = grouped - {"le"} if grouped else labels
        assert set(re.findall(r"\{\{(\w+)\}\}", target["legendFormat"])) <= kept, title
