"""The dashboards' panels as data: dashboards.toml in this package, four dashboards, each a
tuple of PanelSpec (title, kind, PromQL), read and checked here at import (a malformed table
raises tables.TableError). `grafana.py` turns them into Grafana JSON; `tests/test_monitoring.py`
checks every query returns series from a live Prometheus.
"""

from __future__ import annotations

from dataclasses import dataclass

from hpcstack import tables

_TABLE = "dashboards.toml"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True)
class PanelSpec:
    kind: str  # stat, timeseries, table, bargauge
    title: str
    queries: tuple[Query, ...]
    unit: str = ""
    width: int = 8
    height: int = 8
    description: str = ""


KINDS = ("stat", "timeseries", "table", "bargauge")
_QUERY_KEYS = {"expr": str, "legend": str, "instant": bool}
_PANEL_KEYS = {
    "kind": str,
    "title": str,
    "queries": list,
    "unit": str,
    "width": int,
    "height": int,
    "description": str,
}
_DASHBOARD_KEYS = {"uid": str, "title": str, "panel": list}


def _query(where: str, entry: object, variables: dict[str, str]) -> Query:
    q = tables.entry(where, entry, _QUERY_KEYS, {"expr"})
    expr = " ".join(tables.fill(where, q["expr"], variables).split())
    return Query(expr, tables.fill(where, q.get("legend", ""), variables), q.get("instant", False))


def _panel(where: str, entry: object, variables: dict[str, str]) -> PanelSpec:
    p = tables.entry(where, entry, _PANEL_KEYS, {"kind", "title", "queries"})
    if p["kind"] not in KINDS or not p["queries"]:
        raise tables.TableError(f"{where}: want a kind of {KINDS} and a query at least")
    queries = tuple(_query(f"{where} query {i}", q, variables) for i, q in enumerate(p["queries"]))
    return PanelSpec(
        p["kind"],
        p["title"],
        queries,
        unit=p.get("unit", ""),
        width=p.get("width", 8),
        height=p.get("height", 8),
        description=p.get("description", ""),
    )


def _load() -> dict[str, tuple[str, tuple[PanelSpec, ...]]]:
    table = tables.load(__package__, _TABLE)
    variables = {k: str(v) for k, v in table.get("vars", {}).items()}
    dashboards: dict[str, tuple[str, tuple[PanelSpec, ...]]] = {}
    for i, entry in enumerate(table.get("dashboard", [])):
        d = tables.entry(f"{_TABLE} dashboard {i}", entry, _DASHBOARD_KEYS, set(_DASHBOARD_KEYS))
        if d["uid"] in dashboards or not d["panel"]:
            raise tables.TableError(f"{_TABLE} dashboard {i}: want a uid of its own and panels")
        where = f"{_TABLE} {d['uid']} panel"
        panels = tuple(_panel(f"{where} {j}", p, variables) for j, p in enumerate(d["panel"]))
        dashboards[d["uid"]] = (d["title"], panels)
    if not dashboards:
        raise tables.TableError(f"{_TABLE}: no [[dashboard]]")
    return dashboards


# uid -> (title, panels), in the table's order.
DASHBOARDS = _load()
