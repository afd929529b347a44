"""The slurmrestd service on the controller's site (`rest:` in stack.yaml).

slurmrestd authenticates every request with the JWT in it (`SLURM_JWT=daemon`, the
rest_auth/jwt plugin) and passes the token on to slurmctld and slurmdbd, which hold the key and
check it. It needs neither the munge key nor the JWT key itself. It listens on its site network
and is published on the host's 127.0.0.1 only.
"""

from __future__ import annotations

from typing import Any

from hpcstack.contract import SLURM_CONF_DIR, SLURMRESTD_PORT
from hpcstack.plan.topology import Plan, SitePlan
from hpcstack.render.compose_common import healthcheck, slurm_service_base


def rest_services(plan: Plan, site: SitePlan) -> dict[str, Any]:
    rest = plan.stack.rest
    if not rest.enabled or not site.is_controller:
        return {}
    svc = slurm_service_base(plan, "slurmrestd", ["slurmrestd"])
    svc.update(
        {
            "volumes": [f"../slurm:{SLURM_CONF_DIR}:ro"],
            "ports": [f"127.0.0.1:{rest.port}:{SLURMRESTD_PORT}"],
            "networks": {"site": {"ipv4_address": site.service_ip("slurmrestd")}},
            "depends_on": {"slurmctld": {"condition": "service_healthy"}},
            # Each check logs one refused request in slurmrestd's log: not every 3 s.
            "healthcheck": healthcheck(
                ["hpcstack-healthcheck", "slurmrestd"], interval="10s", retries=12
            ),
        }
    )
    return {"slurmrestd": svc}
