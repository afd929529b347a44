"""prometheus/: the scrape configuration from the plan, plus the static rules and their tests.

Everything under templates/prometheus/ lands at the same place under prometheus/:
prometheus.yml.j2 rendered from `prometheus_config`, the rules, their promtool tests and the
dcgm-exporter counters copied (Prometheus loads every rules/*.yml, so a new rule file needs no
edit here).

Which address each exporter is scraped at is decided here, in `scrape_targets`, from the plan:
services on the controller's site by their Docker address, services on tunneled sites by an
overlay address (the tunnel is the only path from the cloud site to them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hpcstack.contract import EXPORTER_PORTS, METRICS_TOKEN_PATH, SLURMCTLD_PORT
from hpcstack.definition.model import duration_seconds
from hpcstack.plan.topology import Plan, SitePlan
from hpcstack.render import Artifact, renderer
from hpcstack.render._tree import render_tree
from hpcstack.render.slurm import metrics_auth

NATIVE_ENDPOINTS = ("jobs", "nodes", "partitions", "scheduler")
# The native endpoint is an RPC into slurmctld: Slurm advises 60-120 s between scrapes.
NATIVE_MIN_INTERVAL_S = 60
RULE_FILES = "rules/*.yml"  # relative to prometheus.yml


@dataclass(frozen=True)
class Target:
    address: str
    labels: dict[str, str] = field(default_factory=dict)


def exporter_addr(plan: Plan, site: SitePlan, service: str) -> str:
    """Where Prometheus (on the controller's site) reaches `service` of `site`."""
    return plan.site_exporter_addr(site, service)


def gpu_sites(plan: Plan) -> list[SitePlan]:
    return [s for s in plan.sites if any(n.gpu_indices for n in s.nodes)]


def native_metrics(plan: Plan) -> bool:
    """Slurm serves /metrics (MetricsType=metrics/openmetrics) from 25.11 on."""
    major, minor = (int(x) for x in plan.stack.cluster.slurm_release.split("."))
    return (major, minor) >= (25, 11)


def metrics_token(plan: Plan) -> bool:
    """Prometheus scrapes Slurm's /metrics with a token (minted beside slurmctld)."""
    return plan.stack.monitoring.enabled and native_metrics(plan) and metrics_auth(plan)


def reachable_sites(plan: Plan) -> list[SitePlan]:
    """Sites whose exporters Prometheus can reach: all over WireGuard; in reverse-SSH mode the
    tunnel carries Slurm's ports only, so just the controller's own site."""
    if plan.stack.tunnel.mode == "ssh":
        return [s for s in plan.sites if not s.tunneled]
    return list(plan.sites)


def scrape_targets(plan: Plan) -> dict[str, list[Target]]:
    """Every scrape job's targets, by job name."""
    mon = plan.stack.monitoring
    ctl = plan.controller
    reachable = reachable_sites(plan)
    jobs: dict[str, list[Target]] = {
        "prometheus": [Target(f"127.0.0.1:{EXPORTER_PORTS['prometheus']}")],
        "node-exporter": [
            Target(
                f"{exporter_addr(plan, s, 'node-exporter')}:{EXPORTER_PORTS['node-exporter']}",
                {"site": s.name},
            )
            for s in reachable
        ],
        "slurm-exporter": [
            Target(f"{ctl.service_ip('slurm-exporter')}:{EXPORTER_PORTS['slurm-exporter']}")
        ],
    }
    if native_metrics(plan):
        jobs["slurmctld"] = [
            Target(
                f"{plan.controller_addr}:{SLURMCTLD_PORT}",
                {"endpoint": e, "__metrics_path__": f"/metrics/{e}"},
            )
            for e in NATIVE_ENDPOINTS
        ]
    gpu_targets = [s for s in gpu_sites(plan) if s in reachable]
    if mon.dcgm and gpu_targets:
        jobs["dcgm-exporter"] = [
            Target(
                f"{exporter_addr(plan, s, 'dcgm-exporter')}:{EXPORTER_PORTS['dcgm-exporter']}",
                {"site": s.name},
            )
            for s in gpu_targets
        ]
    return jobs


def dcgm_relabel(plan: Plan) -> list[dict[str, Any]]:
    """One `node` label on every GPU series: the Slurm node that owns the GPU index on its site.

    dcgm-exporter labels series with the host name (`Hostname`, `hostname` on newer builds),
    but one host may run several Slurm nodes with a GPU subset each, so the GPU index decides.
    """
    rules: list[dict[str, Any]] = [
        {"source_labels": ["hostname"], "regex": "(.+)", "target_label": "node"},
        {"source_labels": ["Hostname"], "regex": "(.+)", "target_label": "node"},
    ]
    for site in gpu_sites(plan):
        for node in site.nodes:
            if not node.gpu_indices:
                continue
            indices = "|".join(str(i) for i in node.gpu_indices)
            rules.append(
                {
                    "source_labels": ["site", "gpu"],
                    "regex": f"{re.escape(site.name)};({indices})",
                    "target_label": "node",
                    "replacement": node.name,
                }
            )
    rules.append({"action": "labeldrop", "regex": "Hostname|hostname"})
    return rules


def _static_configs(targets: list[Target]) -> list[dict[str, Any]]:
    out = []
    for t in targets:
        cfg: dict[str, Any] = {"targets": [t.address]}
        if t.labels:
            cfg["labels"] = dict(sorted(t.labels.items()))
        out.append(cfg)
    return out


def prometheus_config(plan: Plan) -> dict[str, Any]:
    mon = plan.stack.monitoring
    targets = scrape_targets(plan)
    scrape_configs = []
    for job in ("prometheus", "node-exporter", "slurmctld", "slurm-exporter", "dcgm-exporter"):
        if job not in targets:
            continue
        cfg: dict[str, Any] = {"job_name": job, "static_configs": _static_configs(targets[job])}
        if job == "slurmctld" and duration_seconds(mon.scrape_interval) < NATIVE_MIN_INTERVAL_S:
            cfg["scrape_interval"] = f"{NATIVE_MIN_INTERVAL_S}s"
        if job == "slurmctld" and metrics_token(plan):
            # Read at every scrape: the renewed token is used without a reload.
            cfg["authorization"] = {"type": "Bearer", "credentials_file": METRICS_TOKEN_PATH}
        if job == "dcgm-exporter":
            cfg["metric_relabel_configs"] = dcgm_relabel(plan)
        scrape_configs.append(cfg)
    return {
        "global": {
            "scrape_interval": mon.scrape_interval,
            "evaluation_interval": mon.scrape_interval,
            "external_labels": {"cluster": plan.cluster},
        },
        "rule_files": [RULE_FILES],
        "scrape_configs": scrape_configs,
    }


@renderer("prometheus")
def render_prometheus(plan: Plan) -> Iterable[Artifact]:
    if not plan.stack.monitoring.enabled:
        return []
    return list(render_tree("prometheus", {"config": prometheus_config(plan)}))
