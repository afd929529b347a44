"""The lab users' part of compose/<cloud>.yml: the login service, and the users/ mount every
Slurm container reads (hpcstack-users makes the same accounts in each)."""

from __future__ import annotations

from typing import Any

from hpcstack.contract import (
    LOGIN_HOST_KEY_SECRET,
    MUNGE_KEY_SECRET,
    SHARED_DIR,
    SLURM_CONF_DIR,
    SSHD_PORT,
    USERS_DIR,
    USERS_PUB_DIR,
)
from hpcstack.plan.topology import Plan, SitePlan
from hpcstack.render.compose_common import healthcheck, overlay_route_env, slurm_service_base
from hpcstack.render.compose_fs import use_shared_fs

USERS_VOLUME = f"../users:{USERS_DIR}:ro"


def login_service(plan: Plan, site: SitePlan) -> dict[str, Any]:
    """Key-only sshd for the lab's users, with the Slurm client (configless config, munge)."""
    svc = slurm_service_base(plan, "login", ["login"])
    env = overlay_route_env(plan, site)
    if env:  # srun from the login service reaches the nodes over the overlay
        svc["cap_add"] = ["NET_ADMIN"]
        svc["environment"] = env
    svc.update(
        {
            "secrets": [
                {"source": "munge_key", "target": MUNGE_KEY_SECRET},
                {"source": "login_host_key", "target": LOGIN_HOST_KEY_SECRET},
            ],
            "volumes": [
                f"../slurm:{SLURM_CONF_DIR}:ro",
                USERS_VOLUME,
                f"../secrets/users/pub:{USERS_PUB_DIR}:ro",
                f"shared:{SHARED_DIR}",
            ],
            "ports": [f"{plan.stack.login.address}:{plan.stack.login.port}:{SSHD_PORT}"],
            "networks": {"site": {"ipv4_address": site.service_ip("login")}},
            "depends_on": {"slurmctld": {"condition": "service_healthy"}},
            "healthcheck": healthcheck(["hpcstack-healthcheck", "login"]),
        }
    )
    use_shared_fs(plan, svc)  # /home and /shared as on the nodes
    return svc


def add_users(plan: Plan, site: SitePlan, doc: dict[str, Any]) -> None:
    """users/ into every service that runs Slurm as a lab user would see it; the login service
    on the controller's site."""
    for svc in doc["services"].values():
        if svc.get("command", [""])[0] in ("slurmctld", "slurmdbd", "slurmd"):
            svc["volumes"].append(USERS_VOLUME)
    if site.is_controller and plan.stack.login.enabled:
        doc["services"]["login"] = login_service(plan, site)
        doc["secrets"]["login_host_key"] = {"file": "../secrets/users/login_host_ed25519_key"}
