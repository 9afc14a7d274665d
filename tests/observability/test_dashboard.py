"""The dashboard and its provisioning have what Grafana needs to load them."""

from __future__ import annotations

import re
from typing import Any

import yaml

from dispatch import metrics
from tests.observability.dashboard import (
    DATASOURCES,
    PROVIDERS,
    REPO,
    expressions,
    load_dashboard,
    panels,
)

COMPOSE = REPO / "docker-compose.yml"


def _datasource() -> dict[str, Any]:
    config = yaml.safe_load(DATASOURCES.read_text())
    assert config["apiVersion"] == 1
    (source,) = config["datasources"]
    return dict(source)


def _exported_names() -> set[str]:
    """Every sample name the metrics module can produce."""
    names = {metrics.QUEUE_DEPTH, metrics.JOBS_RUNNING}
    for value in vars(metrics).values():
        if hasattr(value, "_type") and hasattr(value, "_name"):
            base = value._name
            names |= {
                "counter": {f"{base}_total"},
                "gauge": {base},
                "histogram": {f"{base}_bucket", f"{base}_count", f"{base}_sum"},
            }[value._type]
    return names


def test_the_datasource_is_a_prometheus_with_a_fixed_uid() -> None:
    source = _datasource()
    assert source["type"] == "prometheus"
    assert source["uid"] and source["url"].startswith("http://")


def test_the_datasource_is_a_variable_whose_default_is_the_provisioned_one() -> None:
    # A variable, not a fixed uid, so that the dashboard imports into an existing Grafana.
    variables = {v["name"]: v for v in load_dashboard()["templating"]["list"]}
    source = variables["datasource"]
    assert source["type"] == "datasource" and source["query"] == "prometheus"
    assert source["current"]["value"] == _datasource()["uid"]


def test_destination_and_worker_variables_filter_every_query_with_those_labels() -> None:
    dashboard = load_dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    for name in ("destination", "instance"):
        assert variables[name]["type"] == "query" and variables[name]["includeAll"]
        assert "label_values(" in variables[name]["query"]["query"]
    for panel in panels(dashboard):
        for target in panel["targets"]:
            expr = target["expr"]
            if "queue_depth" in expr or "jobs_running" in expr:
                continue  # collected at scrape time from Redis: the same on every worker
            assert 'instance=~"$instance"' in expr, f"{panel['title']}: {expr}"
            if "dispatch_tasks" not in expr:
                assert 'destination=~"$destination"' in expr, f"{panel['title']}: {expr}"


def test_latency_is_shown_per_destination_and_failures_apart_from_files_not_sent() -> None:
    by_title = {p["title"]: p for p in panels(load_dashboard())}
    latency = [t["expr"] for t in by_title["C-STORE latency by destination"]["targets"]]
    assert [e.split(",")[0] for e in latency] == [
        "histogram_quantile(0.5",
        "histogram_quantile(0.95",
        "histogram_quantile(0.99",
    ]
    assert all("by (le, destination)" in e for e in latency)
    (failed,) = by_title["Failed stores by status"]["targets"]
    (not_sent,) = by_title["Files not sent"]["targets"]
    assert 'outcome="failed"' in failed["expr"] and 'outcome="not_sent"' in not_sent["expr"]


def test_every_panel_has_an_id_a_place_and_queries_on_the_chosen_datasource() -> None:
    dashboard = load_dashboard()
    uid = "${datasource}"
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    found = panels(dashboard)
    ids = [p["id"] for p in found]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in found:
        grid = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= grid.keys() and grid["x"] + grid["w"] <= 24
        assert panel["type"] and panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}
        assert panel["targets"], f"{panel['title']}: no query"
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids))
        for target in panel["targets"]:
            assert target["expr"].strip()
            assert target["datasource"]["uid"] == uid


def test_every_query_uses_only_metrics_the_workers_export() -> None:
    exported = _exported_names()
    for title, expr in expressions(load_dashboard()):
        without_labels = re.sub(r"\{[^}]*\}", "", expr)
        used = set(re.findall(r"\bdispatch_[a-z0-9_]+", without_labels))
        assert used, f"{title}: {expr} uses no dispatch metric"
        assert used <= exported, f"{title}: {sorted(used - exported)} are not exported"


def test_the_dashboard_provider_loads_the_shipped_dashboards_folder() -> None:
    config = yaml.safe_load(PROVIDERS.read_text())
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    mounted = yaml.safe_load(COMPOSE.read_text())["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounted
