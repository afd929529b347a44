"""Address arithmetic shared by the checks and the plan: which overlay block each site gets.

One function answers it so `validate` checks exactly what `make_plan` will use: a site's own
`overlay`, else the /24 block of `tunnel.subnet` at the site's index. There is no wrap-around:
a site past the last block has no overlay (None) and the checks refuse the definition. Blocks
are computed, never listed (a /1 tunnel has eight million of them).
"""

from __future__ import annotations

import ipaddress

from hpcstack.definition.model import Stack

OVERLAY_BLOCK_PREFIX = 24


def overlay_block_count(stack: Stack) -> int:
    tunnel = ipaddress.IPv4Network(stack.tunnel.subnet)
    return int(2 ** max(OVERLAY_BLOCK_PREFIX - tunnel.prefixlen, 0))


def overlay_block(stack: Stack, index: int) -> ipaddress.IPv4Network | None:
    """Block `index` of `tunnel.subnet`, or None past the last one."""
    tunnel = ipaddress.IPv4Network(stack.tunnel.subnet)
    if tunnel.prefixlen >= OVERLAY_BLOCK_PREFIX:
        return tunnel if index == 0 else None
    if index >= overlay_block_count(stack):
        return None
    start = int(tunnel.network_address) + index * 2 ** (32 - OVERLAY_BLOCK_PREFIX)
    return ipaddress.IPv4Network((start, OVERLAY_BLOCK_PREFIX))


def site_overlay(stack: Stack, index: int) -> ipaddress.IPv4Network | None:
    """The overlay network of `stack.sites[index]`; None when the tunnel has no block left."""
    site = stack.sites[index]
    if site.overlay:
        return ipaddress.IPv4Network(site.overlay)
    return overlay_block(stack, index)
