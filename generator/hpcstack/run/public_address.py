"""The caller's public address, for `hpcstack aws allow-ip`, and CIDR checks.

One HTTPS GET to AWS's own checkip service; nothing else leaves the machine.
"""

from __future__ import annotations

import ipaddress
import urllib.request
from collections.abc import Callable

from hpcstack.run.aws import AwsError

CHECKIP_URL = "https://checkip.amazonaws.com"

PublicAddressLookup = Callable[[], str]
# Addresses a public-address service can never rightly return (private, shared, local).
_NOT_PUBLIC = [
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
    )
]


def lookup_public_address(timeout: float = 5.0) -> str:
    """The caller's public IPv4 address as AWS sees it (AWS's own checkip service)."""
    try:
        with urllib.request.urlopen(CHECKIP_URL, timeout=timeout) as response:
            text: str = response.read(64).decode("ascii", "replace").strip()
    except OSError as exc:
        raise AwsError(
            command=["GET", CHECKIP_URL],
            stderr=str(exc),
            summary="cannot find your public address: give it explicitly, e.g. "
            "`hpcstack aws allow-ip 203.0.113.7/32`",
        ) from None
    return text


def caller_cidr(lookup: PublicAddressLookup = lookup_public_address) -> str:
    """The caller's public address as a /32, checked to be a public IPv4 address."""
    text = lookup()
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise AwsError(
            summary=f"the public address lookup returned {text[:40]!r}, not an IPv4 address: "
            "give the CIDR explicitly"
        ) from None
    if any(address in net for net in _NOT_PUBLIC) or address.is_multicast:
        raise AwsError(summary=f"{address} is not a public address: give the CIDR explicitly")
    return f"{address}/32"


def normalise_cidr(text: str) -> str:
    """A user-given address or network as a CIDR (`1.2.3.4` -> `1.2.3.4/32`), never a /0."""
    try:
        net = ipaddress.IPv4Network(text.strip(), strict=False)
    except ValueError as exc:
        raise AwsError(summary=f"{text!r} is not an IPv4 address or CIDR: {exc}") from None
    if net.prefixlen == 0:
        raise AwsError(summary="refusing to open the cluster to the whole internet (/0)")
    return str(net)
