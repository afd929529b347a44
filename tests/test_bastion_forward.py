"""The bastion's forwarding, for real: the rules cloud-init installs, loaded into a network
namespace that plays the bastion, between a workstation behind NAT and a private controller.

    ws (10.231.1.2) ── nat (MASQUERADE) ── 100.65.1.1 bastion 10.231.3.1 ── ctrl (10.231.3.10)

The rules are rendered by `terraform console` from templates/tunnel-forward.nft.tftpl, the very
file instances.tf hands cloud-init (tests/tunnel_rules.py), and loaded with `nft -f` as the
bastion's unit does. The controller has no default route (as on AWS, where its default route is
the NAT gateway, not the bastion): a reply reaches the workstation only because the bastion
masquerades. A broken rule in the template fails here. Needs root and nft (Debian's nftables);
under CI a missing one fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.tunnel_rules import render_tunnel_forward

pytestmark = pytest.mark.netns
BASTION_PUBLIC = "100.65.1.1"
CONTROLLER = "10.231.3.10"

ECHO = textwrap.dedent(
    """
    import socket, sys
    proto, port = sys.argv[1], int(sys.argv[2])
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    s = socket.socket(socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    print("ready", flush=True)
    if proto == "udp":
        while True:
            data, peer = s.recvfrom(512)
            s.sendto(data + b" seen-from " + peer[0].encode(), peer)
    s.listen(4)
    while True:
        conn, peer = s.accept()
        conn.sendall(conn.recv(512) + b" seen-from " + peer[0].encode())
        conn.close()
    """
)

ASK = textwrap.dedent(
    """
    import socket, sys
    proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    s = socket.socket(socket.AF_INET, kind)
    s.settimeout(2)
    try:
        if proto == "udp":
            s.sendto(b"hello", (host, port))
            print(s.recvfrom(512)[0].decode())
        else:
            s.connect((host, port))
            s.sendall(b"hello")
            print(s.recv(512).decode())
    except OSError as exc:
        print(f"no answer: {exc}")
    """
)


def _need_tools() -> None:
    missing = [t for t in ("ip", "nft") if shutil.which(t) is None]
    problem = None
    if os.geteuid() != 0:
        problem = "needs root (network namespaces)"
    elif missing:
        problem = f"needs {', '.join(missing)} (apt-get install iproute2 nftables)"
    if problem is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI: {problem}", pytrace=False)
    pytest.skip(problem)


def sh(*argv: str, ns: str | None = None, check: bool = True) -> str:
    cmd = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: {result.stderr}")
    return result.stdout


@dataclass(frozen=True)
class Lab:
    ws: str
    nat: str
    bastion: str
    ctrl: str


def _link(a: str, a_if: str, a_ip: str, b: str, b_if: str, b_ip: str) -> None:
    tmp_a, tmp_b = f"v{uuid.uuid4().hex[:10]}", f"v{uuid.uuid4().hex[:10]}"
    sh("ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
    sh("ip", "link", "set", tmp_a, "netns", a)
    sh("ip", "link", "set", tmp_b, "netns", b)
    for ns, tmp, name, ip in ((a, tmp_a, a_if, a_ip), (b, tmp_b, b_if, b_ip)):
        sh("ip", "link", "set", tmp, "name", name, ns=ns)
        sh("ip", "addr", "add", ip, "dev", name, ns=ns)
        sh("ip", "link", "set", "dev", name, "up", ns=ns)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    _need_tools()
    tag = uuid.uuid4().hex[:6]
    names = Lab(f"hpaws-{tag}-ws", f"hpaws-{tag}-nat", f"hpaws-{tag}-bastion", f"hpaws-{tag}-ctrl")
    made: list[str] = []
    try:
        for ns in (names.ws, names.nat, names.bastion, names.ctrl):
            sh("ip", "netns", "add", ns)
            made.append(ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        _link(names.ws, "eth0", "10.231.1.2/24", names.nat, "lan", "10.231.1.1/24")
        _link(names.nat, "wan", "100.65.1.2/24", names.bastion, "public", f"{BASTION_PUBLIC}/24")
        _link(names.bastion, "private", "10.231.3.1/24", names.ctrl, "eth0", f"{CONTROLLER}/24")
        sh("ip", "route", "add", "default", "via", "10.231.1.1", ns=names.ws)
        # The home router: source NAT, nothing inbound.
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=names.nat)
        sh("nft", "add", "table", "ip", "homenat", ns=names.nat)
        hook = "{ type nat hook postrouting priority srcnat; }"
        sh("nft", "add", "chain", "ip", "homenat", "post", hook, ns=names.nat)
        masq = ["ip", "saddr", "10.231.1.0/24", "oifname", "wan", "masquerade"]
        sh("nft", "add", "rule", "ip", "homenat", "post", *masq, ns=names.nat)
        # The bastion: what its cloud-init sysctl file sets; the rules come per test.
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=names.bastion)
        # The controller: no default route at all (see the module docstring).
        yield names
    finally:
        for ns in made:
            sh("ip", "netns", "delete", ns, check=False)


def render_rules(tmp_path: Path, protocol: str, port: int) -> str:
    """templates/tunnel-forward.nft.tftpl, rendered by Terraform itself."""
    return render_tunnel_forward(tmp_path, protocol, port, CONTROLLER)


@pytest.fixture
def echo(lab: Lab) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        proc.terminate()
        proc.wait(timeout=5)


def start_echo(lab: Lab, started: list[subprocess.Popen[str]], proto: str, port: int) -> None:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", lab.ctrl, sys.executable, "-c", ECHO, proto, str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    started.append(proc)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"


def ask(lab: Lab, proto: str, host: str, port: int) -> str:
    return sh(sys.executable, "-c", ASK, proto, host, str(port), ns=lab.ws).strip()


def load(lab: Lab, rules: str, tmp_path: Path) -> None:
    path = tmp_path / "tunnel-forward.nft"
    path.write_text(rules)
    sh("nft", "-f", str(path), ns=lab.bastion)  # what hpcstack-tunnel-forward.service runs


@pytest.mark.parametrize(("proto", "port"), [("udp", 51820), ("tcp", 2222)])
def test_workstation_behind_nat_reaches_the_private_controller_through_the_bastion(
    lab: Lab, echo: list[subprocess.Popen[str]], tmp_path: Path, proto: str, port: int
) -> None:
    start_echo(lab, echo, proto, port)
    start_echo(lab, echo, proto, port + 1)
    # Before the rules: the bastion's public address does not lead to the controller.
    sh("nft", "flush", "ruleset", ns=lab.bastion)
    assert ask(lab, proto, BASTION_PUBLIC, port).startswith("no answer")
    load(lab, render_rules(tmp_path, proto, port), tmp_path)
    # The tunnel port reaches the controller, which sees the bastion (masquerade), so its
    # reply finds the way back without any route to the workstation.
    assert ask(lab, proto, BASTION_PUBLIC, port) == "hello seen-from 10.231.3.1"
    # Only that port, only that protocol.
    assert ask(lab, proto, BASTION_PUBLIC, port + 1).startswith("no answer")
    other = "tcp" if proto == "udp" else "udp"
    assert ask(lab, other, BASTION_PUBLIC, port).startswith("no answer")
    # The controller's own address is not reachable from the workstation's side at all.
    assert ask(lab, proto, CONTROLLER, port).startswith("no answer")
    # Loading the file again (the unit restarting) replaces the table rather than doubling it.
    load(lab, render_rules(tmp_path, proto, port), tmp_path)
    listed = sh("nft", "list", "table", "ip", "hpcstack_tunnel", ns=lab.bastion)
    assert listed.count("dnat to") == 1
