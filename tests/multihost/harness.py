"""Several hosts on one machine: network namespaces with a Docker engine each, behind NAT.

    root ns (builds images, pushes) ── hmh-inet ("the internet", routes, knows no LAN)
                                        ├── hmh-cloud  public 100.72.1.2, its own dockerd; only
                                        │              the tunnel port(s) and the registry
                                        │              (TLS, port 5000) answer from outside
                                        ├── hmh-r1 (NAT: MASQUERADE, no inbound) ── hmh-ws1
                                        └── hmh-r2 (NAT: MASQUERADE, no inbound) ── hmh-ws2

Each of hmh-cloud, hmh-ws1, hmh-ws2 runs its own dockerd (started with `nsenter --net=`: `ip
netns exec` remounts /sys and dockerd then finds no cgroups), with its own data root, exec root,
socket and cgroup parent; `Host.docker_host` is its DOCKER_HOST. A Debian `docker-registry` runs
in hmh-cloud with a certificate from a CA made per run; the CA goes to
/etc/docker/certs.d/<registry>/ca.crt, which every engine on this machine reads (the root engine
too: it pushes there through its link to hmh-inet).

tests/multihost/bastion.py is the AWS-shaped variant: the cloud host private, behind a bastion.

Use it from pytest (tests.multihost.fixtures.py: the `multihost` fixture) or by hand:
    python -m tests.multihost.harness up|down|--cleanup
Everything it makes carries the `hmh` prefix and is removed by `MultiHost.down()`, by the atexit
hook, and by `--cleanup` (for what a killed run left).
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.multihost.cleanup import cleanup_stale, stop_pid
from tests.multihost.names import (
    CERTS_D,
    CLOUD_LINK,
    DATA,
    DATA_TMPFS_SIZE,
    INTERNET,
    LAN_RANGE,
    NETNS_DIR,
    PREFIX,
    REGISTRY_PORT,
    ROOT_LINK,
    RUN,
)
from tests.multihost.ranges import check_ranges
from tests.multihost.registry import start_registry

__all__ = ["CLOUD_LINK", "REGISTRY_PORT", "Host", "MultiHost", "Workstation", "cleanup_stale", "sh"]


@dataclass
class Host:
    """One simulated machine: a namespace with its own Docker engine."""

    name: str  # cloud | ws1 | ws2
    bip: str  # docker0 of this engine
    address: str  # its own address (public for cloud, LAN for a workstation)
    engine: subprocess.Popen[bytes] | None = None

    @property
    def netns(self) -> str:
        return f"{PREFIX}-{self.name}"

    @property
    def sock(self) -> Path:
        return RUN / f"{self.name}.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.sock}"

    @property
    def env(self) -> dict[str, str]:
        """The environment a shell on this host has: the docker CLI talks to its engine."""
        return {**os.environ, "DOCKER_HOST": self.docker_host}


@dataclass
class Workstation(Host):
    router_wan: str = ""  # the NAT router's public address (what the cloud host sees)
    wan_net: str = ""

    @property
    def router(self) -> str:
        return f"{PREFIX}-r{self.name[-1]}"


def sh(*argv: str, check: bool = True, netns: str | None = None, **kw: object) -> str:
    """Run a command (in a namespace's network with nsenter --net); its stdout."""
    cmd = [*(["nsenter", f"--net={NETNS_DIR / netns}"] if netns else []), *argv]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} -> {r.returncode}\n{r.stdout}{r.stderr}")
    return str(r.stdout)


def log(message: str) -> None:
    print(f"[multihost] {message}", file=sys.stderr, flush=True)


@dataclass
class MultiHost:
    """The topology above. `up()` makes it, `down()` removes all of it (idempotent)."""

    open_tcp: list[int] = field(default_factory=list)  # more inbound TCP ports on the cloud host
    tunnel_udp: int = 51820
    cloud: Host = field(default_factory=lambda: Host("cloud", "10.230.1.1/24", CLOUD_LINK[1]))
    workstations: list[Workstation] = field(
        default_factory=lambda: [
            Workstation(
                "ws1",
                "10.230.11.1/24",
                "10.230.10.2",
                router_wan="100.72.11.2",
                wan_net="100.72.11.0/24",
            ),
            Workstation(
                "ws2",
                "10.230.21.1/24",
                "10.230.20.2",
                router_wan="100.72.21.2",
                wan_net="100.72.21.0/24",
            ),
        ]
    )
    # The registry's storage: under the data root (removed with it) unless given; a session
    # passes one directory to every harness it makes, so a second topology's push finds the
    # layers already there (its engines still pull everything).
    registry_storage: Path | None = None
    registry: subprocess.Popen[bytes] | None = None
    started: bool = False

    @property
    def hosts(self) -> list[Host]:
        return [self.cloud, *self.workstations]

    @property
    def registry_addr(self) -> str:
        return f"{CLOUD_LINK[1]}:{REGISTRY_PORT}"

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    def workstation(self, name: str) -> Workstation:
        return next(w for w in self.workstations if w.name == name)

    # ---- making it ------------------------------------------------------------------------
    def up(self) -> MultiHost:
        cleanup_stale()
        check_ranges(self._ranges())
        atexit.register(self.down)
        self.started = True
        RUN.mkdir(parents=True, exist_ok=True)
        DATA.mkdir(parents=True, exist_ok=True)
        # Engines' data roots and the registry in memory: deleting gigabytes of image layers
        # from this disk takes minutes, from a tmpfs none.
        sh("mount", "-t", "tmpfs", "-o", f"size={DATA_TMPFS_SIZE},mode=0700", "hmh-data", str(DATA))
        t0 = time.monotonic()
        self._network()
        self._registry()
        for h in self.hosts:
            self._start_engine(h)
        for h in self.hosts:
            self.wait_engine(h)
        self._firewall_cloud()
        self._services()
        log(f"ready in {time.monotonic() - t0:.0f}s")
        self.describe()
        return self

    def _network(self) -> None:
        inet = f"{PREFIX}-inet"
        for ns in [inet, *self._namespaces()]:
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", netns=ns)
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", netns=inet)
        # The root namespace is on the internet too (it builds the images and pushes them).
        self._veth(inet, "inet-root", None, f"{PREFIX}-root", ROOT_LINK, 24)
        sh("ip", "route", "add", str(INTERNET), "via", ROOT_LINK[0])
        self._cloud_network(inet)
        for w in self.workstations:
            gw = str(ipaddress.IPv4Network(w.wan_net)[1])
            self._veth(inet, f"inet-{w.name}", w.router, "wan", (gw, w.router_wan), 24)
            sh("ip", "route", "add", "default", "via", gw, netns=w.router)
            lan_gw = str(ipaddress.IPv4Address(w.address) - 1)
            self._veth(w.router, "lan", w.netns, "eth0", (lan_gw, w.address), 24)
            sh("ip", "route", "add", "default", "via", lan_gw, netns=w.netns)
            sh("sysctl", "-qw", "net.ipv4.ip_forward=1", netns=w.router)
            # Source NAT out of the router's WAN side; nothing comes in unasked.
            for rule in (
                ["-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE"],
                [
                    "-A",
                    "FORWARD",
                    "-i",
                    "wan",
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "ESTABLISHED,RELATED",
                    "-j",
                    "ACCEPT",
                ],
                ["-A", "FORWARD", "-i", "wan", "-j", "DROP"],
            ):
                sh("iptables", *rule, netns=w.router)

    def _ranges(self) -> list[ipaddress.IPv4Network]:
        return [INTERNET, LAN_RANGE]

    def _services(self) -> None:
        """More to start once the engines answer (none here; see bastion.py)."""

    def _namespaces(self) -> list[str]:
        return [self.cloud.netns, *(n for w in self.workstations for n in (w.router, w.netns))]

    def _cloud_network(self, inet: str) -> None:
        """The cloud host on the internet at its public address."""
        self._veth(inet, "inet-cloud", self.cloud.netns, "wan", CLOUD_LINK, 24)
        sh("ip", "route", "add", "default", "via", CLOUD_LINK[0], netns=self.cloud.netns)

    @staticmethod
    def _veth(
        ns_a: str, name_a: str, ns_b: str | None, name_b: str, addrs: tuple[str, str], plen: int
    ) -> None:
        """A veth pair: name_a (addrs[0]) in ns_a, name_b (addrs[1]) in ns_b (None: root)."""
        tmp = f"{PREFIX}{os.getpid() % 100000}x"
        sh("ip", "link", "add", tmp, "type", "veth", "peer", "name", f"{tmp}y")
        sh("ip", "link", "set", tmp, "netns", ns_a)
        sh("ip", "link", "set", tmp, "name", name_a, netns=ns_a)
        if ns_b is not None:
            sh("ip", "link", "set", f"{tmp}y", "netns", ns_b)
        sh("ip", "link", "set", f"{tmp}y", "name", name_b, netns=ns_b)
        sh("ip", "addr", "add", f"{addrs[0]}/{plen}", "dev", name_a, netns=ns_a)
        sh("ip", "link", "set", name_a, "up", netns=ns_a)
        sh("ip", "addr", "add", f"{addrs[1]}/{plen}", "dev", name_b, netns=ns_b)
        sh("ip", "link", "set", name_b, "up", netns=ns_b)

    def _firewall_cloud(self) -> None:
        """Only the tunnel port, the registry and `open_tcp` answer on the cloud host's WAN.

        In mangle/PREROUTING, before Docker's DNAT, so it holds for published ports too."""
        ns = self.cloud.netns
        rules = [
            ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
            ["-p", "udp", "--dport", str(self.tunnel_udp), "-j", "ACCEPT"],
            ["-p", "tcp", "--dport", str(REGISTRY_PORT), "-j", "ACCEPT"],
            *(["-p", "tcp", "--dport", str(p), "-j", "ACCEPT"] for p in self.open_tcp),
            ["-j", "DROP"],
        ]
        for rule in rules:
            sh("iptables", "-t", "mangle", "-A", "PREROUTING", "-i", "wan", *rule, netns=ns)

    @property
    def registry_netns(self) -> str:
        """Where the registry runs (the cloud host here; reachable from every host)."""
        return self.cloud.netns

    def _registry(self) -> None:
        self.registry = start_registry(
            self.registry_netns, CLOUD_LINK[1], self.registry_storage or DATA / "reg"
        )

    def _start_engine(self, h: Host) -> None:
        cmd = [
            "nsenter", f"--net={NETNS_DIR / h.netns}", "dockerd",
            "--data-root", str(DATA / h.name), "--exec-root", str(RUN / h.name),
            "-H", h.docker_host, "-p", str(RUN / f"{h.name}.pid"), "--bip", h.bip,
            "--cgroup-parent", f"/{PREFIX}-{h.name}",
            "--containerd-namespace", f"{PREFIX}-{h.name}",
            "--containerd-plugins-namespace", f"{PREFIX}-{h.name}-plugins",
        ]  # fmt: skip
        logf = (RUN / f"{h.name}.log").open("ab")
        h.engine = subprocess.Popen(
            cmd, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_engine(self, h: Host, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = subprocess.run(
                ["docker", "-H", h.docker_host, "info"], capture_output=True, check=False
            )
            if r.returncode == 0:
                return
            if h.engine is not None and h.engine.poll() is not None:
                break
            time.sleep(0.5)
        tail = (RUN / f"{h.name}.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"dockerd for {h.name} did not start:\n{tail}")

    def describe(self) -> None:
        log(f"internet   {INTERNET} in netns {PREFIX}-inet; this machine at {ROOT_LINK[1]}")
        log(
            f"cloud      {self.cloud.address} (netns {self.cloud.netns}, "
            f"DOCKER_HOST={self.cloud.docker_host})"
        )
        log(
            f"  open:    udp/{self.tunnel_udp}, tcp/{REGISTRY_PORT} (registry)"
            + "".join(f", tcp/{p}" for p in self.open_tcp)
            + "; everything else dropped"
        )
        log(f"  registry https://{self.registry_addr} (CA in {CERTS_D / self.registry_addr})")
        for w in self.workstations:
            log(
                f"{w.name}        {w.address} behind NAT {w.router_wan} (netns {w.netns}, router "
                f"{w.router}, DOCKER_HOST={w.docker_host})"
            )

    # ---- faults ---------------------------------------------------------------------------
    def cut(self, ws: str) -> None:
        """The workstation's internet link goes down (its router's WAN cable pulled)."""
        sh("ip", "link", "set", f"inet-{ws}", "down", netns=f"{PREFIX}-inet")

    def restore(self, ws: str) -> None:
        sh("ip", "link", "set", f"inet-{ws}", "up", netns=f"{PREFIX}-inet")

    def renumber_nat(self, ws: str) -> str:
        """The router gets a new public address (a DHCP renew): a new masquerade source, its
        NAT state gone. Returns the new address."""
        w = self.workstation(ws)
        net = ipaddress.IPv4Network(w.wan_net)
        new = str(net[3] if w.router_wan == str(net[2]) else net[2])
        sh("ip", "addr", "flush", "dev", "wan", netns=w.router)
        sh("ip", "addr", "add", f"{new}/{net.prefixlen}", "dev", "wan", netns=w.router)
        sh("ip", "route", "replace", "default", "via", str(net[1]), netns=w.router)
        sh("conntrack", "-F", check=False, netns=w.router)
        w.router_wan = new
        return new

    def restart_engine(self, name: str) -> None:
        """Stop this host's dockerd (its containers stop with it) and start it again."""
        h = self.host(name)
        stop_pid(RUN / f"{h.name}.pid", h.engine, grace=60)
        self._start_engine(h)
        self.wait_engine(h)

    # ---- removing it ----------------------------------------------------------------------
    def down(self) -> None:
        if not self.started:
            return
        self.started = False
        t0 = time.monotonic()
        for h in self.hosts:
            if h.sock.exists():
                ids = sh("docker", "-H", h.docker_host, "ps", "-aq", check=False).split()
                if ids:
                    sh("docker", "-H", h.docker_host, "rm", "-f", *ids, check=False)
        cleanup_stale()
        log(f"torn down in {time.monotonic() - t0:.0f}s")


def main(argv: list[str]) -> int:
    if argv[:1] in (["--cleanup"], ["down"]):
        cleanup_stale()
        log("cleaned up")
        return 0
    if argv[:1] == ["up"]:
        mh = MultiHost().up()
        atexit.unregister(mh.down)
        log("left running: `python -m tests.multihost.harness --cleanup` removes it")
        return 0
    print("usage: python -m tests.multihost.harness up | down | --cleanup", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
