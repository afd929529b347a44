"""Separate hosts for real (issue 9): the cloud host and two workstations, each its own network
namespace with its own Docker engine, each workstation behind its own NAT, the cloud host open
only at its tunnel port (and the registry). The whole suite runs once per tunnel mode.

One topology and one cluster per mode (module-scoped fixture, parametrized): the tests run in
order and each leaves the cluster as it found it (every node idle).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
from tests.clusterlib import wait_for
from tests.multihost.deployment import NODES, SITES, Deployment
from tests.multihost.fixtures import multihost_factory, new_multihost  # noqa: F401
from tests.multihost.harness import CLOUD_LINK, MultiHost, sh
from tests.multihost.stack import USERS, definition
from tests.multihost.steps import (
    BUILD_STEPS,
    CLOUD_STEPS,
    EXPORT_STEP,
    WORKSTATION_STEPS,
    root_env,
    run_step,
)

pytestmark = [pytest.mark.docker, pytest.mark.multihost]

# Long enough for the controller to mark the cut nodes DOWN (slurmd_timeout 20 s) and for an
# ssh-mode session to give up (ServerAliveInterval 10 x 3); short, for CI time.
CUT_S = 50
RETURN_S = 60


@pytest.fixture(scope="module", params=["wireguard", "ssh"])
def dep(
    request: pytest.FixtureRequest,
    multihost_factory: list[MultiHost],  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    mode: str = request.param
    mh = new_multihost(multihost_factory, open_tcp=[2222] if mode == "ssh" else [])
    base = tmp_path_factory.mktemp(f"multihost-{mode}")
    dirs = {name: base / name for name in ("build", "cloud", "ws1", "ws2")}
    text = definition(mode)
    for d in dirs.values():
        d.mkdir()
        (d / "stack.yaml").write_text(text)
    d = Deployment(mh, mode, dirs)
    try:
        yield d
    finally:
        for host in mh.hosts:
            ids = d.docker(host, "ps", "-aq", check=False).split()
            if ids:
                d.docker(host, "rm", "-f", *ids, check=False)
        # The registry-tagged images on the build machine's (the root) engine.
        listed = subprocess.run(
            ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
            capture_output=True, text=True, check=False,
        ).stdout.split()  # fmt: skip
        refs = [r for r in listed if r.startswith(f"{mh.registry_addr}/")]
        if refs:
            subprocess.run(["docker", "rmi", *refs], capture_output=True, check=False)
        mh.down()


def test_1_cloud_host_up_and_workstations_join(dep: Deployment) -> None:
    """README steps, command for command; images pulled from the cloud host's registry."""
    for step in BUILD_STEPS:
        run_step(step, dep.dirs["build"], root_env(), timeout=1800)
    cloud_env = dep.mh.cloud.env
    for step in CLOUD_STEPS:
        run_step(step, dep.dirs["cloud"], cloud_env)
    for ws, site in SITES.items():
        run_step(EXPORT_STEP.format(site=site), dep.dirs["cloud"], cloud_env)
        shutil.copy(dep.dirs["cloud"] / f"{site}-secrets.tar", dep.dirs[ws])
        outputs = [dep.on(ws, step) for step in WORKSTATION_STEPS]
        # status --site: nodes idle in the controller's view, asked through the site's nodes.
        status = outputs[-1].stdout
        for node in NODES[site]:
            assert node in status, status
        # The workstation holds its share of the secrets and nothing cluster-wide.
        secrets = {str(p.relative_to(dep.dirs[ws] / "secrets"))
                   for p in (dep.dirs[ws] / "secrets").rglob("*") if p.is_file()}  # fmt: skip
        assert "munge.key" in secrets
        assert not secrets & {"db_password", "wireguard/hub.key", "ssh/host_ed25519_key"}
    assert dep.idle(NODES["lab1"] + NODES["lab2"]), dep.states()
    # Pulled, not built: every image on a workstation came from the cloud host's registry.
    for ws in SITES:
        host = dep.mh.workstation(ws)
        images = dep.docker(host, "images", "--format", "{{.Repository}}:{{.Tag}}").split()
        assert images and all(i.startswith(f"{dep.mh.registry_addr}/") for i in images), images
        digests = dep.docker(host, "image", "inspect", "-f", "{{.RepoDigests}}", *images)
        assert digests.count(dep.mh.registry_addr) >= len(images), digests


def test_2_srun_across_both_workstations(dep: Deployment) -> None:
    if dep.mode == "wireguard":
        assert dep.hostnames("all", 4) == ["a1", "a2", "b1", "b2"]
    else:  # a job spans one site in ssh mode (README): one 2-node job per workstation
        assert dep.hostnames("lab1", 2) + dep.hostnames("lab2", 2) == ["a1", "a2", "b1", "b2"]


def test_2_site_mates_talk_directly(dep: Deployment) -> None:
    host = dep.mh.workstation("ws1")
    a1 = dep.container(host, "a1")
    a2_ip = dep.docker(host, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}"
                       "{{end}}", dep.container(host, "a2")).strip()  # fmt: skip
    if dep.mode == "wireguard":
        show = "ip -4 -o addr show wg0 | awk '{print $4}'"
        a2_overlay = dep.docker(host, "exec", dep.container(host, "a2"), "sh", "-c", show)
        a2_overlay = a2_overlay.strip().split("/")[0]
        # Traffic a1 -> a2 over the overlay (a TCP connect to a2's slurmd).
        dep.docker(host, "exec", a1, "bash", "-c", f"echo >/dev/tcp/{a2_overlay}/6818")
        dump = dep.docker(host, "exec", a1, "wg", "show", "wg0", "dump")
        pub = (dep.dirs["ws1"] / "secrets" / "wireguard" / "pub" / "a2.pub").read_text().strip()
        peer = next(line.split("\t") for line in dump.splitlines() if line.startswith(pub))
        # a1's peer a2 is reached at a2's LAN address, with traffic: not through the hub.
        assert peer[2].split(":")[0] == a2_ip and int(peer[4]) > 0, peer
    else:
        rules = dep.docker(host, "exec", a1, "iptables", "-t", "nat", "-S")
        assert f"--to-destination {a2_ip}:" in rules, rules


def test_2_workstation_reaches_the_controller_only_through_the_tunnel(dep: Deployment) -> None:
    ws1 = dep.mh.workstation("ws1")
    probe = ("import socket,sys; s=socket.socket(); s.settimeout(3)\n"
             "try: s.connect((sys.argv[1], 6817)); print('open')\n"
             "except OSError as e: print('closed', e)")  # fmt: skip
    # Not from the workstation host: the controller's site network is not routed, and the cloud
    # host's public address does not answer at slurmctld's port.
    for target in ("10.240.0.12", CLOUD_LINK[1]):
        assert sh("python3", "-c", probe, target, netns=ws1.netns).startswith("closed"), target
    # Through the tunnel, from a node: slurmctld answers.
    ping = dep.docker(ws1, "exec", dep.container(ws1, "a1"), "scontrol", "ping")
    assert "UP" in ping, ping


WIREGUARD = pytest.mark.parametrize("dep", ["wireguard"], indirect=True)  # the shared fs needs it


def test_2_lab_users_log_in_and_run_as_themselves_on_both_sites(dep: Deployment) -> None:
    """alice and bob log in by key to the login service on the cloud host and submit to both
    workstations; the jobs run as their uids, and accounting shows them with their accounts."""
    assert dep.login("alice", "id -u").split() == [str(USERS["alice"])]
    for user, partition in (("alice", "lab1"), ("bob", "lab2")):
        job = dep.login(user, f"sbatch --parsable --wait -D /tmp -o /dev/null -p {partition} "
                              "-N2 --wrap 'srun id -u'").strip()  # fmt: skip
        query = f"sacct -n -X -P -u {user} -j {job} -o user,account,state"
        account = {"alice": "physics", "bob": "bio"}[user]
        wait_for(f"{user}'s job COMPLETED in sacct",
                 lambda q=query, u=user, a=account: dep.login(u, q).split()  # type: ignore[misc]
                 == [f"{u}|{a}|COMPLETED"], 60)  # fmt: skip
    shares = dep.login("alice", "sshare -a -n -P -o account,user")
    assert "physics|alice" in shares and "bio|bob" in shares, shares
    # Root is refused even with a lab member's key, and no password login is offered.
    refused = dep.login("alice", "true", check=False, login_as="root")
    assert "Permission denied (publickey)" in refused, refused


@WIREGUARD
def test_2_output_on_a_workstation_is_read_on_the_login_node(dep: Deployment) -> None:
    """One filesystem across the hosts: a batch job on each workstation writes `-o
    ~/out-%j.txt` as alice, and she reads it on the login node; both read the same input."""
    dep.login("alice", "echo the-same-input > ~/input.txt")
    for partition, nodes in (("lab1", NODES["lab1"]), ("lab2", NODES["lab2"])):
        job = dep.login(
            "alice",
            f"sbatch --parsable --wait -p {partition} -N1 "
            "-o ~/out-%j.txt --wrap 'hostname; id -u; cat ~/input.txt'",
        )
        job = job.strip()
        out = dep.login("alice", f"stat -c %U ~/out-{job}.txt; cat ~/out-{job}.txt").split()
        assert out[0] == "alice" and out[1] in nodes, out
        assert out[2:] == [str(USERS["alice"]), "the-same-input"], out


@WIREGUARD
def test_2_demo_on_two_hosts_reads_and_writes_the_shared_fs(dep: Deployment) -> None:
    out = run_step("hpcstack demo", dep.dirs["cloud"], dep.mh.cloud.env).stdout
    assert "data: /shared/demo-alice/digits.txt" in out, out
    # one task per node (one CPU each), each task's results file read back on the login node
    assert "read 4 results file(s) written by the tasks on the nodes" in out, out
    rows = [line.split() for line in out.splitlines() if line[:1].isdigit() and "cpu" in line]
    assert len(rows) == 8 and {r[2] for r in rows} == set(NODES["lab1"] + NODES["lab2"]), out


def test_3_workstation_status_down_up(dep: Deployment) -> None:
    st = json.loads(dep.on("ws1", "hpcstack status --site {site} --json").stdout)
    assert st["host"].startswith("workstation"), st["host"]
    assert {n["name"]: n["ready"] for n in st["nodes"]} == {"a1": True, "a2": True}, st["nodes"]
    assert {t["name"] for t in st["tunnel"]} == {"a1", "a2"}
    assert all(t["up"] for t in st["tunnel"]), st["tunnel"]
    if dep.mode == "wireguard":
        assert all(t["latest_handshake"] > 0 and t["rx_bytes"] > 0 for t in st["tunnel"])
    job = dep.sbatch("-p", "lab2", "-N1", "--wrap", "sleep 90")
    wait_for("the lab2 job to run", lambda: dep.job_state(job) == "RUNNING", 60)
    dep.on("ws1", "hpcstack down --site {site}")
    states = dep.states()
    assert "a1" not in states and "a2" not in states, states  # drained, then removed
    assert dep.job_state(job) == "RUNNING"  # the other site keeps running its job
    assert not dep.docker(dep.mh.workstation("ws1"), "ps", "-q").split()
    dep.on("ws1", "hpcstack up --site {site} --pull")
    assert dep.idle(NODES["lab1"]), dep.states()
    dep.ctl("scancel", job)


def test_4_internet_cut_and_nat_renumbered(dep: Deployment) -> None:
    nodes = NODES["lab1"]
    t0 = time.monotonic()
    dep.mh.cut("ws1")
    try:
        # The controller marks them DOWN after SlurmdTimeout (20 s here) and a ping round; the cut
        # lasts CUT_S, longer only if it has not noticed yet.
        wait_for("lab1's nodes to go down", lambda: dep.gone_down(nodes), CUT_S + 60, 3)
        print(f"lab1 down in the controller's view {time.monotonic() - t0:.0f}s into the cut")
        job = dep.sbatch("-p", "lab1", "-N1", "--wrap", "hostname")
        time.sleep(2)
        assert dep.job_state(job) == "PENDING"
        time.sleep(max(0.0, CUT_S - (time.monotonic() - t0)))
    finally:
        dep.mh.restore("ws1")
    restored = time.monotonic()
    try:
        wait_for("lab1 idle again", lambda: dep.idle(nodes), RETURN_S, interval=2)
    except AssertionError:
        # What the controller says, for whoever reads the failure.
        print(dep.ctl("sinfo", "-N", "-p", "all", "-o", "%N %T %E", check=False))
        print(dep.ctl("squeue", "-a", "-o", "%i %T %R %N", check=False))
        if dep.mode == "wireguard":
            hub = dep.container(dep.mh.cloud, "tunnel")
            print(dep.docker(dep.mh.cloud, "exec", hub, "wg", "show", "wg0", check=False))
        raise
    print(f"lab1 idle {time.monotonic() - restored:.0f}s after the link came back")
    wait_for("the queued job to complete", lambda: dep.job_state(job) == "COMPLETED", 60)
    # A new public address for ws2's NAT (its old mappings gone): the tunnel recovers alone.
    new = dep.mh.renumber_nat("ws2")
    renumbered = time.monotonic()
    if dep.mode == "wireguard":
        hub = dep.container(dep.mh.cloud, "tunnel")
        wait_for("the hub to see b1 from the new address",
                 lambda: new in dep.docker(dep.mh.cloud, "exec", hub, "wg", "show", "wg0",
                                           "endpoints"), 90, interval=2)  # fmt: skip
    else:
        # The old TCP session is dead (its NAT mapping gone): ssh notices (ServerAliveInterval)
        # and dials again, from the new address.
        # A first new session may exit at once while sshd still holds the dead one's forwards
        # (ExitOnForwardFailure): wait for one that is still there 6 s later.
        sshd = dep.container(dep.mh.cloud, "sshd")

        def session_from_new_address() -> bool:
            out = dep.docker(dep.mh.cloud, "exec", sshd, "ss", "-Htn", "state", "established",
                             check=False)  # fmt: skip
            return f"{new}:" in out

        def stable_session() -> bool:
            if not session_from_new_address():
                return False
            time.sleep(6)
            return session_from_new_address()

        wait_for("the cloud sshd to keep ws2's new session from the new address",
                 stable_session, 150, interval=2)  # fmt: skip
    print(f"ws2 tunnel from the new address {time.monotonic() - renumbered:.0f}s after the change")
    # Nodes the controller had marked down in the gap come back by themselves (hpcstack-rejoin).
    wait_for("lab2 idle after the NAT change", lambda: dep.idle(NODES["lab2"]), 120, interval=2)

    def lab2_answers() -> bool:
        return dep.hostnames("lab2", 2, check=False) == ["b1", "b2"]

    wait_for("lab2 to answer after the NAT change", lab2_answers, 120, interval=3)
    print(f"lab2 answered {time.monotonic() - renumbered:.0f}s after its NAT address changed")


def test_5_workstation_engine_restarted(dep: Deployment) -> None:
    ws2 = dep.mh.workstation("ws2")

    def started() -> dict[str, str]:
        return {n: dep.docker(ws2, "inspect", "-f", "{{.State.StartedAt}}", f"hmh-lab2-{n}-1",
                              check=False).strip() for n in NODES["lab2"]}  # fmt: skip

    before = started()
    registered = {n: dep.slurmd_started(n) for n in NODES["lab2"]}
    dep.mh.restart_engine("ws2")
    restarted = time.monotonic()
    # The engine brings the nodes back by itself (restart: unless-stopped): new containers' starts.
    wait_for("lab2's containers to start again",
             lambda: all(v and v != before[n] for n, v in started().items()), 120, 2)  # fmt: skip
    # Idle alone is not enough: the controller may not have noticed the restart yet. Wait for
    # each new slurmd's registration (its start time changes), then for idle.
    wait_for("lab2's slurmds to register again",
             lambda: all(dep.slurmd_started(n) not in ("", registered[n]) for n in NODES["lab2"]),
             180, 3)  # fmt: skip
    wait_for("lab2 idle after its engine restarted", lambda: dep.idle(NODES["lab2"]), 180, 3)
    print(f"lab2 idle {time.monotonic() - restarted:.0f}s after its Docker engine restarted")
    assert dep.hostnames("lab2", 2) == ["b1", "b2"]
