"""The shared filesystem in compose: the GlusterFS server on the cloud site, the client side any
Slurm-image service turns on, and a site's `mounts:` as bind mounts on its nodes.

See docs/decisions/sharedfs-0001-glusterfs-over-the-overlay.md for why GlusterFS.
"""

from __future__ import annotations

from typing import Any

from hpcstack.contract import (
    ENV_FS_ALLOW,
    ENV_FS_SERVER,
    ENV_FS_WAIT,
    FS_BRICK_DIR,
    SHARED_DIR,
)
from hpcstack.plan.topology import Plan, SitePlan
from hpcstack.render.compose_common import healthcheck, overlay_route_env, slurm_service_base

FS_STATE_DIR = "/var/lib/glusterd"  # glusterd's own state (peers, volume definitions)


def fs_server_addr(plan: Plan) -> str:
    """Where every client mounts from: the fs service's address on the cloud site's network;
    tunneled nodes reach it through the overlay (they route the cloud subnet into wg0)."""
    return plan.controller.service_ip("fs")


def fs_server(plan: Plan, site: SitePlan) -> dict[str, Any]:
    """The GlusterFS server: glusterd and one brick on a named volume that `down` keeps."""
    svc = slurm_service_base(plan, "fs", ["fs"])
    allow = [plan.stack.tunnel.subnet, site.site.subnet]
    svc.update(
        {
            # SYS_ADMIN: the brick keeps GlusterFS's trusted.* extended attributes.
            # NET_ADMIN: the route back into the overlay through the tunnel container.
            "cap_add": ["NET_ADMIN", "SYS_ADMIN"],
            "environment": {
                **overlay_route_env(plan, site),
                ENV_FS_SERVER: fs_server_addr(plan),
                ENV_FS_ALLOW: ",".join(allow),
            },
            "volumes": [
                f"fs-data:{FS_BRICK_DIR.rsplit('/', 1)[0]}",
                f"fs-state:{FS_STATE_DIR}",
            ],
            "networks": {"site": {"ipv4_address": fs_server_addr(plan)}},
            "healthcheck": healthcheck(["hpcstack-healthcheck", "fs"]),
            "stop_grace_period": "30s",
        }
    )
    return svc


def fs_server_volumes(plan: Plan) -> dict[str, Any]:
    return {
        "fs-data": {"name": f"{plan.cluster}-fs-data"},
        "fs-state": {"name": f"{plan.cluster}-fs-state"},
    }


def use_shared_fs(plan: Plan, svc: dict[str, Any]) -> None:
    """Make a Slurm-image service a client of the shared filesystem: its entrypoint mounts the
    volume and binds it onto /home and /shared (mount_shared_fs in entrypoint.sh). Any service
    of the slurm image can call this (slurmctld, nodes, a login service)."""
    if not plan.stack.shared_fs:
        return
    caps = svc.setdefault("cap_add", [])
    if "SYS_ADMIN" not in caps:
        caps.append("SYS_ADMIN")
    svc.setdefault("devices", []).append("/dev/fuse:/dev/fuse")
    env = svc.setdefault("environment", {})
    env[ENV_FS_SERVER] = fs_server_addr(plan)
    env[ENV_FS_WAIT] = str(plan.stack.storage.mount_wait)
    # The per-host Docker volume is replaced by the network filesystem.
    svc["volumes"] = [v for v in svc.get("volumes", []) if v != f"shared:{SHARED_DIR}"]


def site_mounts(site: SitePlan) -> list[dict[str, Any]]:
    """`sites[].mounts` as long-syntax binds; a missing host directory fails `up` instead of
    being created empty by Docker."""
    return [
        {
            "type": "bind",
            "source": m.source,
            "target": m.target,
            "read_only": m.read_only,
            "bind": {"create_host_path": False},
        }
        for m in site.site.mounts
    ]
