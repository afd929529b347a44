"""`hpcstack status`: what runs where, nodes and jobs, the tunnel, Prometheus targets and alerts.

Every part is asked separately; one that cannot answer adds an error line instead of failing
the whole report.

On a workstation (`status --site lab`, the controller on another host) it shows that site only:
its containers (this engine), its tunnel as its node containers see it (`wg show`: the hub's
handshake age and bytes; ssh mode: the ssh-tunnel client), and its nodes' Slurm state and
reasons, asked of the controller through a node container. Prometheus is the controller's.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from hpcstack.contract import EXPORTER_PORTS, HUB, WG_IFACE
from hpcstack.errors import ToolError
from hpcstack.operate.observed import (
    Alert,
    RefusedPeer,
    ScrapeTarget,
    Status,
    TunnelPeer,
    parse_auth_refusals,
    parse_ss_listeners,
    parse_wg_dump,
)
from hpcstack.operate.session import Cluster
from hpcstack.plan.topology import SitePlan
from hpcstack.plan.tunnel import node_ports, ssh_mode, sshd_addr, wireguard_mode


def status(cluster: Cluster) -> Status:
    if cluster.workstation():
        return workstation_status(cluster)
    st = Status()
    for site in cluster.sites(cluster.site_names):
        try:
            st.sites[site.name] = cluster.compose(site).states()
        except ToolError as exc:
            st.errors.append(str(exc))
    try:
        st.nodes = cluster.nodes()
        st.jobs = cluster.jobs()
        st.controller_up = True
    except ToolError as exc:
        st.errors.append(f"controller: {exc.summary or exc}")
    try:
        st.refused = refused_peers(cluster)
    except ToolError as exc:
        st.errors.append(f"controller log: {exc.summary or exc}")
    try:
        st.tunnel = tunnel(cluster)
    except ToolError as exc:
        st.errors.append(f"tunnel: {exc.summary or exc}")
    if cluster.plan.stack.monitoring.enabled:
        try:
            st.targets, st.alerts = monitoring(cluster)
        except (ToolError, ValueError) as exc:
            st.errors.append(f"prometheus: {getattr(exc, 'summary', '') or exc}")
    return st


# How far back `status` looks in slurmctld's log for refused credentials, and at most how much.
REFUSED_WINDOW = timedelta(minutes=15)
REFUSED_LOG_LINES = 5000


def refused_peers(cluster: Cluster) -> list[RefusedPeer]:
    """Who slurmctld refused lately for a munge credential it could not verify: a node made
    with another cluster's key never appears in sinfo, so only the log can say why."""
    log = cluster.docker.logs_tail(
        cluster.controller_container(), lines=REFUSED_LOG_LINES, since=REFUSED_WINDOW
    )
    return parse_auth_refusals(log)


def public_key_names(cluster: Cluster) -> dict[str, str]:
    pub = cluster.out_dir / "secrets" / "wireguard" / "pub"
    return {p.read_text().strip(): p.stem for p in sorted(pub.glob("*.pub"))}


def tunnel(cluster: Cluster) -> list[TunnelPeer]:
    plan = cluster.plan
    if ssh_mode(plan):
        return ssh_tunnel(cluster)
    if not wireguard_mode(plan):
        return []
    running = cluster.compose(plan.controller).running()
    if "tunnel" not in running:
        return [
            TunnelPeer(n.name, "", 0, 0, 0, False) for s in plan.tunneled_sites for n in s.nodes
        ]
    dump = cluster.docker.exec_capture(
        running["tunnel"].container, ["wg", "show", WG_IFACE, "dump"]
    )
    return parse_wg_dump(dump, public_key_names(cluster), now=int(time.time()))


def ssh_tunnel(cluster: Cluster) -> list[TunnelPeer]:
    """ssh mode, per node: up when its site's ssh-tunnel runs and the sshd container listens
    on the node's port (the reverse forward is in place). No handshake or byte counts."""
    plan = cluster.plan
    running = cluster.compose(plan.controller).running()
    listening: set[int] = set()
    if "sshd" in running:
        text = cluster.docker.exec_capture(running["sshd"].container, ["ss", "-Htln"])
        listening = parse_ss_listeners(text)
    ports = node_ports(plan)
    peers = []
    for site in plan.tunneled_sites:
        try:
            client_up = "ssh-tunnel" in cluster.compose(site).running()
        except ToolError:
            client_up = False
        for node in site.nodes:
            port = ports[node.name]
            up = client_up and port in listening
            peers.append(TunnelPeer(node.name, f"{sshd_addr(plan)}:{port}", 0, 0, 0, up))
    return sorted(peers, key=lambda p: p.name)


def monitoring(cluster: Cluster) -> tuple[list[ScrapeTarget], list[Alert]]:
    """Prometheus's targets and its pending/firing alerts, asked inside its container."""
    container = cluster.compose(cluster.plan.controller).container("prometheus")
    base = f"http://127.0.0.1:{EXPORTER_PORTS['prometheus']}"

    def get(path: str) -> Any:
        text = cluster.docker.exec_capture(container, ["wget", "-qO-", f"{base}{path}"])
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


def workstation_status(cluster: Cluster) -> Status:
    """This host's sites only; Slurm's view through their node containers."""
    st = Status(host=f"workstation ({cluster.engine_name()})")
    sites = cluster.sites(cluster.site_names)
    mine = {n.name for s in sites for n in s.nodes}
    for site in sites:
        try:
            st.sites[site.name] = cluster.compose(site).states()
        except ToolError as exc:
            st.errors.append(str(exc))
    try:
        st.nodes = [n for n in cluster.nodes() if n.name in mine]
        st.jobs = cluster.jobs()
        st.controller_up = True
    except ToolError as exc:
        st.errors.append(f"controller (over the tunnel): {exc.summary or exc}")
    try:
        st.tunnel = node_side_tunnel(cluster, sites)
    except ToolError as exc:
        st.errors.append(f"tunnel: {exc.summary or exc}")
    return st


def node_side_tunnel(cluster: Cluster, sites: list[SitePlan]) -> list[TunnelPeer]:
    """Each node's own link to the controller: the hub peer in its `wg show` (WireGuard), or
    its site's ssh-tunnel client (ssh mode: no handshake or byte counts)."""
    plan = cluster.plan
    keys = public_key_names(cluster)
    peers: list[TunnelPeer] = []
    now = int(time.time())
    for site in sites:
        running = cluster.compose(site).running()
        for node in site.nodes:
            if ssh_mode(plan):
                up = "ssh-tunnel" in running and node.name in running
                endpoint = f"{plan.stack.tunnel.endpoint}:{plan.stack.tunnel.ssh_port}"
                peers.append(TunnelPeer(node.name, endpoint, 0, 0, 0, up))
                continue
            if node.name not in running:
                peers.append(TunnelPeer(node.name, "", 0, 0, 0, False))
                continue
            dump = cluster.docker.exec_capture(
                running[node.name].container, ["wg", "show", WG_IFACE, "dump"]
            )
            hub = [p for p in parse_wg_dump(dump, keys, now) if p.name == HUB]
            if hub:
                h = hub[0]
                peers.append(
                    TunnelPeer(
                        node.name, h.endpoint, h.latest_handshake, h.rx_bytes, h.tx_bytes, h.up
                    )
                )
            else:
                peers.append(TunnelPeer(node.name, "", 0, 0, 0, False))
    return peers
