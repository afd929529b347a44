"""`hpcstack scale SITE --nodes N | --add NAME | --remove NAME`: grow or shrink a running site.

It takes the same path as editing stack.yaml by hand, with the order that keeps jobs safe:

1. edit stack.yaml's text (scale_edit: comments and layout kept) and check the result like
   `validate` does; refuse an edit that would re-address a running node. Nothing is written yet.
2. removing: drain the nodes in Slurm, wait until their jobs have ended, stop and remove their
   containers, and delete them from Slurm (dynamic nodes: `scontrol delete`).
3. write stack.yaml (atomically), `generate`, then `up --site SITE`: the controller takes the new
   WireGuard peers (reload, no restart), compose starts only the new containers, and the site's
   other nodes take the new peer list with `hpcstack-tunnel reload` (no restart either).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from hpcstack.definition.load import check_text, read_text
from hpcstack.errors import ClusterError
from hpcstack.operate import lifecycle
from hpcstack.operate.generate import generate, readdressed, resolve
from hpcstack.operate.scale_edit import NodeEdit, edit_nodes
from hpcstack.operate.session import Cluster, Progress, open_cluster, quiet
from hpcstack.output.atomic import write_atomic
from hpcstack.plan.topology import make_plan
from hpcstack.plan.tunnel import wireguard_mode


@dataclass(frozen=True)
class ScaleRequest:
    site: str
    count: int | None = None
    add: str | None = None
    remove: str | None = None
    drain_timeout: int = 3600


def plan_edit(config: Path, cluster: Cluster, req: ScaleRequest) -> NodeEdit:
    """The edited definition, checked; raises before anything changes."""
    cluster.sites([req.site])  # an unknown site is named with the known ones
    edit = edit_nodes(read_text(config), req.site, req.count, req.add, req.remove)
    loaded = check_text(edit.text, str(config))
    moved = readdressed(cluster.plan, make_plan(resolve(loaded.stack)))
    if moved:
        raise ClusterError(
            f"this change would re-address running nodes ({'; '.join(moved)}); remove nodes "
            "from the end of a site's list, or edit stack.yaml and restart the site"
        )
    return edit


def drain_and_delete(
    cluster: Cluster, site_name: str, names: list[str], timeout: int, progress: Progress
) -> None:
    """Drain `names`, wait for their jobs to end, stop their containers, delete them."""
    node_list = ",".join(names)
    known = {n.name for n in cluster.nodes()}
    if known & set(names):
        progress(f"draining {node_list}")
        reason = f"reason=hpcstack scale {site_name}"
        cluster.slurm("scontrol", "update", f"nodename={node_list}", "state=DRAIN", reason)
        wait_idle(cluster, names, timeout, progress)
    site = cluster.sites([site_name])[0]
    progress(f"stopping {node_list}")
    cluster.compose(site).remove(names)
    if known & set(names):
        cluster.slurm("scontrol", "delete", f"nodename={node_list}")
        progress(f"removed {node_list} from Slurm")


def wait_idle(cluster: Cluster, names: list[str], timeout: int, progress: Progress) -> None:
    """Until no job runs on `names`; a timeout leaves them drained and changes nothing else."""
    deadline = time.monotonic() + timeout
    while True:
        busy = [
            n.name for n in cluster.nodes() if n.name in names and not n.state.startswith("IDLE")
        ]
        if not busy:
            return
        if time.monotonic() > deadline:
            raise ClusterError(
                f"jobs still run on {', '.join(busy)} after {timeout}s: the nodes stay drained "
                "and stack.yaml is unchanged; run the same command again when they end"
            )
        progress(f"waiting for the jobs on {', '.join(busy)} to end")
        time.sleep(2)


def reload_site_tunnels(cluster: Cluster, site_name: str) -> None:
    """The site's running nodes learn the new peer list (WireGuard syncconf, no restart)."""
    site = cluster.sites([site_name])[0]
    if not (site.tunneled and wireguard_mode(cluster.plan)):
        return
    running = cluster.compose(site).running()
    for node in site.nodes:
        if node.name in running:
            cluster.docker.exec_capture(running[node.name].container, ["hpcstack-tunnel", "reload"])


def scale(
    config: Path, out_dir: Path, req: ScaleRequest, progress: Progress = quiet, timeout: int = 300
) -> NodeEdit:
    cluster = open_cluster(out_dir)
    cluster.docker.require_engine()
    edit = plan_edit(config, cluster, req)
    if not edit.added and not edit.removed:
        progress(f"site {req.site} already has that many nodes: nothing to do")
        return edit
    if edit.removed:
        drain_and_delete(cluster, req.site, edit.removed, req.drain_timeout, progress)
    write_atomic(config, edit.text.encode(), config.stat().st_mode & 0o777)
    progress(f"{config}: site {req.site} {_summary(edit)}; generating")
    generate(config, out_dir)
    cluster = open_cluster(out_dir)
    lifecycle.up(cluster, [req.site], progress=progress, timeout=timeout)
    reload_site_tunnels(cluster, req.site)
    return edit


def _summary(edit: NodeEdit) -> str:
    parts = []
    if edit.added:
        parts.append(f"+{','.join(edit.added)}")
    if edit.removed:
        parts.append(f"-{','.join(edit.removed)}")
    return " ".join(parts)
