"""The lab's users on running containers: `hpcstack up` runs hpcstack-users in each (no
restart, running jobs untouched); a container that starts runs it itself (the entrypoint)."""

from __future__ import annotations

from hpcstack.operate.session import Cluster, Progress, quiet
from hpcstack.plan.topology import SitePlan
from hpcstack.render.compose import compose_site

# Roles whose containers mount users/ (render/compose_users.py); the login one also gets keys.
USER_ROLES = ("slurmctld", "slurmdbd", "slurmd", "login")


def sync_running(cluster: Cluster, site: SitePlan, progress: Progress = quiet) -> list[str]:
    """Run hpcstack-users in every running container of `site` that holds users; their names."""
    services = compose_site(cluster.plan, site)["services"]
    running = cluster.compose(site).running()
    done = []
    for name, svc in services.items():
        role = svc.get("command", [""])[0]
        if role not in USER_ROLES or name not in running:
            continue
        argv = ["hpcstack-entrypoint", "users", *(["--keys"] if role == "login" else [])]
        cluster.docker.exec_capture(running[name].container, argv)
        done.append(name)
    if done:
        progress(f"users in place on {site.name}: {', '.join(done)}")
    return done
