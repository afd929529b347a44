"""Why a site did not come up: the failing service's own words instead of a bare "unhealthy".

Compose reports only "container ... is unhealthy" or "exited (3)". The images' entrypoints log
one line `hpcstack-<image>: error: <what is wrong and what to do>` before they stop; this reads
the last log lines of each service that is not running and healthy (through run.docker) and
puts that line, or the last lines when there is none, into the error `up` shows.
"""

from __future__ import annotations

import re

from hpcstack.errors import ClusterError, HpcStackError, ToolError
from hpcstack.operate.session import Cluster
from hpcstack.plan.topology import SitePlan

ERROR_LINE = re.compile(r"hpcstack-[a-z-]+: error: .+")
TAIL_LINES = 40
SHOWN_LINES = 5


def failing_services(cluster: Cluster, site: SitePlan) -> list[tuple[str, str]]:
    """(service, container) of every service of the site that is not running and healthy."""
    try:
        states = cluster.compose(site).states()
    except ToolError:
        return []
    return [
        (s.service, s.container)
        for s in states
        if s.state != "running" or s.health in ("unhealthy", "starting")
    ]


def explain(cluster: Cluster, site: SitePlan, exc: ToolError) -> HpcStackError:
    """The error to show for a failed `compose up` of `site`: the services' own error lines."""
    found: list[str] = []
    for service, container in failing_services(cluster, site):
        try:
            log = cluster.docker.logs_tail(container, TAIL_LINES)
        except ToolError:
            continue
        errors = [m.group() for m in ERROR_LINE.finditer(log)]
        if errors:
            found.append(f"{service}: {errors[-1]}")
        elif log.strip():
            last = "\n".join("    " + ln for ln in log.strip().splitlines()[-SHOWN_LINES:])
            found.append(f"{service} (last lines of its log):\n{last}")
    if not found:
        return exc
    detail = "\n".join(f"  {line}" for line in found)
    return ClusterError(f"site {site.name} did not start:\n{detail}\n(compose said: {exc.summary})")
