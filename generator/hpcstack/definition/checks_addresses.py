"""Address checks: every address the plan hands out exists, is usable, and is given once.

Run before anything is rendered, so `generate` cannot fail on arithmetic `validate` let pass:
a site network too small for its service addresses or nodes, an overlay too small for its
nodes, more sites than overlay blocks (no wrap-around), overlays that overlap, and ranges that
cannot carry traffic between containers (loopback, link-local, multicast, reserved).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from hpcstack.contract import (
    FIRST_NODE_HOST,
    MAX_NODES_PER_SITE,
    MAX_OVERLAY_SITES,
    OVERLAY_FIRST_NODE,
    OVERLAY_HUB_HOST,
    SERVICE_HOSTS,
)
from hpcstack.definition.addresses import OVERLAY_BLOCK_PREFIX, overlay_block_count, site_overlay
from hpcstack.definition.model import Stack
from hpcstack.definition.registry import check
from hpcstack.errors import Problem

Net = ipaddress.IPv4Network
# Ranges no site network or overlay may use: nothing between containers is routed there.
UNUSABLE: tuple[tuple[Net, str], ...] = (
    (Net("0.0.0.0/8"), "'this network' (0.0.0.0/8)"),
    (Net("127.0.0.0/8"), "loopback (127.0.0.0/8)"),
    (Net("169.254.0.0/16"), "link-local (169.254.0.0/16)"),
    (Net("224.0.0.0/4"), "multicast (224.0.0.0/4)"),
    (Net("240.0.0.0/4"), "reserved (240.0.0.0/4)"),
)
DOCKER_BRIDGE = Net("172.17.0.0/16")
LAST_SERVICE_HOST = max(SERVICE_HOSTS.values())


def _networks(stack: Stack) -> Iterator[tuple[str, Net, str]]:
    yield "tunnel.subnet", Net(stack.tunnel.subnet), "the tunnel overlay"
    for i, site in enumerate(stack.sites):
        yield f"sites[{i}].subnet", site.network, f"site {site.name!r}'s network"
        if site.overlay is not None:
            yield f"sites[{i}].overlay", Net(site.overlay), f"site {site.name!r}'s overlay"


@check
def ranges_usable(stack: Stack) -> Iterator[Problem]:
    for path, net, what in _networks(stack):
        bad = [name for rng, name in UNUSABLE if net.overlaps(rng)]
        if bad:
            yield Problem(
                path,
                f"{net} is in the {bad[0]} range: {what} needs a private range",
                hint="use one inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16",
            )
            continue
        if net.overlaps(DOCKER_BRIDGE):
            yield Problem(
                path,
                f"{net} overlaps {DOCKER_BRIDGE}, Docker's default bridge (docker0) on most hosts: "
                "the network cannot be created there, or containers lose the host's route",
                hint="pick another range, e.g. 172.28.0.0/24",
                level="warning",
            )
        elif not net.is_private:
            yield Problem(
                path,
                f"{net} is not a private range: traffic from the containers to real hosts with "
                "these addresses would stay inside the cluster",
                hint="use one inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16",
                level="warning",
            )


@check
def subnets_do_not_overlap(stack: Stack) -> Iterator[Problem]:
    nets: list[tuple[str, Net]] = []
    tunnel = Net(stack.tunnel.subnet)
    nets.append(("tunnel.subnet", tunnel))
    for i, site in enumerate(stack.sites):
        nets.append((f"sites[{i}].subnet", site.network))
    for i, site in enumerate(stack.sites):
        if site.overlay is not None:
            net = Net(site.overlay)
            if not net.subnet_of(tunnel):
                yield Problem(f"sites[{i}].overlay", f"{net} is not inside tunnel.subnet {tunnel}")
    for a in range(len(nets)):
        for b in range(a + 1, len(nets)):
            (pa, na), (pb, nb) = nets[a], nets[b]
            if na.overlaps(nb):
                yield Problem(pb, f"{nb} overlaps {pa} ({na})")


@check
def sizes_fit(stack: Stack) -> Iterator[Problem]:
    for i, site in enumerate(stack.sites):
        size = site.network.num_addresses
        if size - 2 < LAST_SERVICE_HOST:
            yield Problem(
                f"sites[{i}].subnet",
                f"{site.subnet} is too small: the services take host numbers .10-"
                f".{LAST_SERVICE_HOST}; use a /27 or larger",
            )
            continue
        room = size - 2 - FIRST_NODE_HOST
        if len(site.node_names) > room:
            yield Problem(
                f"sites[{i}].subnet",
                f"{site.subnet} holds {max(room, 0)} nodes after the service addresses; "
                f"site {site.name!r} has {len(site.node_names)}",
            )
    if len(stack.sites) > MAX_OVERLAY_SITES:
        yield Problem("sites", f"at most {MAX_OVERLAY_SITES} sites")
    for i, site in enumerate(stack.sites):
        if len(site.node_names) > MAX_NODES_PER_SITE:
            yield Problem(
                f"sites[{i}].nodes",
                f"at most {MAX_NODES_PER_SITE} nodes per site (one overlay /24)",
            )


@check
def overlays_fit_and_are_distinct(stack: Stack) -> Iterator[Problem]:
    """Every site has its own overlay block, big enough for the hub or its nodes."""
    blocks = overlay_block_count(stack)
    seen: list[tuple[int, Net]] = []
    for i, site in enumerate(stack.sites):
        overlay = site_overlay(stack, i)
        where = f"sites[{i}].overlay" if site.overlay else "tunnel.subnet"
        if overlay is None:
            yield Problem(
                where,
                f"tunnel.subnet {stack.tunnel.subnet} has {blocks} /{OVERLAY_BLOCK_PREFIX} "
                f"overlay block(s), one per site by position; site {site.name!r} (sites[{i}]) "
                "is past the last one",
                hint="use a larger tunnel.subnet (a /16 has 256 blocks) or give the site "
                "an overlay",
            )
            continue
        tunneled = site.name != stack.controller.site
        first = OVERLAY_FIRST_NODE if tunneled else OVERLAY_HUB_HOST
        need = first + (len(site.node_names) if tunneled else 1)
        if need > overlay.num_addresses - 1:
            yield Problem(
                where,
                f"overlay {overlay} of site {site.name!r} holds "
                f"{max(overlay.num_addresses - 1 - first, 0)} addresses from .{first}; "
                f"it needs {need - first}",
                hint="use a larger overlay (a /24 holds 250 nodes)",
            )
        for j, other in seen:
            if overlay.overlaps(other):
                yield Problem(
                    where,
                    f"overlay {overlay} of site {site.name!r} overlaps {other}, the overlay of "
                    f"site {stack.sites[j].name!r}: two nodes would get one address",
                    hint="give each site its own block inside tunnel.subnet",
                )
                break
        seen.append((i, overlay))
