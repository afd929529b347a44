"""Pieces every compose service shares: logging, build section, the Slurm image service."""

from __future__ import annotations

from typing import Any

from hpcstack.contract import ENV_OVERLAY_NETS, ENV_OVERLAY_VIA
from hpcstack.plan.topology import Plan, SitePlan
from hpcstack.plan.tunnel import wireguard_mode

LOGGING: dict[str, Any] = {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}}
# Compose interpolates these at build time. APT_OPTIONS is empty by default; `hpcstack up` and
# the Makefile set HPCSTACK_APT_OPTIONS only for a frozen Debian mirror.
APT_OPTIONS_ARG = "${HPCSTACK_APT_OPTIONS:-}"


def build(plan: Plan, context: str, target: str | None = None) -> dict[str, Any]:
    section: dict[str, Any] = {"context": f"../images/{context}"}
    if target:
        section["target"] = target
    section["args"] = {
        "BASE_IMAGE": f"${{HPCSTACK_BASE_IMAGE:-{plan.stack.base_image}}}",
        "APT_OPTIONS": APT_OPTIONS_ARG,
    }
    return section


def slurm_service_base(plan: Plan, hostname: str, command: list[str]) -> dict[str, Any]:
    return {
        "image": plan.image("slurm"),
        "build": build(plan, "slurm", "slurm"),
        "hostname": hostname,
        "command": command,
        "restart": "unless-stopped",
        "logging": LOGGING,
    }


def overlay_route_env(plan: Plan, site: SitePlan) -> dict[str, str]:
    """Cloud-side services (slurmctld, nodes, Prometheus) reach the overlay through the hub."""
    if not wireguard_mode(plan):
        return {}
    return {
        ENV_OVERLAY_VIA: site.service_ip("tunnel"),
        ENV_OVERLAY_NETS: plan.stack.tunnel.subnet,
    }


def healthcheck(
    test: list[str],
    interval: str = "3s",
    timeout: str = "10s",
    retries: int = 40,
    start_period: str = "5s",
) -> dict[str, Any]:
    """A service's healthcheck: `test` run in the container (no shell); by default every 3 s
    for up to 2 min, the pace of the Slurm image's `hpcstack-healthcheck`."""
    return {
        "test": ["CMD", *test],
        "interval": interval,
        "timeout": timeout,
        "retries": retries,
        "start_period": start_period,
    }
