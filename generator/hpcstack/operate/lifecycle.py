"""Up, down and waiting: start sites in order, apply controller changes, drain, wait for nodes.

`up` starts the controller's site first, applies what changed on the running controller (new
WireGuard peers, `scontrol reconfigure`, Prometheus reload) and waits until every node of the
started sites is ready in slurmctld's view. On a cold start (no slurmctld running) every site
starts at once: their configuration is already the controller's, and nodes retry until it
answers. `down --site` drains a local site first.

On a workstation (`--site lab`, the controller on another host: see session.py) the same
commands start and stop only this host's containers; readiness, draining and removing nodes are
asked of the controller through the site's own node containers, over the tunnel. Applying new
peers or Slurm configuration to the controller is the controller host's job (`hpcstack up
--site <controller site>` there).
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hpcstack.errors import ClusterError, ToolError
from hpcstack.operate import diagnose, lab_users
from hpcstack.operate.accounting import apply_accounting
from hpcstack.operate.observed import NodeState
from hpcstack.operate.session import Cluster, Progress, quiet
from hpcstack.plan.topology import SitePlan
from hpcstack.render.compose import compose_site

APPLIED_SLURM = ".hpcstack/applied-slurm.sha256"


def build(cluster: Cluster, sites: list[SitePlan], progress: Progress = quiet) -> None:
    args = cluster.build_args()
    for site in sites:
        progress(f"building images for site {site.name} (minutes the first time, cached after)")
        cluster.compose(site).build(args)


def pull(cluster: Cluster, sites: list[SitePlan], progress: Progress = quiet) -> None:
    for site in sites:
        progress(f"pulling images for site {site.name}")
        cluster.compose(site).pull()


def up(
    cluster: Cluster, names: list[str] | None, progress: Progress = quiet, timeout: int = 300
) -> None:
    targets = cluster.sites(names)
    ordered = sorted(targets, key=lambda s: not s.is_controller)  # controller site first
    if cluster.workstation():
        progress(
            f"workstation: the controller is not on {cluster.engine_name()}; starting "
            f"{', '.join(s.name for s in targets)} and asking slurmctld through its nodes"
        )
    elif cluster.plan.controller not in targets:
        # A site joins a running controller: new peers, partitions and gres.conf first,
        # so its nodes register against the new configuration.
        apply_controller_changes(cluster, progress)
    if len(ordered) > 1 and ordered[0].is_controller and not controller_running(cluster):
        # A cold start: every site's configuration is already the one the controller will
        # start with, and nodes retry until it answers, so all sites start at once.
        with ThreadPoolExecutor(max_workers=len(ordered)) as pool:
            for done in [pool.submit(_start_site, cluster, s, progress, timeout) for s in ordered]:
                done.result()
        apply_controller_changes(cluster, progress)
    else:
        for site in ordered:
            _start_site(cluster, site, progress, timeout)
            if site.is_controller:
                apply_controller_changes(cluster, progress)
    wanted = [n.name for s in targets for n in s.nodes]
    wait_nodes_ready(cluster, wanted, progress=progress, timeout=timeout)


def controller_running(cluster: Cluster) -> bool:
    return "slurmctld" in cluster.compose(cluster.plan.controller).running()


def _start_site(cluster: Cluster, site: SitePlan, progress: Progress, timeout: int) -> None:
    progress(f"starting site {site.name}")
    services, skipped = startable_services(cluster, site)
    for svc, image in skipped:
        progress(f"skipping {svc}: image {image} is neither here nor pullable")
    try:
        cluster.compose(site).up(services=services, wait_timeout=timeout)
    except ToolError as exc:
        raise diagnose.explain(cluster, site, exc) from None
    # Added or removed lab users reach containers that were already running.
    lab_users.sync_running(cluster, site, progress)


def startable_services(cluster: Cluster, site: SitePlan) -> tuple[list[str], list[tuple[str, str]]]:
    """Every service, less those whose upstream image (Grafana, dcgm-exporter: no `build:`)
    cannot be had here; an air-gapped host runs the rest and says what it left out."""
    services: list[str] = []
    skipped: list[tuple[str, str]] = []
    docker = cluster.docker
    for name, svc in compose_site(cluster.plan, site)["services"].items():
        image = svc.get("image", "")
        if "build" in svc or not image or docker.image_exists(image) or docker.try_pull(image):
            services.append(name)
        else:
            skipped.append((name, image))
    return services, skipped


def apply_controller_changes(cluster: Cluster, progress: Progress) -> None:
    """New peers and new Slurm config reach the running controller without a restart."""
    running = cluster.compose(cluster.plan.controller).running()
    docker = cluster.docker
    if "tunnel" in running:
        docker.exec_capture(running["tunnel"].container, ["hpcstack-tunnel", "reload"])
    if "sshd" in running:
        # ssh mode: a new site's key line; sshd reads authorized_keys at each login.
        docker.exec_capture(running["sshd"].container, ["hpcstack-entrypoint", "sshd-keys"])
    digest = config_digest(cluster.out_dir / "slurm")
    applied = cluster.out_dir / APPLIED_SLURM
    previous = applied.read_text().strip() if applied.exists() else ""
    if previous and previous != digest and "slurmctld" in running:
        progress("applying the new Slurm configuration (scontrol reconfigure)")
        cluster.slurm("scontrol", "reconfigure")
    applied.parent.mkdir(parents=True, exist_ok=True)
    applied.write_text(digest + "\n")
    if "slurmctld" in running:
        apply_accounting(cluster, progress)
    if "prometheus" in running:
        # New scrape targets: Prometheus re-reads its mounted configuration on SIGHUP. Sent from
        # inside (tini, PID 1, forwards it): `docker kill -s HUP` would mark the container as
        # stopped by hand, and `restart: unless-stopped` would then skip it after a reboot.
        docker.exec_capture(running["prometheus"].container, ["sh", "-c", "kill -HUP 1"])


def down(
    cluster: Cluster,
    names: list[str] | None,
    volumes: bool = False,
    progress: Progress = quiet,
    drain_timeout: int = 300,
) -> None:
    targets = cluster.sites(names)
    whole = not names or {s.name for s in targets} == {s.name for s in cluster.plan.sites}
    if not whole:
        for site in targets:
            if not site.is_controller:
                drain_and_remove(cluster, site, progress, drain_timeout)
    for site in sorted(targets, key=lambda s: s.is_controller):  # controller site last
        progress(f"stopping site {site.name}")
        cluster.compose(site).down(volumes=volumes)


def drain_and_remove(
    cluster: Cluster, site: SitePlan, progress: Progress, drain_timeout: int
) -> None:
    try:
        known = {n.name for n in cluster.nodes()}
    except ToolError as exc:
        # Controller unreachable (not running, or the tunnel is down): nothing to tell it.
        progress(f"not draining {site.name}: {exc.summary or exc}")
        return
    names = [n.name for n in site.nodes if n.name in known]
    if not names:
        return
    progress(f"draining {', '.join(names)} (through the controller)")
    node_list = ",".join(names)
    reason = f"reason=hpcstack down --site {site.name}"
    cluster.slurm("scontrol", "update", f"nodename={node_list}", "state=DRAIN", reason)
    wait_drained(cluster, names, progress, drain_timeout)
    remote = cluster.workstation()
    if not remote:
        cluster.compose(site).down()
    try:
        # On a workstation the node containers are the only way to the controller: remove the
        # drained nodes from Slurm first, then stop them.
        cluster.slurm("scontrol", "delete", f"nodename={node_list}")
        progress(f"removed {node_list} from Slurm")
    except ToolError:
        # Jobs still hold the nodes: they stay drained and are removed when free.
        progress(f"nodes of {site.name} still hold jobs: left drained")


def wait_drained(cluster: Cluster, names: list[str], progress: Progress, timeout: int) -> None:
    """Running jobs finish first; after `timeout` seconds the site stops regardless."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = [
            n.name
            for n in cluster.nodes()
            if n.name in names and not n.state.startswith(("IDLE", "DOWN"))
        ]
        if not busy:
            return
        progress(f"waiting for jobs to finish on {', '.join(busy)}")
        time.sleep(2)
    progress(f"drain timeout ({timeout}s): stopping with jobs still running")


def wait_nodes_ready(
    cluster: Cluster, names: list[str], progress: Progress = quiet, timeout: int = 300
) -> list[NodeState]:
    deadline = time.monotonic() + timeout
    last: list[NodeState] = []
    while True:
        try:
            last = cluster.nodes()
        except ToolError:
            last = []
        by_name = {n.name: n for n in last}
        missing = [n for n in names if n not in by_name or not by_name[n].ready]
        if not missing:
            progress(f"all {len(names)} nodes ready")
            return last
        if time.monotonic() > deadline:
            detail = ", ".join(
                f"{n}={by_name[n].state if n in by_name else 'not registered'}" for n in missing
            )
            raise ClusterError(f"nodes not ready after {timeout}s: {detail}")
        progress(f"waiting for {len(missing)} of {len(names)} nodes ({', '.join(missing)})")
        time.sleep(1)


def config_digest(directory: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(directory.glob("*.conf")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()
