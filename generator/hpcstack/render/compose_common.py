"""Pieces every compose service shares: logging, build section, the Slurm image service."""

from __future__ import annotations

from typing import Any

from hpcstack.plan.topology import Plan

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
