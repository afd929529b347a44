"""End to end: lab users log in by key to the login service and use Slurm as themselves.

One cluster for the module (cluster `hpcsusr`, subnets 172.26.40.0/24 and 172.26.41.0/24,
overlay 10.93.0.0/16, login on 127.0.0.1:12022, no monitoring): alice (account physics, fair
share 10, her own key in stack.yaml) and bob (account bio, fair share 5, one CPU per user, a
key pair hpcstack generated). Jobs may run in containers (`containers.enabled`): alice makes a
Debian trixie bundle on /shared from an exported image. Tests run in order; the last adds and
removes a user.
"""

from __future__ import annotations

import io
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from clusterlib import Controller, docker, hpcstack, running_cluster, started_at, wait_for

pytestmark = pytest.mark.docker

NAME = "hpcsusr"
CTL = f"{NAME}-cloud-slurmctld-1"
LOGIN = f"{NAME}-cloud-login-1"
NODE1 = f"{NAME}-local-node1-1"
ctl = Controller(CTL).run
PORT = 12022
# The container's OS differs from the nodes' (forky): trixie, from the base-image script.
TRIXIE_IMAGE = "debian:trixie-slim"
BUNDLE = "/shared/alice/trixie"


def _keypair() -> tuple[paramiko.Ed25519Key, str]:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()).decode()
    pub = key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    return paramiko.Ed25519Key.from_private_key(io.StringIO(pem)), pub


ALICE, ALICE_PUB = _keypair()
CAROL, CAROL_PUB = _keypair()
STRANGER, _ = _keypair()


def definition(repo: Path, carol: bool = False) -> str:
    doc: dict[str, Any] = yaml.safe_load((repo / "stack.yaml").read_text())
    doc["cluster"].update({"name": NAME, "slurmd_timeout": 20})
    doc["tunnel"].update({"subnet": "10.93.0.0/16", "port": 51893})
    doc["monitoring"] = {"enabled": False}
    doc["containers"] = {"enabled": True}
    doc["sites"][0]["subnet"] = "172.26.40.0/24"
    doc["sites"][1]["subnet"] = "172.26.41.0/24"
    doc["login"] = {"port": PORT}
    doc["accounts"] = [
        {"name": "physics", "fairshare": 10},
        {"name": "bio", "fairshare": 5, "max_cpus_per_user": 1},
    ]
    doc["users"] = [
        {"name": "alice", "uid": 2001, "account": "physics", "ssh_keys": [ALICE_PUB]},
        {"name": "bob", "uid": 2002, "account": "bio"},  # no key: hpcstack makes a pair
    ]
    if carol:
        doc["users"].append(
            {"name": "carol", "uid": 2003, "account": "bio", "ssh_keys": [CAROL_PUB]}
        )
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> Iterator[Path]:
    with running_cluster(tmp_path_factory.mktemp("e2e-users"), definition(repo), NAME) as out:
        yield out


def connect(out: Path, user: str, **auth: Any) -> paramiko.SSHClient:
    """An SSH session to the login service; its host key pinned from secrets/."""
    kind, body = (out / "secrets/users/pub/login_known_hosts").read_text().split()[:2]
    known = out / "login_known_hosts"
    known.write_text(f"[127.0.0.1]:{PORT} {kind} {body}\n")
    client = paramiko.SSHClient()
    client.load_host_keys(str(known))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        "127.0.0.1", PORT, username=user, timeout=10, allow_agent=False, look_for_keys=False,
        banner_timeout=10, auth_timeout=10, **auth,
    )  # fmt: skip
    return client


def ssh(out: Path, user: str, key: paramiko.PKey, command: str, check: bool = True) -> str:
    client = connect(out, user, pkey=key)
    try:
        _, stdout, stderr = client.exec_command(command, timeout=120)
        text = stdout.read().decode() + stderr.read().decode()
        rc = stdout.channel.recv_exit_status()
    finally:
        client.close()
    if check and rc != 0:
        raise AssertionError(f"{user}$ {command} -> {rc}\n{text}")
    return text


def bob_key(out: Path) -> paramiko.PKey:
    return paramiko.Ed25519Key.from_private_key_file(str(out / "secrets/users/bob.key"))


def test_users_log_in_and_jobs_run_as_their_uid(cluster: Path) -> None:
    assert ssh(cluster, "alice", ALICE, "id -u; id -g").split() == ["2001", "2001"]
    # A two-node step from the login service: the job's processes and files are alice's.
    out = ssh(cluster, "alice", ALICE, "srun -N2 bash -c 'id -u; touch ~/mine; stat -c %u ~/mine'")
    assert out.split() == ["2001"] * 4, out
    job = ssh(
        cluster, "bob", bob_key(cluster), "sbatch --parsable --wait -o /dev/null --wrap 'id -u'"
    )
    job = job.strip().splitlines()[-1]
    query = f"sacct -n -X -P -u bob -j {job} -o user,account,state"
    wait_for(
        "bob's job COMPLETED in sacct",
        lambda: ssh(cluster, "bob", bob_key(cluster), query).split() == ["bob|bio|COMPLETED"],
        timeout=30,
    )
    # The same uid on every container (no per-host step): the node and the controller.
    for container in (CTL, NODE1):
        assert docker("exec", container, "id", "-u", "alice").stdout.strip() == "2001"


def test_fair_shares_show_in_sshare(cluster: Path) -> None:
    rows = ssh(cluster, "alice", ALICE, "sshare -a -n -P -o account,user,rawshares")
    shares = {tuple(r.split("|")[:2]): r.split("|")[2] for r in rows.split() if "|" in r}
    assert shares[("physics", "")] == "10", rows
    assert shares[("bio", "")] == "5", rows
    assert ("physics", "alice") in shares and ("bio", "bob") in shares, rows


def test_password_root_and_unknown_key_are_refused(cluster: Path) -> None:
    with pytest.raises(paramiko.AuthenticationException):
        connect(cluster, "alice", password="alice")
    with pytest.raises(paramiko.AuthenticationException):
        connect(cluster, "root", pkey=ALICE)
    with pytest.raises(paramiko.AuthenticationException):
        connect(cluster, "alice", pkey=STRANGER)
    with pytest.raises(paramiko.AuthenticationException):
        connect(cluster, "alice", pkey=bob_key(cluster))  # bob's key is not alice's
    # Failed logins do not lock the others out (one source address behind Docker's NAT).
    assert ssh(cluster, "alice", ALICE, "id -un").strip() == "alice"
    sshd_t = ["sshd", "-T", "-f", "/etc/hpcstack/users/sshd_config"]
    effective = docker("exec", LOGIN, *sshd_t).stdout.lower()
    for setting in ("passwordauthentication no", "kbdinteractiveauthentication no",
                    "permitrootlogin no"):  # fmt: skip
        assert setting in effective


def test_user_not_in_the_definition_cannot_submit(cluster: Path) -> None:
    # The image's demo user exists in the containers but not in this definition's users:.
    r = docker("exec", CTL, "runuser", "-u", "hpc", "--", "sbatch", "--wrap", "true", check=False)
    assert r.returncode != 0
    assert "Invalid account" in r.stderr, r.stderr
    # The admin path (`hpcstack exec`, root in root's account) still submits.
    job = ctl("sbatch", "--parsable", "--wait", "-o", "/dev/null", "--wrap", "true").strip()
    assert "COMPLETED" in ctl("sacct", "-n", "-X", "-j", job, "-o", "State")


def test_impossible_request_refused_at_submit(cluster: Path) -> None:
    out = ssh(cluster, "alice", ALICE, "sbatch -N3 --wrap true; echo rc=$?", check=False)
    assert "rc=1" in out, out
    assert "node count" in out.lower() or "Node count" in out, out
    assert ssh(cluster, "alice", ALICE, "squeue -h -u alice").strip() == ""


def test_per_user_cpu_limit_pends_with_slurms_reason(cluster: Path) -> None:
    key = bob_key(cluster)
    first = ssh(
        cluster, "bob", key, "sbatch --parsable -n1 -o /dev/null --wrap 'sleep 300'"
    ).strip()
    second = ssh(
        cluster, "bob", key, "sbatch --parsable -n1 -o /dev/null --wrap 'sleep 300'"
    ).strip()
    try:
        wait_for(
            "bob's second job to pend on the QOS limit",
            lambda: (
                ssh(cluster, "bob", key, f"squeue -h -j {second} -o %r").strip()
                == "QOSMaxCpuPerUserLimit"
            ),
            timeout=30,
        )
        wait_for(
            "bob's first job to run",
            lambda: ssh(cluster, "bob", key, f"squeue -h -j {first} -o %T").strip() == "RUNNING",
            timeout=30,
        )
    finally:
        ctl("scancel", first, second, check=False)


@pytest.fixture(scope="module")
def bundle(cluster: Path, repo: Path) -> str:
    """alice's trixie bundle on /shared, as the README makes one: `docker export` of an image,
    unpacked by hpcstack-bundle on the login service. The image is made once per machine."""
    subprocess.run(
        ["bash", str(repo / "scripts/base-image.sh"), TRIXIE_IMAGE], check=True, timeout=900
    )  # fmt: skip
    cid = docker("create", TRIXIE_IMAGE).stdout.strip()
    try:
        unpack = f"docker export {cid} | docker exec -i -u alice {LOGIN} hpcstack-bundle - {BUNDLE}"
        r = subprocess.run(["bash", "-o", "pipefail", "-c", unpack], capture_output=True,
                           text=True, timeout=300)  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        docker("rm", cid, check=False)
    return BUNDLE


def test_a_two_node_job_runs_in_a_container_of_another_os_as_its_user(
    cluster: Path, bundle: str
) -> None:
    node_os = docker("exec", NODE1, "grep", "^PRETTY_NAME=", "/etc/os-release").stdout.strip()
    assert "trixie" not in node_os, node_os
    step = "grep ^PRETTY_NAME= /etc/os-release; id -u; cat /proc/sys/kernel/hostname"
    out = ssh(cluster, "alice", ALICE, f"srun -N2 --container={bundle} sh -c '{step}'")
    lines = out.split("\n")
    assert lines.count('PRETTY_NAME="Debian GNU/Linux 13 (trixie)"') == 2, out
    assert lines.count("2001") == 2 and "0" not in lines, out
    assert {"node1", "node2"} <= set(lines), out


def test_the_readme_container_example_runs_as_another_user(cluster: Path, bundle: str) -> None:
    # alice's bundle serves bob too: inside, he is bob (2002), never root.
    out = ssh(cluster, "bob", bob_key(cluster), f"srun --container={bundle} cat /etc/os-release")
    assert 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"' in out, out
    assert ssh(cluster, "bob", bob_key(cluster), f"srun --container={bundle} id -u").split() == [
        "2002"
    ]
    # A batch job in the container: its output file is bob's, in his home on the shared fs.
    job = ssh(
        cluster, "bob", bob_key(cluster),
        f"cd ~ && sbatch --parsable --wait --container={bundle} -o c.out "
        "--wrap 'grep ^VERSION_CODENAME= /etc/os-release; id -u'",
    )  # fmt: skip
    assert job.strip(), job
    assert ssh(cluster, "bob", bob_key(cluster), "cat ~/c.out").split() == [
        "VERSION_CODENAME=trixie",
        "2002",
    ]


def _job_field(job: str, field: str) -> str:
    out = ctl("scontrol", "show", "job", job)
    match = re.search(rf"\b{field}=(\S+)", out)
    return match.group(1) if match else ""


def test_add_then_remove_a_user_with_up(cluster: Path, repo: Path) -> None:
    running = ssh(cluster, "alice", ALICE, "sbatch --parsable -o /dev/null --wrap 'sleep 600'")
    running = running.strip()
    wait_for("alice's job to run", lambda: _job_field(running, "JobState") == "RUNNING", 30)
    start = _job_field(running, "StartTime")
    containers = {c: started_at(c) for c in (CTL, LOGIN, NODE1)}
    try:
        (cluster / "stack.yaml").write_text(definition(repo, carol=True))
        hpcstack(cluster, "generate", "-c", "stack.yaml", "-o", ".")
        hpcstack(cluster, "up", "--no-build", timeout=600)
        assert ssh(cluster, "carol", CAROL, "srun -N1 id -u").split() == ["2003"]
        job = ssh(cluster, "carol", CAROL, "sbatch --parsable --wait -o /dev/null --wrap true")
        carol_job = job.strip().splitlines()[-1]
        # Nothing restarted, alice's job still the same running job.
        assert {c: started_at(c) for c in containers} == containers
        assert (_job_field(running, "JobState"), _job_field(running, "StartTime")) == (
            "RUNNING",
            start,
        )

        (cluster / "stack.yaml").write_text(definition(repo))
        hpcstack(cluster, "generate", "-c", "stack.yaml", "-o", ".")
        hpcstack(cluster, "up", "--no-build", timeout=600)
        with pytest.raises(paramiko.AuthenticationException):
            connect(cluster, "carol", pkey=CAROL)
        for container in (CTL, LOGIN, NODE1):
            assert docker("exec", container, "getent", "passwd", "carol", check=False).returncode
        assert ctl("sacctmgr", "-n", "-P", "show", "assoc", "where", "user=carol").strip() == ""
        # Her history stays (her uid: the account is gone from the containers).
        history = ctl("sacct", "-n", "-X", "-P", "-a", "-j", carol_job, "-o", "jobid,uid,state")
        assert history.split() == [f"{carol_job}|2003|COMPLETED"], history
        assert _job_field(running, "JobState") == "RUNNING"
        # A second `up` with nothing changed applies no accounting change.
        again = hpcstack(cluster, "up", "--no-build", timeout=600)
        assert "accounting:" not in again, again
    finally:
        ctl("scancel", running, check=False)
    wait_for("alice's job to end", lambda: _job_field(running, "JobState") != "RUNNING", 60)
