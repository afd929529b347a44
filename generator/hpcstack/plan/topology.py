"""The resolved plan: every address, name and GPU assignment, derived once from a valid Stack.

Renderers read a Plan, never re-derive. Addresses are a pure function of the definition (site
order included), so output is deterministic.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cached_property

from hpcstack.contract import (
    EXPORTER_PEER_PREFIX,
    FIRST_NODE_HOST,
    OVERLAY_EXPORTER_HOST,
    OVERLAY_FIRST_NODE,
    OVERLAY_HUB_HOST,
    SERVICE_HOSTS,
)
from hpcstack.definition.addresses import site_overlay
from hpcstack.definition.model import Site, Stack


@dataclass(frozen=True)
class NodePlan:
    name: str
    site: str
    cpus: int
    memory_mb: int
    gpu_indices: tuple[int, ...]
    gpu_type: str | None
    features: tuple[str, ...]
    site_ip: str
    overlay_ip: str | None  # None for nodes on the controller's own site (no tunnel needed)

    @property
    def addr(self) -> str:
        """The address Slurm knows the node by."""
        return self.overlay_ip or self.site_ip

    @property
    def gres(self) -> str:
        if not self.gpu_indices:
            return ""
        kind = f"gpu:{self.gpu_type}" if self.gpu_type else "gpu"
        return f"{kind}:{len(self.gpu_indices)}"


@dataclass(frozen=True)
class SitePlan:
    site: Site
    index: int
    project: str
    network: str
    overlay: ipaddress.IPv4Network
    nodes: tuple[NodePlan, ...]
    is_controller: bool

    @property
    def name(self) -> str:
        return self.site.name

    @cached_property
    def ip_network(self) -> ipaddress.IPv4Network:
        """The site's address block (parsed once: every service address is read from it)."""
        return self.site.network

    @property
    def gateway(self) -> str:
        return str(self.ip_network[1])

    def service_ip(self, service: str) -> str:
        return str(self.ip_network[SERVICE_HOSTS[service]])

    @property
    def tunneled(self) -> bool:
        """True when this site reaches the controller through the tunnel."""
        return not self.is_controller

    @property
    def exporter_peer(self) -> str:
        """The WireGuard peer name of this tunneled site's exporters (node-exporter's own)."""
        return f"{EXPORTER_PEER_PREFIX}{self.name}"

    @property
    def exporter_overlay_ip(self) -> str:
        """Where the hub reaches this tunneled site's exporters: an overlay address of their own,
        so the host's metrics never depend on a compute node's container."""
        return str(self.overlay[OVERLAY_EXPORTER_HOST])


@dataclass(frozen=True)
class Plan:
    stack: Stack
    sites: tuple[SitePlan, ...]

    @property
    def cluster(self) -> str:
        return self.stack.cluster.name

    @cached_property
    def controller(self) -> SitePlan:
        return next(s for s in self.sites if s.is_controller)

    @property
    def controller_addr(self) -> str:
        """Where every slurmd, srun and client reaches slurmctld."""
        return self.controller.service_ip("slurmctld")

    @property
    def hub_overlay_ip(self) -> str:
        return str(self.controller.overlay[OVERLAY_HUB_HOST])

    @cached_property
    def nodes(self) -> tuple[NodePlan, ...]:
        return tuple(n for s in self.sites for n in s.nodes)

    @cached_property
    def _nodes_by_name(self) -> dict[str, NodePlan]:
        return {n.name: n for n in self.nodes}

    def node(self, name: str) -> NodePlan:
        return self._nodes_by_name[name]

    @cached_property
    def tunneled_sites(self) -> tuple[SitePlan, ...]:
        return tuple(s for s in self.sites if s.tunneled)

    @property
    def routed_networks(self) -> list[str]:
        """What a local node sends through the tunnel: the overlay and the controller's site."""
        return [self.stack.tunnel.subnet, self.controller.site.subnet]

    def site(self, name: str) -> SitePlan:
        for s in self.sites:
            if s.name == name:
                return s
        raise KeyError(name)

    def image(self, name: str) -> str:
        return self.stack.images.ref(name)

    def site_exporter_addr(self, site: SitePlan, service: str) -> str:
        """Where Prometheus reaches a site's exporter: by its own address on the controller's
        site; on a tunneled site (WireGuard) at the exporters' own overlay address."""
        if site.tunneled and self.stack.tunnel.mode == "wireguard":
            return site.exporter_overlay_ip
        return site.service_ip(service)


def _overlay_for(stack: Stack, index: int) -> ipaddress.IPv4Network:
    """The site's overlay block; validation (checks_addresses) guarantees there is one."""
    overlay = site_overlay(stack, index)
    if overlay is None:
        raise ValueError(f"site {stack.sites[index].name!r} has no overlay block: validate first")
    return overlay


def _assign_gpus(site: Site) -> dict[str, tuple[int, ...]]:
    """Host GPU indices per node: explicit lists as given, counts take the next free ones."""
    taken = {i for g in site.nodes if isinstance(g.gpus, list) for i in g.gpus}
    out: dict[str, tuple[int, ...]] = {}
    next_free = 0
    for group in site.nodes:
        for node in group.node_names:
            if isinstance(group.gpus, list):
                out[node] = tuple(group.gpus)
                continue
            want = group.gpus if isinstance(group.gpus, int) else 0
            got: list[int] = []
            while len(got) < want:
                if next_free not in taken:
                    got.append(next_free)
                    taken.add(next_free)
                next_free += 1
            out[node] = tuple(got)
    return out


def make_plan(stack: Stack) -> Plan:
    """Resolve a validated Stack into a Plan (call validate first)."""
    sites = []
    for index, site in enumerate(stack.sites):
        is_controller = site.name == stack.controller.site
        overlay = _overlay_for(stack, index)
        gpus = _assign_gpus(site)
        nodes = []
        k = 0
        for group in site.nodes:
            for name in group.node_names:
                nodes.append(
                    NodePlan(
                        name=name,
                        site=site.name,
                        cpus=group.cpus,
                        memory_mb=group.memory_mb,
                        gpu_indices=gpus[name],
                        gpu_type=group.gpu_type if gpus[name] else None,
                        features=(f"site_{site.name}", *group.features),
                        site_ip=str(site.network[FIRST_NODE_HOST + k]),
                        overlay_ip=None if is_controller else str(overlay[OVERLAY_FIRST_NODE + k]),
                    )
                )
                k += 1
        sites.append(
            SitePlan(
                site=site,
                index=index,
                project=f"{stack.cluster.name}-{site.name}",
                network=f"{stack.cluster.name}-{site.name}",
                overlay=overlay,
                nodes=tuple(nodes),
                is_controller=is_controller,
            )
        )
    return Plan(stack=stack, sites=tuple(sites))
