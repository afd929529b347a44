"""The harness's ranges against this machine's: refuse to start on any overlap."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import subprocess

from tests.multihost.names import ROOT_LINK


def sh_json(*argv: str) -> list[dict]:  # type: ignore[type-arg]
    return json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)


def taken_ranges() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network this machine's root namespace routes or has an address in."""
    nets = []
    for route in sh_json("ip", "-j", "-4", "route", "show", "table", "all"):
        dst = route.get("dst", "")
        if dst and dst != "default" and route.get("type", "unicast") in ("unicast", "local"):
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", False))
    for link in sh_json("ip", "-j", "-4", "addr"):
        for a in link.get("addr_info", []):
            nets.append(ipaddress.IPv4Network(f"{a['local']}/{a['prefixlen']}", strict=False))
    return nets


def check_ranges(wanted: list[ipaddress.IPv4Network]) -> None:
    """Refuse to start when a range the harness would use is already in use here."""
    ours = {ipaddress.IPv4Network(f"{ROOT_LINK[1]}/24", strict=False)}
    clashes = [
        f"{w} overlaps {t}"
        for w in wanted
        for t in taken_ranges()
        if w.overlaps(t) and t not in ours and not t.is_loopback
    ]
    if clashes:
        raise RuntimeError(
            "multihost harness: address ranges already in use on this machine: "
            + "; ".join(sorted(set(clashes)))
            + " (run `python -m tests.multihost.harness --cleanup` if a killed run left them)"
        )
