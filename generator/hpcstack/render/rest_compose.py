"""The slurmrestd service on the controller's site (`rest:` in stack.yaml).

One container, two daemons under tini: nginx (the REST gateway, on the published port) checks
every request's JWT with the cluster's HS256 key and answers 401 itself to a missing, expired or
forged token; slurmrestd listens only on a unix socket behind it (`SLURM_JWT=daemon`, the
rest_auth/jwt plugin) and passes the token on to slurmctld and slurmdbd, which check it again.
So this service gets the JWT key (for nginx; slurmrestd's user cannot read it) and no munge key.
Published on the host's 127.0.0.1 only.
"""

from __future__ import annotations

from typing import Any

from hpcstack.contract import JWT_KEY_SECRET, SLURM_CONF_DIR, SLURMRESTD_PORT
from hpcstack.plan.topology import Plan, SitePlan
from hpcstack.render.compose_common import healthcheck, slurm_service_base


def rest_services(plan: Plan, site: SitePlan) -> dict[str, Any]:
    rest = plan.stack.rest
    if not rest.enabled or not site.is_controller:
        return {}
    svc = slurm_service_base(plan, "slurmrestd", ["slurmrestd"])
    svc.update(
        {
            "secrets": [{"source": "jwt_key", "target": JWT_KEY_SECRET}],
            "volumes": [f"../slurm:{SLURM_CONF_DIR}:ro"],
            "ports": [f"127.0.0.1:{rest.port}:{SLURMRESTD_PORT}"],
            "networks": {"site": {"ipv4_address": site.service_ip("slurmrestd")}},
            "depends_on": {"slurmctld": {"condition": "service_healthy"}},
            # Each check logs one refused request in each daemon's log: not every 3 s.
            "healthcheck": healthcheck(
                ["hpcstack-healthcheck", "slurmrestd"], interval="10s", retries=12
            ),
        }
    )
    return {"slurmrestd": svc}
