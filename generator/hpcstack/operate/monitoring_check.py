"""Check generated dashboards against a live Prometheus: every panel query must return data.

Reusable against any Prometheus base URL (the test Prometheus in tests/test_monitoring.py, the
running cluster's through a published or tunnelled port). Grafana's variables are replaced by
values Prometheus understands before the query is sent to /api/v1/query.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any, NamedTuple

from hpcstack.render.grafana import build_dashboard, panel_queries
from hpcstack.render.grafana_panels import DASHBOARDS

GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "${datasource}": "",
    "$datasource": "",
}


class EmptyPanel(NamedTuple):
    """A dashboard panel whose query returns nothing (or fails) against a live Prometheus."""

    dashboard: str
    panel: str
    expr: str
    error: str = ""

    def format(self) -> str:
        why = self.error or "no series"
        return f"{self.dashboard} / {self.panel}: {why}: {self.expr}"


def promql(expr: str) -> str:
    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, value)
    return expr


def query(base_url: str, expr: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Instant query; the result vector (or a scalar as one sample). Raises on API errors."""
    url = f"{base_url.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        body = json.load(resp)
    if body.get("status") != "success":
        raise RuntimeError(f"{body.get('errorType')}: {body.get('error')}")
    data = body["data"]
    if data["resultType"] in ("scalar", "string"):
        return [{"metric": {}, "value": data["result"]}]
    result: list[dict[str, Any]] = data["result"]
    return result


def empty_panels(
    base_url: str, dashboards: dict[str, dict[str, Any]] | None = None
) -> list[EmptyPanel]:
    """Every panel query of every dashboard that returns nothing (or fails)."""
    boards = dashboards or {slug: build_dashboard(slug) for slug in DASHBOARDS}
    out = []
    for slug, board in sorted(boards.items()):
        for title, expr in panel_queries(board):
            try:
                if not query(base_url, promql(expr)):
                    out.append(EmptyPanel(slug, title, expr))
            except (OSError, RuntimeError, ValueError) as exc:
                out.append(EmptyPanel(slug, title, expr, str(exc)))
    return out
