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


def test_every_panel_has_an_id_a_place_and_queries_on_the_provisioned_datasource() -> None:
    dashboard = load_dashboard()
    uid = _datasource()["uid"]
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
