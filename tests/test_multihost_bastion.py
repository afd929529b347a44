"""The AWS shape on the multi-host harness (issue 12): a private controller behind a bastion.

`hpcstack deploy cloud` runs from this machine through the bastion's sshd to the controller's
(tests/multihost/bastion.py: Debian's OpenSSH, the repo's hardening file, a per-run key), which
starts the cloud site on the controller's own engine, images pulled from the registry through
the NAT gateway. A workstation behind NAT then joins with the README's steps, its tunnel
endpoint the bastion's public address; the bastion forwards the tunnel port with the rules
cloud-init installs (templates/tunnel-forward.nft.tftpl, rendered by Terraform). WireGuard mode
and one workstation only: the plain topology (test_multihost_e2e.py) covers the rest.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.clusterlib import wait_for
from tests.multihost.bastion import (
    BASTION_PRIVATE,
    CONTROLLER,
    NAT_GW_PRIVATE,
    REMOTE_DIR,
    BastionMultiHost,
)
from tests.multihost.fixtures import multihost_factory, new_multihost  # noqa: F401
from tests.multihost.harness import CLOUD_LINK, Host, MultiHost, sh
from tests.multihost.names import INTERNET, LOGIN_USER, RUN
from tests.multihost.stack import definition
from tests.multihost.steps import BUILD_STEPS, EXPORT_STEP, WORKSTATION_STEPS, root_env, run_step

pytestmark = [pytest.mark.docker, pytest.mark.multihost]

SITE = "lab1"
NODES = ["a1", "a2"]
PROBE = (
    "import socket,sys; s=socket.socket(); s.settimeout(3)\n"
    "try: s.connect((sys.argv[1], int(sys.argv[2]))); print('open')\n"
    "except OSError as e: print('closed', e)"
)


@dataclass
class Lab:
    mh: BastionMultiHost
    build: Path  # the operator's machine (this one): generate, images --push, deploy cloud
    ws: Path

    def docker(self, host: Host, *args: str, check: bool = True) -> str:
        r = subprocess.run(
            ["docker", *args], env=host.env, capture_output=True, text=True, timeout=300
        )
        if check and r.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} on {host.name}: {r.stderr}")
        return r.stdout

    def container(self, host: Host, service: str) -> str:
        ids = self.docker(
            host, "ps", "-q", "--filter", f"label=com.docker.compose.service={service}"
        ).split()
        assert ids, f"no running {service} on {host.name}"
        return ids[0]

    def ctl(self, *argv: str, check: bool = True) -> str:
        cloud = self.mh.cloud
        return self.docker(cloud, "exec", self.container(cloud, "slurmctld"), *argv, check=check)

    def idle(self) -> bool:
        out = self.ctl("sinfo", "-h", "-N", "-p", "all", "-o", "%N %T", check=False)
        states = dict(line.split() for line in out.splitlines() if line.strip())
        return all(states.get(n) in ("idle", "mixed") for n in NODES)


def deploy_step(mh: BastionMultiHost) -> str:
    """What an operator runs against AWS, the addresses given instead of looked up."""
    return (
        f"hpcstack deploy cloud --bastion {CLOUD_LINK[1]} --controller {CONTROLLER} "
        f"--user {LOGIN_USER} --identity {mh.key} --known-hosts {mh.known_hosts} "
        f"--remote-dir {REMOTE_DIR}"
    )


@pytest.fixture(scope="module")
def lab(
    multihost_factory: list[MultiHost],  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Lab]:
    mh = new_multihost(multihost_factory, BastionMultiHost)
    assert isinstance(mh, BastionMultiHost)
    base = tmp_path_factory.mktemp("multihost-bastion")
    lab = Lab(mh, base / "build", base / "ws1")
    for d in (lab.build, lab.ws):
        d.mkdir()
        (d / "stack.yaml").write_text(definition("wireguard", sites=(SITE,)))
    try:
        yield lab
    finally:
        for host in mh.hosts:
            ids = lab.docker(host, "ps", "-aq", check=False).split()
            if ids:
                lab.docker(host, "rm", "-f", *ids, check=False)
        listed = subprocess.run(
            ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
            capture_output=True, text=True, check=False,
        ).stdout.split()  # fmt: skip
        refs = [r for r in listed if r.startswith(f"{mh.registry_addr}/")]
        if refs:
            subprocess.run(["docker", "rmi", *refs], capture_output=True, check=False)
        mh.down()


def test_deploy_through_the_bastion_then_a_workstation_joins(lab: Lab) -> None:
    mh, cloud, ws1 = lab.mh, lab.mh.cloud, lab.mh.workstation("ws1")
    t0 = time.monotonic()
    # The controller is private: no address on the internet, its way out the NAT gateway, and
    # nothing from outside reaches it; the bastion answers SSH.
    addrs = json.loads(sh("ip", "-j", "-4", "addr", netns=cloud.netns))
    mine = [ipaddress.IPv4Address(a["local"]) for link in addrs for a in link["addr_info"]]
    assert mine and not any(a in INTERNET for a in mine), mine
    assert all(a.is_private for a in mine), mine
    route = sh("ip", "route", "get", ws1.router_wan, netns=cloud.netns)
    assert f"via {NAT_GW_PRIVATE} dev vpc" in route, route
    assert sh("python3", "-c", PROBE, CONTROLLER, "22", netns=ws1.netns).startswith("closed")
    assert sh("python3", "-c", PROBE, CLOUD_LINK[1], "22", netns=ws1.netns).strip() == "open"

    # This machine: generate, build and push the images, deploy through the bastion.
    for step in BUILD_STEPS:
        run_step(step, lab.build, root_env(), timeout=1800)
    deployed = run_step(deploy_step(mh), lab.build, root_env())
    assert "copied" in deployed.stderr + deployed.stdout
    print(f"deployed through the bastion {time.monotonic() - t0:.0f}s in")
    assert "slurmctld" in lab.docker(cloud, "ps", "--format", "{{.Names}}")
    images = lab.docker(cloud, "images", "--format", "{{.Repository}}:{{.Tag}}").split()
    assert images and all(i.startswith(f"{mh.registry_addr}/") for i in images), images
    digests = lab.docker(cloud, "image", "inspect", "-f", "{{.RepoDigests}}", *images)
    assert digests.count(mh.registry_addr) >= len(images), digests  # pulled, not built
    sshd_log = (RUN / "sshd-cloud.log").read_text()
    assert f"Accepted publickey for {LOGIN_USER} from {BASTION_PRIVATE}" in sshd_log, sshd_log

    # The workstation: the site's share of the secrets, then the README's steps.
    run_step(EXPORT_STEP.format(site=SITE), lab.build, root_env())
    shutil.copy(lab.build / f"{SITE}-secrets.tar", lab.ws)
    outputs = [run_step(s.format(site=SITE), lab.ws, ws1.env) for s in WORKSTATION_STEPS]
    assert all(n in outputs[-1].stdout for n in NODES), outputs[-1].stdout
    wait_for("lab1 idle in the controller's view", lab.idle, 60, interval=2)
    print(f"workstation joined {time.monotonic() - t0:.0f}s in")

    # A job step across the workstation's nodes, from the controller.
    out = lab.ctl("srun", "-N", "2", "-p", "all", "-t", "1", "hostname")
    assert sorted(out.split()) == NODES, out

    # The tunnel came through the bastion: the hub sees its nodes at the bastion's private
    # address (its masquerade), and the bastion's conntrack holds the forward.
    hub = lab.container(cloud, "tunnel")
    endpoints = lab.docker(cloud, "exec", hub, "wg", "show", "wg0", "endpoints")
    peers = [line.split("\t")[1] for line in endpoints.splitlines() if "\t" in line]
    assert len(peers) == len(NODES) and all(p.startswith(f"{BASTION_PRIVATE}:") for p in peers), (
        endpoints
    )
    flows = sh("conntrack", "-L", "-p", "udp", "--dport", str(mh.tunnel_udp), netns=mh.bastion)
    forwarded = f"src={ws1.router_wan} dst={CLOUD_LINK[1]}"
    assert forwarded in flows and f"src={CONTROLLER} dst={BASTION_PRIVATE}" in flows, flows
    print(f"bastion path checked {time.monotonic() - t0:.0f}s in")
