"""The shipped dashboard and provisioning, read as Grafana reads them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "grafana" / "dashboards" / "dispatch.json"
DATASOURCES = REPO / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = REPO / "grafana" / "provisioning" / "dashboards" / "dispatch.yml"

#: Grafana's interval variables, as a test with a one-second scrape can evaluate them, and
#: the dashboard's own variables set to "All".
GRAFANA_VARIABLES = {
    "$__rate_interval": "5s",
    "$__interval": "1s",
    "$__range": "1m",
    "$destination": ".*",
    "$instance": ".*",
}


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside rows included."""
    found: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """``(panel title, PromQL)`` of every target, Grafana's variables replaced."""
    out = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            out.append((panel["title"], expr))
    return out
