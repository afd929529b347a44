"""`hpcstack up | down | status | exec | demo | images`: act on a generated directory."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.table import Table

from hpcstack.cli.main import print_warnings
from hpcstack.cli.options import dir_option, err, out
from hpcstack.definition.checks import check_stack
from hpcstack.definition.load import load_stack
from hpcstack.errors import ClusterError, HpcStackError
from hpcstack.operate import lifecycle
from hpcstack.operate.demo import demo as run_demo
from hpcstack.operate.observed import Status
from hpcstack.operate.session import Cluster, open_cluster
from hpcstack.operate.status import status as cluster_status
from hpcstack.plan.gpu import uses_auto
from hpcstack.plan.topology import Plan
from hpcstack.render.compose import built_images

site_option = click.option(
    "--site", "sites", multiple=True, help="Only this site (repeatable). Default: every site."
)


def _cluster(out_dir: Path, sites: tuple[str, ...] = ()) -> Cluster:
    cluster = open_cluster(out_dir, site_names=list(sites))
    _warn_if_definition_changed(out_dir, cluster.plan)
    cluster.docker.require_engine()
    return cluster


def _warn_if_definition_changed(out_dir: Path, plan: Plan) -> None:
    """Commands act on what was generated; say so when stack.yaml says something else."""
    config = out_dir / "stack.yaml"
    if not config.exists():
        return
    try:
        current = load_stack(config)
    except HpcStackError:
        err.print(f"[yellow]note:[/] {config} is not valid now; acting on the generated output")
        return
    if uses_auto(current):
        return  # `gpus: auto` is resolved on the GPU host: nothing to compare here
    if current != plan.stack:
        err.print(
            f"[yellow]note:[/] {config} changed since the last `hpcstack generate`; acting on "
            "what was generated. Run `hpcstack generate` (or `make up`) to apply the change."
        )


class _Progress:
    """Prints each step once, with the time since start, on stderr."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.last = ""

    def __call__(self, message: str) -> None:
        if message != self.last:
            err.print(f"[dim]{time.monotonic() - self.start:6.1f}s[/] {message}")
            self.last = message


@click.command()
@dir_option
@site_option
@click.option("--build/--no-build", default=True, show_default=True, help="Build images first.")
@click.option("--pull", is_flag=True, help="Pull prebuilt images from the registry instead.")
@click.option("--timeout", default=300, show_default=True, help="Seconds to wait for readiness.")
def up(out_dir: Path, sites: tuple[str, ...], build: bool, pull: bool, timeout: int) -> None:
    """Build or pull images, start the sites, wait until every node is idle.

    On a workstation (`--site lab`, the controller on another host) it starts this host's
    containers and waits until the controller sees the site's nodes idle, asked through them."""
    cluster = _cluster(out_dir, sites)
    print_warnings([p for p in check_stack(cluster.plan.stack) if p.level == "warning"])
    targets = cluster.sites(list(sites))
    progress = _Progress()
    if pull:
        lifecycle.pull(cluster, targets, progress)
    elif build:
        lifecycle.build(cluster, targets, progress)
    lifecycle.up(cluster, list(sites), progress=progress, timeout=timeout)
    err.print("[green]ready.[/] next: hpcstack status | hpcstack demo | hpcstack exec -- sinfo")


@click.command()
@dir_option
@site_option
@click.option("--volumes", is_flag=True, help="Also delete the database and controller state.")
@click.option(
    "--drain-timeout",
    default=300,
    show_default=True,
    help="With --site: seconds to let running jobs finish before the site stops.",
)
def down(out_dir: Path, sites: tuple[str, ...], volumes: bool, drain_timeout: int) -> None:
    """Stop sites (a single local site is drained and its nodes removed first).

    On a workstation (`--site lab`) the drain and the removal go to the controller through the
    site's nodes; with the controller unreachable the site just stops."""
    cluster = _cluster(out_dir, sites)
    lifecycle.down(
        cluster, list(sites), volumes=volumes, progress=_Progress(), drain_timeout=drain_timeout
    )
    kept = "" if volumes else " (volumes kept: job history and queued jobs survive)"
    err.print(f"stopped{kept}.")


@click.command()
@dir_option
@site_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
def status(out_dir: Path, sites: tuple[str, ...], as_json: bool) -> None:
    """Sites and their services, nodes, jobs and the tunnel.

    On a workstation (`--site lab`): this site's containers, its tunnel as its nodes see it, and
    its nodes' Slurm state (asked of the controller through them, over the tunnel)."""
    cluster = _cluster(out_dir, sites)
    st = cluster_status(cluster)
    if as_json:
        click.echo(json.dumps(st.to_dict(), indent=2, sort_keys=True))
    else:
        print_status(st, cluster.plan.stack.tunnel.mode)
    if not st.controller_up:
        sys.exit(1)


JOBS_SHOWN = 30  # rows of the jobs table; `--json` and squeue have every job


def jobs_table(st: Status) -> Table:
    """Running jobs first, then the rest in squeue's order, at most JOBS_SHOWN rows; the title
    counts every job by state (a queue of 10,000 prints in a blink, not in 10 s)."""
    counts: dict[str, int] = {}
    for j in st.jobs:
        counts[j.state.lower()] = counts.get(j.state.lower(), 0) + 1
    ordered = sorted(st.jobs, key=lambda j: j.state != "RUNNING")  # stable: squeue's order kept
    shown = ordered[:JOBS_SHOWN]
    title = f"jobs ({len(st.jobs)}"
    if counts:
        title += ": " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    if len(shown) < len(st.jobs):
        title += f"; {len(shown)} shown, `hpcstack exec -- squeue` lists all"
    jobs = Table(title=title + ")", title_justify="left")
    for col in ("job", "name", "user", "state", "time", "nodes", "nodelist/reason"):
        jobs.add_column(col)
    for j in shown:
        jobs.add_row(j.job_id, j.name, j.user, j.state, j.elapsed, j.nodes, j.reason)
    return jobs


def print_status(st: Status, tunnel_mode: str = "wireguard") -> None:
    remote = st.host != "controller"
    if remote:
        err.print(
            f"[bold]{st.host}[/]: containers and tunnel from this host; node states and jobs "
            "from the controller, asked through this site's nodes over the tunnel"
        )
    services = Table(title="services", title_justify="left")
    for col in ("site", "service", "state", "health"):
        services.add_column(col)
    for site, states in st.sites.items():
        if not states:
            services.add_row(site, "-", "[red]not running[/]", "")
        for s in states:
            colour = "green" if s.health in ("healthy", "") and s.state == "running" else "red"
            services.add_row(site, s.service, f"[{colour}]{s.state}[/]", s.health)
    out.print(services)
    nodes = Table(title="nodes", title_justify="left")
    for col in ("node", "state", "address", "partitions", "gres", "reason"):
        nodes.add_column(col)
    for n in st.nodes:
        colour = "green" if n.ready else "red"
        nodes.add_row(n.name, f"[{colour}]{n.state}[/]", n.addr, n.partitions, n.gres, n.reason)
    out.print(nodes)
    if st.tunnel:
        title = "tunnel (WireGuard hub)" if tunnel_mode == "wireguard" else "tunnel (reverse SSH)"
        if remote:
            title = f"{title[:-1]}, as this site's nodes see it)"
        tunnel = Table(title=title, title_justify="left")
        for col in ("peer", "state", "endpoint", "last handshake", "received", "sent"):
            tunnel.add_column(col)
        now = int(time.time())
        for p in st.tunnel:
            if tunnel_mode != "wireguard":
                ago = "-"
            else:
                ago = f"{now - p.latest_handshake}s ago" if p.latest_handshake else "never"
            state = "[green]up[/]" if p.up else "[red]down[/]"
            tunnel.add_row(p.name, state, p.endpoint, ago, _bytes(p.rx_bytes), _bytes(p.tx_bytes))
        out.print(tunnel)
    if st.targets:
        targets = Table(title="prometheus targets", title_justify="left")
        for col in ("job", "target", "health", "error"):
            targets.add_column(col)
        for t in st.targets:
            colour = "green" if t.health == "up" else "red"
            targets.add_row(t.job, t.url, f"[{colour}]{t.health}[/]", t.error[:60])
        out.print(targets)
    alerts = Table(title=f"alerts ({len(st.alerts)})", title_justify="left")
    for col in ("alert", "state", "severity", "labels"):
        alerts.add_column(col)
    for a in st.alerts:
        colour = "red" if a.state == "firing" else "yellow"
        alerts.add_row(a.name, f"[{colour}]{a.state}[/]", a.severity, a.labels)
    out.print(alerts)
    out.print(jobs_table(st))
    for line in st.attention():
        err.print(f"[yellow]needs attention:[/] {line}")
    for e in st.errors:
        err.print(f"[red]{e}[/]")


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


@click.command(name="exec", context_settings={"ignore_unknown_options": True})
@dir_option
@click.option("--user", "-u", default=None, help="Run as this user (default root).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_cmd(out_dir: Path, user: str | None, command: tuple[str, ...]) -> None:
    """Run COMMAND on the controller (hpcstack exec -- sinfo)."""
    cluster = _cluster(out_dir)
    rc = cluster.docker.exec_passthrough(cluster.controller_container(), list(command), user)
    sys.exit(rc)


@click.command()
@dir_option
def demo(out_dir: Path) -> None:
    """Run the ML demo: a sweep split over the compute nodes, results shown here."""
    cluster = _cluster(out_dir)
    lines = 0
    for line in run_demo(cluster):
        click.echo(line)
        lines += 1
    if not lines:
        raise ClusterError("the demo printed nothing")


@click.command()
@dir_option
@site_option
@click.option("--push", is_flag=True, help="Push the images to the configured registry.")
def images(out_dir: Path, sites: tuple[str, ...], push: bool) -> None:
    """Build the images (and push them with --push)."""
    cluster = _cluster(out_dir)
    targets = cluster.sites(list(sites))
    if push and not cluster.plan.stack.images.registry:
        raise ClusterError("images.registry is empty in stack.yaml: nowhere to push")
    lifecycle.build(cluster, targets, _Progress())
    if push:
        for ref in built_images(cluster.plan, targets):
            err.print(f"pushing {ref}")
            cluster.docker.push(ref)


@click.command()
@dir_option
@click.option("--site", default=None, help="The site (default: the controller's).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines.")
@click.option("--tail", default="200", show_default=True, help="Lines from the end (or 'all').")
@click.argument("services", nargs=-1)
def logs(
    out_dir: Path, site: str | None, follow: bool, tail: str, services: tuple[str, ...]
) -> None:
    """Logs of a site's services (every daemon logs to stdout), e.g. `logs slurmctld`."""
    cluster = _cluster(out_dir)
    target = cluster.sites([site])[0] if site else cluster.plan.controller
    rc = cluster.compose(target).logs_passthrough(list(services), follow=follow, tail=tail)
    sys.exit(rc)


COMMANDS = [up, down, status, exec_cmd, demo, images, logs]
