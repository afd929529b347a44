"""Operations on a generated, running cluster: up, down, wait, status, exec, demo.

Reads the generated directory (its `.hpcstack/stack.json` plan), drives compose through
run.docker, and asks Slurm on the controller for node and job state.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from .clusterstate import (
    Alert,
    JobState,
    NodeState,
    ScrapeTarget,
    Status,
    TunnelPeer,
    parse_scontrol_nodes,
    parse_squeue,
    parse_ss_listeners,
    parse_wg_dump,
)
from .errors import ClusterError, ToolError
from .render.images import JOB_USER
from .render.ssh import node_ports, ssh_mode, sshd_addr
from .run import apt
from .run.docker import (
    SiteCompose,
    exec_capture,
    exec_stream,
    image_exists,
    signal_container,
    try_pull,
)
from .topology import Plan, SitePlan

APPLIED_SLURM = ".hpcstack/applied-slurm.sha256"

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


class Cluster:
    def __init__(self, out_dir: Path, plan: Plan):
        self.out_dir = out_dir
        self.plan = plan
        self.env = build_env(plan)

    # -- compose per site -------------------------------------------------------------------
    def compose(self, site: SitePlan) -> SiteCompose:
        return SiteCompose(self.out_dir, site, self.env)

    def sites(self, names: list[str] | None) -> list[SitePlan]:
        if not names:
            return list(self.plan.sites)
        known = {s.name: s for s in self.plan.sites}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ClusterError(
                f"no site named {', '.join(map(repr, unknown))} in the generated definition "
                f"(sites: {', '.join(known)}); edit stack.yaml and run `hpcstack generate`"
            )
        return [known[n] for n in names]

    def controller_container(self) -> str:
        return self.compose(self.plan.controller).container("slurmctld")

    def slurm(self, *argv: str, user: str | None = None) -> str:
        return exec_capture(self.controller_container(), list(argv), user=user)

    # -- images -------------------------------------------------------------------------------
    def build(self, sites: list[SitePlan], progress: Progress = _quiet) -> None:
        for site in sites:
            progress(f"building images for site {site.name} (minutes the first time, cached after)")
            self.compose(site).build()

    def pull(self, sites: list[SitePlan], progress: Progress = _quiet) -> None:
        for site in sites:
            progress(f"pulling images for site {site.name}")
            self.compose(site).pull()

    # -- lifecycle ---------------------------------------------------------------------------
    def up(self, names: list[str] | None, progress: Progress = _quiet, timeout: int = 300) -> None:
        targets = self.sites(names)
        ordered = sorted(targets, key=lambda s: not s.is_controller)  # controller site first
        if self.plan.controller not in targets:
            # A site joins a running controller: new peers, partitions and gres.conf first,
            # so its nodes register against the new configuration.
            self._apply_controller_changes(progress)
        for site in ordered:
            progress(f"starting site {site.name}")
            services, skipped = self.startable_services(site)
            for svc, image in skipped:
                progress(f"skipping {svc}: image {image} is neither here nor pullable")
            self.compose(site).up(services=services, wait_timeout=timeout)
            if site.is_controller:
                self._apply_controller_changes(progress)
        wanted = [n.name for s in targets for n in s.nodes]
        self.wait_nodes_ready(wanted, progress=progress, timeout=timeout)

    def startable_services(self, site: SitePlan) -> tuple[list[str], list[tuple[str, str]]]:
        """Every service, less those whose upstream image (Grafana, dcgm-exporter: no `build:`)
        cannot be had here; an air-gapped host runs the rest and says what it left out."""
        doc = yaml.safe_load((self.out_dir / "compose" / f"{site.name}.yml").read_text())
        services: list[str] = []
        skipped: list[tuple[str, str]] = []
        for name, svc in doc.get("services", {}).items():
            image = svc.get("image", "")
            if "build" in svc or not image or image_exists(image) or try_pull(image):
                services.append(name)
            else:
                skipped.append((name, image))
        return services, skipped

    def _apply_controller_changes(self, progress: Progress) -> None:
        """New peers and new Slurm config reach the running controller without a restart."""
        ctl = self.compose(self.plan.controller)
        states = {s.service: s for s in ctl.states() if s.state == "running"}
        if "tunnel" in states:
            exec_capture(states["tunnel"].container, ["hpcstack-tunnel", "reload"])
        if "sshd" in states:
            # ssh mode: a new site's key line; sshd reads authorized_keys at each login.
            exec_capture(states["sshd"].container, ["hpcstack-entrypoint", "sshd-keys"])
        digest = config_digest(self.out_dir, "slurm")
        applied = self.out_dir / APPLIED_SLURM
        previous = applied.read_text().strip() if applied.exists() else ""
        if previous and previous != digest and "slurmctld" in states:
            progress("applying the new Slurm configuration (scontrol reconfigure)")
            self.slurm("scontrol", "reconfigure")
        applied.parent.mkdir(parents=True, exist_ok=True)
        applied.write_text(digest + "\n")
        if "prometheus" in states:
            # New scrape targets: Prometheus re-reads its mounted configuration on SIGHUP.
            signal_container(states["prometheus"].container, "HUP")

    def down(
        self,
        names: list[str] | None,
        volumes: bool = False,
        progress: Progress = _quiet,
        drain_timeout: int = 300,
    ) -> None:
        targets = self.sites(names)
        whole = not names or {s.name for s in targets} == {s.name for s in self.plan.sites}
        if not whole:
            for site in targets:
                if not site.is_controller:
                    self._drain_and_remove(site, progress, drain_timeout)
        for site in sorted(targets, key=lambda s: s.is_controller):  # controller site last
            progress(f"stopping site {site.name}")
            self.compose(site).down(volumes=volumes)

    def _drain_and_remove(self, site: SitePlan, progress: Progress, drain_timeout: int) -> None:
        try:
            self.controller_container()
        except ToolError:
            return  # controller not running: nothing to tell it
        known = {n.name for n in self.nodes()}
        names = [n.name for n in site.nodes if n.name in known]
        if not names:
            return
        progress(f"draining {', '.join(names)}")
        node_list = ",".join(names)
        reason = f"reason=hpcstack down --site {site.name}"
        self.slurm("scontrol", "update", f"nodename={node_list}", "state=DRAIN", reason)
        self._wait_drained(names, progress, drain_timeout)
        self.compose(site).down()
        try:
            self.slurm("scontrol", "delete", f"nodename={node_list}")
        except ToolError:
            # Jobs still hold the nodes: they stay drained and are removed when free.
            progress(f"nodes of {site.name} still hold jobs: left drained")

    def _wait_drained(self, names: list[str], progress: Progress, timeout: int) -> None:
        """Running jobs finish first; after `timeout` seconds the site stops regardless."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = [
                n.name
                for n in self.nodes()
                if n.name in names and not n.state.startswith(("IDLE", "DOWN"))
            ]
            if not busy:
                return
            progress(f"waiting for jobs to finish on {', '.join(busy)}")
            time.sleep(2)
        progress(f"drain timeout ({timeout}s): stopping with jobs still running")

    # -- state --------------------------------------------------------------------------------
    def nodes(self) -> list[NodeState]:
        text = self.slurm("scontrol", "show", "node", "--oneliner")
        return parse_scontrol_nodes(text)

    def jobs(self) -> list[JobState]:
        text = self.slurm("squeue", "--noheader", "--format=%i|%j|%u|%T|%M|%D|%R")
        return parse_squeue(text)

    def wait_nodes_ready(
        self, names: list[str], progress: Progress = _quiet, timeout: int = 300
    ) -> list[NodeState]:
        deadline = time.monotonic() + timeout
        last: list[NodeState] = []
        while True:
            try:
                last = self.nodes()
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

    def tunnel(self) -> list[TunnelPeer]:
        if ssh_mode(self.plan):
            return self.ssh_tunnel()
        if not self.plan.tunneled_sites or self.plan.stack.tunnel.mode != "wireguard":
            return []
        names = public_key_names(self.out_dir)
        ctl = self.compose(self.plan.controller)
        running = {s.service: s for s in ctl.states() if s.state == "running"}
        if "tunnel" not in running:
            return [
                TunnelPeer(n.name, "", 0, 0, 0, False)
                for s in self.plan.tunneled_sites
                for n in s.nodes
            ]
        dump = exec_capture(running["tunnel"].container, ["wg", "show", "wg0", "dump"])
        return parse_wg_dump(dump, names, now=int(time.time()))

    def ssh_tunnel(self) -> list[TunnelPeer]:
        """ssh mode, per node: up when its site's ssh-tunnel runs and the sshd container listens
        on the node's port (the reverse forward is in place). No handshake or byte counts."""
        ctl = self.compose(self.plan.controller)
        running = {s.service: s for s in ctl.states() if s.state == "running"}
        listening: set[int] = set()
        if "sshd" in running:
            listening = parse_ss_listeners(exec_capture(running["sshd"].container, ["ss", "-Htln"]))
        ports = node_ports(self.plan)
        peers = []
        for site in self.plan.tunneled_sites:
            try:
                client_up = any(
                    s.service == "ssh-tunnel" and s.state == "running"
                    for s in self.compose(site).states()
                )
            except ToolError:
                client_up = False
            for node in site.nodes:
                port = ports[node.name]
                up = client_up and port in listening
                peers.append(TunnelPeer(node.name, f"{sshd_addr(self.plan)}:{port}", 0, 0, 0, up))
        return sorted(peers, key=lambda p: p.name)

    def status(self) -> Status:
        st = Status()
        for site in self.plan.sites:
            try:
                st.sites[site.name] = self.compose(site).states()
            except ToolError as exc:
                st.errors.append(str(exc))
        try:
            st.nodes = self.nodes()
            st.jobs = self.jobs()
            st.controller_up = True
        except ToolError as exc:
            st.errors.append(f"controller: {exc.summary or exc}")
        try:
            st.tunnel = self.tunnel()
        except ToolError as exc:
            st.errors.append(f"tunnel: {exc.summary or exc}")
        if self.plan.stack.monitoring.enabled:
            try:
                st.targets, st.alerts = self.monitoring()
            except (ToolError, ValueError) as exc:
                st.errors.append(f"prometheus: {getattr(exc, 'summary', '') or exc}")
        return st

    def monitoring(self) -> tuple[list[ScrapeTarget], list[Alert]]:
        """Prometheus's targets and its pending/firing alerts, asked inside its container."""
        container = self.compose(self.plan.controller).container("prometheus")

        def get(path: str) -> Any:
            text = exec_capture(container, ["wget", "-qO-", f"http://127.0.0.1:9090{path}"])
            return json.loads(text)["data"]

        targets = [
            ScrapeTarget(
                t["labels"].get("job", ""), t["scrapeUrl"], t["health"], t.get("lastError", "")
            )
            for t in get("/api/v1/targets")["activeTargets"]
        ]
        alerts = [
            Alert(
                a["labels"].get("alertname", ""),
                a["state"],
                a["labels"].get("severity", ""),
                ", ".join(
                    f"{k}={v}"
                    for k, v in sorted(a["labels"].items())
                    if k not in ("alertname", "severity")
                ),
            )
            for a in get("/api/v1/alerts")["alerts"]
        ]
        return sorted(targets, key=lambda t: (t.job, t.url)), sorted(alerts, key=lambda a: a.name)

    def demo(self, extra: list[str] | None = None) -> Iterator[str]:
        nodes = len(self.plan.nodes)
        argv = [
            "runuser",
            "-u",
            JOB_USER,
            "--",
            "/opt/hpcstack/demo/run-demo.sh",
            str(nodes),
            str(nodes * 2),
            *(extra or []),
        ]
        return exec_stream(self.controller_container(), argv)


# -- helpers ---------------------------------------------------------------------------------
def build_env(plan: Plan) -> dict[str, str]:
    """Environment compose interpolates into build args (never secrets)."""
    env = {}
    if "HPCSTACK_APT_OPTIONS" not in os.environ:
        env["HPCSTACK_APT_OPTIONS"] = apt.frozen_mirror_options(plan.stack.cluster.debian_suite)
    return env


def config_digest(out_dir: Path, subdir: str) -> str:
    h = hashlib.sha256()
    for path in sorted((out_dir / subdir).glob("*.conf")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def public_key_names(out_dir: Path) -> dict[str, str]:
    pub = out_dir / "secrets" / "wireguard" / "pub"
    return {p.read_text().strip(): p.stem for p in sorted(pub.glob("*.pub"))}
