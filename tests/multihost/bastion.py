"""The multi-host harness shaped like terraform/aws: the cloud host private, behind a bastion.

    root ns ── hmh-inet ── hmh-bastion  public 100.72.1.2 (sshd :22, the tunnel port forwarded by
       │          │                     the rendered tunnel-forward.nft; the registry :5000)
       │          ├── hmh-natgw        public 100.72.3.2 (MASQUERADE: the VPC's way out)
       │          └── hmh-r1 (NAT) ── hmh-ws1
       │
    hmh-vpc (a bridge: the VPC's private subnet 10.229.1.0/24)
       ├── hmh-bastion   10.229.1.1
       ├── hmh-natgw     10.229.1.254
       └── hmh-cloud     10.229.1.10, its own dockerd and sshd; no address on the internet, its
                         default route the NAT gateway (as on AWS)

The bastion's forwarding is what cloud-init installs there: templates/tunnel-forward.nft.tftpl
rendered by `terraform console`, loaded with `nft -f`. It masquerades, and that is needed here as
on AWS: without it the controller's replies would leave through the NAT gateway, from an address
the workstation's NAT never sent to. Both sshds are Debian's OpenSSH with the repo's
sshd-hardening.conf, a key made per run, one login user (LOGIN_USER); the controller's accepts
logins only from the bastion (its security group) and sets DOCKER_HOST to the cloud engine, so
`hpcstack deploy cloud` runs its `docker compose ... up` there. The registry stands in for ECR;
it sits in the bastion's namespace only to keep the plain topology's registry address and CA.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.multihost.harness import Host, MultiHost, Workstation, log, sh
from tests.multihost.names import (
    CLOUD_LINK,
    INTERNET,
    LAN_RANGE,
    LOGIN_USER,
    NAT_GW_LINK,
    NETNS_DIR,
    PREFIX,
    REGISTRY_PORT,
    ROOT_LINK,
    RUN,
    VPC,
)
from tests.tunnel_rules import REPO, render_tunnel_forward

BASTION_PRIVATE = str(VPC[1])
NAT_GW_PRIVATE = str(VPC[254])
CONTROLLER = str(VPC[10])
HARDENING = REPO / "terraform" / "aws" / "templates" / "sshd-hardening.conf"
SSH_DIR = RUN / "ssh"
REMOTE_DIR = RUN / "controller" / "opt-hpcstack"  # --remote-dir: the controller's /opt/hpcstack
SSHD = "/usr/sbin/sshd"  # sshd re-executes itself: an absolute path


def one_workstation() -> list[Workstation]:
    """The plain topology's ws1 (one is enough here)."""
    return [
        Workstation(
            "ws1", "10.230.11.1/24", "10.230.10.2", router_wan="100.72.11.2",
            wan_net="100.72.11.0/24",
        )
    ]  # fmt: skip


@dataclass
class BastionMultiHost(MultiHost):
    """MultiHost with the cloud host in a private subnet behind a bastion (see above)."""

    cloud: Host = field(default_factory=lambda: Host("cloud", "10.230.1.1/24", CONTROLLER))
    workstations: list[Workstation] = field(default_factory=one_workstation)
    sshds: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def bastion(self) -> str:
        return f"{PREFIX}-bastion"

    @property
    def natgw(self) -> str:
        return f"{PREFIX}-natgw"

    @property
    def vpc(self) -> str:
        return f"{PREFIX}-vpc"

    @property
    def registry_netns(self) -> str:
        return self.bastion

    @property
    def key(self) -> Path:
        """The per-run private key both sshds accept (for --identity)."""
        return SSH_DIR / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        """Both host keys, pinned (for --known-hosts)."""
        return SSH_DIR / "known_hosts"

    def _ranges(self) -> list[ipaddress.IPv4Network]:
        return [INTERNET, LAN_RANGE, VPC]

    def _namespaces(self) -> list[str]:
        return [self.bastion, self.natgw, self.vpc, *super()._namespaces()]

    # ---- the network ----------------------------------------------------------------------
    def _cloud_network(self, inet: str) -> None:
        self._veth(inet, "inet-cloud", self.bastion, "wan", CLOUD_LINK, 24)
        sh("ip", "route", "add", "default", "via", CLOUD_LINK[0], netns=self.bastion)
        self._veth(inet, "inet-natgw", self.natgw, "wan", NAT_GW_LINK, 24)
        sh("ip", "route", "add", "default", "via", NAT_GW_LINK[0], netns=self.natgw)
        sh("ip", "link", "add", "br0", "type", "bridge", netns=self.vpc)
        sh("ip", "link", "set", "br0", "up", netns=self.vpc)
        for ns, ip in (
            (self.bastion, BASTION_PRIVATE),
            (self.natgw, NAT_GW_PRIVATE),
            (self.cloud.netns, CONTROLLER),
        ):
            self._vpc_port(ns, ip)
        sh("ip", "route", "add", "default", "via", NAT_GW_PRIVATE, netns=self.cloud.netns)
        for ns in (self.bastion, self.natgw):
            sh("sysctl", "-qw", "net.ipv4.ip_forward=1", netns=ns)
        masq = ["-t", "nat", "-A", "POSTROUTING", "-s", str(VPC), "-o", "wan", "-j", "MASQUERADE"]
        sh("iptables", *masq, netns=self.natgw)
        # The bastion's forwarding: what its cloud-init unit loads.
        workdir = RUN / "tunnel-forward"
        workdir.mkdir(parents=True, exist_ok=True)
        rules = render_tunnel_forward(workdir, "udp", self.tunnel_udp, CONTROLLER)
        (workdir / "tunnel-forward.nft").write_text(rules)
        sh("nft", "-f", str(workdir / "tunnel-forward.nft"), netns=self.bastion)

    def _vpc_port(self, ns: str, ip: str) -> None:
        """A veth from `ns` (its `vpc`, at ip) to a port of the VPC's bridge."""
        port = f"p-{ns.removeprefix(f'{PREFIX}-')}"
        tmp = f"{PREFIX}{os.getpid() % 100000}v"
        sh("ip", "link", "add", tmp, "type", "veth", "peer", "name", f"{tmp}y")
        sh("ip", "link", "set", tmp, "netns", self.vpc)
        sh("ip", "link", "set", tmp, "name", port, "master", "br0", "up", netns=self.vpc)
        sh("ip", "link", "set", f"{tmp}y", "netns", ns)
        sh("ip", "link", "set", f"{tmp}y", "name", "vpc", netns=ns)
        sh("ip", "addr", "add", f"{ip}/{VPC.prefixlen}", "dev", "vpc", netns=ns)
        sh("ip", "link", "set", "vpc", "up", netns=ns)

    def _firewall_cloud(self) -> None:
        """Security groups: the bastion answers SSH, the tunnel port and the registry; the
        controller takes the tunnel port from the VPC and SSH only from the bastion."""
        bastion = [
            ["-p", "tcp", "--dport", "22", "-j", "ACCEPT"],
            ["-p", "udp", "--dport", str(self.tunnel_udp), "-j", "ACCEPT"],
            ["-p", "tcp", "--dport", str(REGISTRY_PORT), "-j", "ACCEPT"],
        ]
        controller = [
            ["-p", "udp", "--dport", str(self.tunnel_udp), "-s", str(VPC), "-j", "ACCEPT"],
            ["-p", "tcp", "--dport", "22", "-s", BASTION_PRIVATE, "-j", "ACCEPT"],
        ]
        groups = ((self.bastion, "wan", bastion), (self.cloud.netns, "vpc", controller))
        for ns, dev, rules in groups:
            for rule in [
                ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
                *rules,
                ["-j", "DROP"],
            ]:
                sh("iptables", "-t", "mangle", "-A", "PREROUTING", "-i", dev, *rule, netns=ns)

    # ---- the sshds ------------------------------------------------------------------------
    def _services(self) -> None:
        SSH_DIR.mkdir(parents=True, exist_ok=True)
        home = RUN / "home"
        sh("useradd", "-M", "-d", str(home), "-s", "/bin/sh", "-p", "*", LOGIN_USER)
        user = pwd.getpwnam(LOGIN_USER)
        for d, mode in ((home, 0o700), (REMOTE_DIR, 0o750)):
            d.mkdir(parents=True, exist_ok=True)
            os.chown(d, user.pw_uid, user.pw_gid)
            d.chmod(mode)
        # The login user's docker CLI talks to the cloud host's engine (as `docker` group would).
        os.chown(self.cloud.sock, 0, user.pw_gid)
        self.cloud.sock.chmod(0o660)
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hmh-deploy", "-f", str(self.key))
        shutil.copy(self.key.with_suffix(".pub"), SSH_DIR / "authorized_keys")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        known = []
        for name, ns, listen, extra in (
            ("bastion", self.bastion, CLOUD_LINK[1], [f"AllowUsers {LOGIN_USER}"]),
            (
                "cloud",
                self.cloud.netns,
                CONTROLLER,
                [
                    f"AllowUsers {LOGIN_USER}@{BASTION_PRIVATE}",
                    f"SetEnv DOCKER_HOST={self.cloud.docker_host}",
                ],
            ),
        ):
            hostkey = SSH_DIR / f"{name}_host_ed25519_key"
            sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(hostkey))
            pub = hostkey.with_suffix(".pub").read_text().split()
            known.append(f"{listen} {pub[0]} {pub[1]}")
            self.sshds.append(self._sshd(name, ns, listen, hostkey, extra))
        self.known_hosts.write_text("\n".join(known) + "\n")
        for name in ("bastion", "cloud"):
            self._wait_sshd(name)

    def _sshd(
        self, name: str, ns: str, listen: str, hostkey: Path, extra: list[str]
    ) -> subprocess.Popen[bytes]:
        config = SSH_DIR / f"sshd_{name}.conf"
        config.write_text(
            "\n".join(
                [
                    f"Include {HARDENING}",  # first: sshd keeps the first value it reads
                    f"ListenAddress {listen}:22",
                    f"HostKey {hostkey}",
                    f"AuthorizedKeysFile {SSH_DIR / 'authorized_keys'}",
                    "PidFile none",
                    "UsePAM no",
                    "Subsystem sftp internal-sftp",
                    *extra,
                    "",
                ]
            )
        )
        sh(SSHD, "-t", "-f", str(config))
        logf = (RUN / f"sshd-{name}.log").open("ab")
        proc = subprocess.Popen(
            ["nsenter", f"--net={NETNS_DIR / ns}", SSHD, "-D", "-e", "-f", str(config)],
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        (RUN / f"sshd-{name}.pid").write_text(f"{proc.pid}\n")  # cleanup stops it
        return proc

    def _wait_sshd(self, name: str, timeout: float = 20) -> None:
        logfile = RUN / f"sshd-{name}.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "Server listening" in logfile.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"sshd for {name} did not start:\n{logfile.read_text()[-2000:]}")

    def describe(self) -> None:
        log(f"internet   {INTERNET} in netns {PREFIX}-inet; this machine at {ROOT_LINK[1]}")
        log(
            f"bastion    {CLOUD_LINK[1]} (netns {self.bastion}): sshd :22, udp/{self.tunnel_udp} "
            f"-> {CONTROLLER}, registry :{REGISTRY_PORT}; everything else dropped"
        )
        log(
            f"controller {CONTROLLER} in VPC {VPC} (netns {self.cloud.netns}, bridge in "
            f"{self.vpc}, DOCKER_HOST={self.cloud.docker_host}); sshd :22 from "
            f"{BASTION_PRIVATE} only; out through {self.natgw} ({NAT_GW_LINK[1]})"
        )
        log(f"  login    {LOGIN_USER}, key {self.key}, known_hosts {self.known_hosts}")
        for w in self.workstations:
            log(f"{w.name}        {w.address} behind NAT {w.router_wan} (netns {w.netns})")
