"""How tunneled sites reach the controller, as plan facts: WireGuard peers, ssh-mode ports.

Renderers (wireguard, ssh, compose), secrets and the operate layer all read these answers; none
re-derives them.
"""

from __future__ import annotations

from hpcstack.contract import HUB, NODE_PORT_BASE, SLURMCTLD_PORT
from hpcstack.plan.topology import Plan, SitePlan


def wireguard_mode(plan: Plan) -> bool:
    """True when WireGuard carries at least one site (the hub runs)."""
    return plan.stack.tunnel.mode == "wireguard" and bool(plan.tunneled_sites)


def ssh_mode(plan: Plan) -> bool:
    """True when reverse SSH carries at least one site (the cloud sshd runs)."""
    return plan.stack.tunnel.mode == "ssh" and bool(plan.tunneled_sites)


def exporter_peers(plan: Plan) -> bool:
    """True when each tunneled site's exporters are a WireGuard peer of their own."""
    return wireguard_mode(plan) and plan.stack.monitoring.enabled


def site_peer_names(plan: Plan, site: SitePlan) -> list[str]:
    """A tunneled site's WireGuard peers: its nodes, then its exporters."""
    names = [n.name for n in site.nodes]
    if exporter_peers(plan):
        names.append(site.exporter_peer)
    return names


def peer_names(plan: Plan) -> list[str]:
    """Every WireGuard peer that needs a key pair: the hub, then each tunneled site's peers."""
    if not wireguard_mode(plan):
        return []
    return [HUB] + [p for s in plan.tunneled_sites for p in site_peer_names(plan, s)]


def node_ports(plan: Plan) -> dict[str, int]:
    """ssh mode: node name -> its controller-side port, distinct across the cluster."""
    nodes = [n for s in plan.tunneled_sites for n in s.nodes]
    return {n.name: NODE_PORT_BASE + i for i, n in enumerate(nodes)}


def sshd_addr(plan: Plan) -> str:
    """ssh mode: where slurmctld reaches every tunneled node: the sshd container."""
    return plan.controller.service_ip("sshd")


def tunnel_addr(site: SitePlan) -> str:
    """ssh mode: the site's ssh-tunnel container; its nodes reach slurmctld through it."""
    return site.service_ip("tunnel")


def node_dnat(plan: Plan, site: SitePlan) -> list[str]:
    """ssh mode: `dest=to` pairs a local node rewrites (iptables DNAT on its own output):
    slurmctld's address goes to the site's ssh-tunnel, and each site mate's sshd-side address
    goes straight to the mate on the site network, so steps within a site never cross the cloud."""
    ports = node_ports(plan)
    pairs = [f"{plan.controller_addr}:{SLURMCTLD_PORT}={tunnel_addr(site)}:{SLURMCTLD_PORT}"]
    pairs += [f"{sshd_addr(plan)}:{ports[n.name]}={n.site_ip}:{ports[n.name]}" for n in site.nodes]
    return pairs
