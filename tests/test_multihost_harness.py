"""Smoke test of the multi-host harness itself: engines answer, NAT and the cloud firewall hold,
and an image pushed from this machine reaches a workstation through the cloud host's registry."""

from __future__ import annotations

import subprocess

import pytest
from tests.multihost.fixtures import (
    multihost,  # noqa: F401  (the fixture)
    multihost_factory,  # noqa: F401
)
from tests.multihost.harness import CLOUD_LINK, MultiHost, sh

pytestmark = [pytest.mark.docker, pytest.mark.multihost]

PROBE = (
    "import socket,sys; s=socket.socket(); s.settimeout(3)\n"
    "try: s.connect((sys.argv[1], int(sys.argv[2]))); print('open')\n"
    "except OSError as e: print('closed', e)"
)


def tcp(netns: str, host: str, port: int) -> str:
    return sh("python3", "-c", PROBE, host, str(port), netns=netns).strip()


def test_engines_nat_firewall_and_registry(multihost: MultiHost) -> None:  # noqa: F811
    mh = multihost
    for h in mh.hosts:
        out = subprocess.run(
            ["docker", "info", "--format", "{{.Name}}"], env=h.env, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
    ws1 = mh.workstation("ws1")
    # The registry answers a workstation through the internet namespace; ssh (22) does not.
    assert tcp(ws1.netns, CLOUD_LINK[1], 5000) == "open"
    assert tcp(ws1.netns, CLOUD_LINK[1], 22).startswith("closed")
    # Nothing reaches a workstation from outside: its LAN is not routed, its router NATs.
    assert tcp(mh.cloud.netns, ws1.address, 22).startswith("closed")
    # An image goes this machine -> cloud registry -> workstation, as users get them.
    ref = f"{mh.registry_addr}/hmh-smoke:1"
    subprocess.run(["docker", "tag", "debian:forky-slim", ref], check=True)
    try:
        subprocess.run(["docker", "push", "-q", ref], check=True, capture_output=True)
    finally:
        subprocess.run(["docker", "rmi", ref], check=False, capture_output=True)
    pulled = subprocess.run(
        ["docker", "pull", "-q", ref], env=ws1.env, capture_output=True, text=True
    )
    assert pulled.returncode == 0, pulled.stderr
    ran = subprocess.run(
        ["docker", "run", "--rm", ref, "cat", "/etc/debian_version"],
        env=ws1.env,
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0 and ran.stdout.strip(), ran.stderr
    # The cloud host sees the workstation's NAT address, not its LAN address.
    seen = sh("conntrack", "-L", "-p", "tcp", "--dport", "5000", check=False, netns=mh.cloud.netns)
    assert ws1.router_wan in seen and ws1.address not in seen, seen
