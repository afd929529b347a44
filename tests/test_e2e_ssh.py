"""End to end, reverse-SSH mode: the cloud site's sshd and a local site that dials it.

One cluster for the module, from tests/fixtures/definitions/ssh-mode.yaml (cluster `hpcssh`,
subnets 172.31.0.0/24 and 172.31.1.0/24, sshd on host port 12222, no monitoring). The two
Docker networks reach each other only through the site's one ssh connection.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from clusterlib import (
    Controller,
    docker,
    hpcstack,
    run_cli,
    running_cluster,
    started_at,
    wait_for,
)
from hpcstack.output.secrets import ssh_private_key

pytestmark = pytest.mark.docker

NAME = "hpcssh"
CTL = f"{NAME}-cloud-slurmctld-1"
_CTL = Controller(CTL)
ctl = _CTL.run
as_user = _CTL.as_user
node_states = _CTL.node_states
SSHD = f"{NAME}-cloud-sshd-1"
CLIENT = f"{NAME}-local-ssh-tunnel-1"
SSH_PORT = 12222
CTL_ADDR = "172.31.0.12"
SSHD_ADDR = "172.31.0.19"
NODE_PORTS = {"node1": 17001, "node2": 17002}


def all_idle() -> bool:
    return node_states() == {"node1": "idle", "node2": "idle"}


def batch_on_two_nodes(tag: str) -> tuple[str, list[str]]:
    """A two-node batch job whose script launches a step on both nodes; its output lines."""
    job = as_user(
        f"cd /shared && sbatch --parsable --wait --nodes=2 --output=/shared/{tag}-%j.out "
        "--wrap 'srun hostname'"
    ).strip()
    return job, ctl("cat", f"/shared/{tag}-{job}.out").split()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> Iterator[Path]:
    definition = (repo / "tests" / "fixtures" / "definitions" / "ssh-mode.yaml").read_text()
    with running_cluster(tmp_path_factory.mktemp("e2e-ssh"), definition, NAME) as out:
        yield out


def test_nodes_registered_through_the_reverse_tunnels(cluster: Path) -> None:
    assert all_idle(), node_states()
    status = json.loads(run_cli(cluster, "status", "--json").stdout)
    # slurmctld knows each node at the sshd container, on the node's own port.
    nodes = {n["name"]: n["addr"] for n in status["nodes"]}
    assert nodes == {"node1": SSHD_ADDR, "node2": SSHD_ADDR}
    for name, port in NODE_PORTS.items():
        assert f"Port={port}" in ctl("scontrol", "show", "node", name)
    tunnel = {p["name"]: p for p in status["tunnel"]}
    assert {n: (p["endpoint"], p["up"]) for n, p in tunnel.items()} == {
        n: (f"{SSHD_ADDR}:{port}", True) for n, port in NODE_PORTS.items()
    }
    services = {s["service"]: s["health"] for s in status["sites"]["cloud"]}
    assert services["sshd"] == "healthy"
    assert "tunnel" not in services  # no WireGuard hub in ssh mode


def test_sites_meet_only_through_ssh(cluster: Path) -> None:
    # A container on the local site's network, without the tunnel, cannot reach slurmctld.
    probe = docker(
        "run", "--rm", "--network", f"{NAME}-local", "--entrypoint", "bash",
        "hpcstack-slurm:0.1.0", "-c", f"timeout 3 bash -c '</dev/tcp/{CTL_ADDR}/6817'",
        check=False,
    )  # fmt: skip
    assert probe.returncode != 0
    # The site's ssh client holds exactly one connection, to the sshd's published port.
    conns = docker("exec", CLIENT, "ss", "-Htn", "state", "established").stdout.splitlines()
    assert len([c for c in conns if c.split()[-1].endswith(f":{SSH_PORT}")]) == 1, conns


def test_batch_job_runs_on_both_nodes(cluster: Path) -> None:
    job, lines = batch_on_two_nodes("ssh")
    assert job.isdigit()
    assert sorted(lines) == ["node1", "node2"]
    sacct = wait_for(
        "sacct to record the job",
        lambda: "COMPLETED" in (s := ctl("sacct", "-n", "-X", "-j", job, "-o", "State")) and s,
        timeout=30,
    )
    assert sacct.split() == ["COMPLETED"]


def test_password_login_is_refused(cluster: Path) -> None:
    known = (cluster / "secrets" / "ssh" / "pub" / "known_hosts").read_text().split()
    for user in ("tunnel", "root", "hpc"):
        transport = paramiko.Transport(("127.0.0.1", SSH_PORT))
        try:
            transport.start_client(timeout=10)
            # The server is the one the sites pin.
            key = transport.get_remote_server_key()
            assert [key.get_name(), key.get_base64()] == known[1:3]
            with pytest.raises(paramiko.BadAuthenticationType) as err:
                transport.auth_password(user, "not-a-password")
            assert err.value.allowed_types == ["publickey"]
        finally:
            transport.close()


def test_an_unknown_key_is_refused(cluster: Path) -> None:
    transport = paramiko.Transport(("127.0.0.1", SSH_PORT))
    try:
        transport.start_client(timeout=10)
        with pytest.raises(paramiko.AuthenticationException):
            stranger = io.StringIO(ssh_private_key().decode())
            transport.auth_publickey("tunnel", paramiko.Ed25519Key(file_obj=stranger))
    finally:
        transport.close()


def test_a_cut_tunnel_heals_by_itself(cluster: Path) -> None:
    client_started = started_at(CLIENT)
    docker("stop", SSHD)
    try:
        # Past SlurmdTimeout the silent nodes go DOWN (a job is never sent to them then).
        wait_for(
            "nodes to go down",
            lambda: all(s.startswith("down") for s in node_states().values()),
            timeout=120,
        )
        status = json.loads(run_cli(cluster, "status", "--json").stdout)
        assert not any(p["up"] for p in status["tunnel"]), status["tunnel"]
        # A job submitted while the site is cut off waits and runs once it is back.
        queued = as_user(
            "cd /shared && sbatch --parsable --nodes=2 --output=/shared/queued-%j.out "
            "--wrap 'srun hostname'"
        ).strip()
    finally:
        docker("start", SSHD)
    wait_for("both nodes idle again", all_idle, timeout=240)
    assert started_at(CLIENT) == client_started  # the ssh loop reconnected; no restart
    state = wait_for(
        "the queued job to finish",
        lambda: (
            (s := ctl("sacct", "-n", "-X", "-j", queued, "-o", "State").split())
            and s[0] not in ("PENDING", "RUNNING")
            and s
        ),
        timeout=120,
    )
    assert state == ["COMPLETED"]
    assert sorted(ctl("cat", f"/shared/queued-{queued}.out").split()) == ["node1", "node2"]


def test_a_restarted_client_rejoins(cluster: Path) -> None:
    docker("restart", CLIENT)
    wait_for("both nodes idle", all_idle, timeout=240)
    _, lines = batch_on_two_nodes("ssh-after")
    assert sorted(lines) == ["node1", "node2"]


def test_down_removes_every_container(cluster: Path) -> None:
    hpcstack(cluster, "down", "--volumes")
    assert docker("ps", "-aq", "--filter", f"name={NAME}-").stdout.split() == []
