"""The faults cluster (tests/test_faults_e2e.py) and what its tests do to it: submit, crash,
wait for a state, ask Prometheus, give the controller a state volume that can fill up.

One cluster for the module, named NAME, with ports and addresses of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from clusterlib import Controller, docker, wait_for
from hpcstack.operate.observed import NodeState, parse_scontrol_nodes

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


PROMETHEUS = "http://127.0.0.1:19095"
# slurmctld's StateSaveLocation: a small ext4 of its own (scenario 7 fills it up)
STATE_DIR = "/var/spool/slurmctld"
STATE_VOLUME = f"{NAME}-cloud_slurmctld-state"
STATE_VOLUME_MB = 64


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


# --- scenario 7: a state volume that can fill up ------------------------------------------------
@contextmanager
def small_state_volume(work: Path) -> Iterator[bool]:
    """Before `up`: slurmctld's state volume as a bind of a STATE_VOLUME_MB ext4 image, loop-
    mounted here (root only; no reserved blocks, so it fills for root too). Compose finds the
    volume by its name and labels and uses it. Yields whether it was made; always undone."""
    if os.geteuid() != 0 or shutil.which("mkfs.ext4") is None:
        yield False
        return
    image, mnt = work / "state.ext4", work / "state"
    mnt.mkdir(exist_ok=True)
    subprocess.run(["truncate", "-s", f"{STATE_VOLUME_MB}M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True)
    try:
        docker("volume", "rm", "-f", STATE_VOLUME, check=False)
        docker(
            "volume", "create", "--driver", "local",
            "--opt", "type=none", "--opt", "o=bind", "--opt", f"device={mnt}",
            "--label", f"com.docker.compose.project={NAME}-cloud",
            "--label", "com.docker.compose.volume=slurmctld-state",
            STATE_VOLUME,
        )  # fmt: skip
        yield True
    finally:
        docker("volume", "rm", "-f", STATE_VOLUME, check=False)
        if subprocess.run(["umount", str(mnt)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=False)
        image.unlink(missing_ok=True)


def state_volume_is_small() -> bool:
    out = docker("volume", "inspect", "-f", "{{.Options.device}}", STATE_VOLUME, check=False)
    return out.returncode == 0 and out.stdout.strip().endswith("/state")


def state_free_kib() -> int:
    out = ctl("df", "-k", "--output=avail", STATE_DIR).split()
    return int(out[-1])


# --- Prometheus, from the host --------------------------------------------------------------------
def prom(path: str) -> Any:
    with urllib.request.urlopen(f"{PROMETHEUS}{path}", timeout=5) as r:
        return json.load(r)["data"]


def exporter_target(site: str) -> dict[str, Any] | None:
    """Prometheus's node-exporter target of `site`, as /api/v1/targets has it."""
    try:
        targets = prom("/api/v1/targets")["activeTargets"]
    except OSError:
        return None
    for t in targets:
        if t["labels"].get("job") == "node-exporter" and t["labels"].get("site") == site:
            return dict(t)
    return None


def scraped_up(site: str, scrapes: int, timeout: float) -> list[str]:
    """Wait for `scrapes` fresh scrapes of the site's node-exporter, each one up; fail at the
    first one that is not. The scrapes' times."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while len(seen) < scrapes and time.monotonic() < deadline:
        t = exporter_target(site)
        if t is not None and t["lastScrape"] not in seen and t["health"] != "unknown":
            assert t["health"] == "up", f"node-exporter of {site} scraped {t['health']}: {t}"
            seen.append(t["lastScrape"])
        time.sleep(0.5)
    assert len(seen) >= scrapes, f"{len(seen)} scrapes of {site}'s node-exporter in {timeout}s"
    return seen


# --- scenario 8: a WireGuard peer nobody knows ----------------------------------------------------
def rogue_wireguard_peer(
    hub_pub: str, port: int, routes: list[str], target: str
) -> list[list[str]]:
    """A peer with a fresh random key, aimed at the hub's published port from a container of its
    own (knowing the hub's public key, which is no secret), that tries to open `target`
    (host:port, behind the hub) through the overlay. Its `wg show dump`, split: first its own
    interface [private, public, port, fwmark], then the hub [pub, psk, endpoint, allowed,
    handshake, rx, tx, keepalive]."""
    host, _, tcp = target.rpartition(":")
    script = (
        "set -e; umask 077; wg genkey >/tmp/key; "
        "ip link add wg0 type wireguard 2>/dev/null || wireguard-go wg0; "
        f"wg set wg0 private-key /tmp/key peer {hub_pub} endpoint host.docker.internal:{port} "
        f"allowed-ips {','.join(routes)} persistent-keepalive 1; "
        "ip address add 10.250.250.250/32 dev wg0; ip link set wg0 up; "
        + "".join(f"ip route add {net} dev wg0; " for net in routes)
        + f"for i in 1 2 3 4; do timeout 2 bash -c '</dev/tcp/{host}/{tcp}' 2>/dev/null "
        "&& echo ANSWERED; sleep 1; done; wg show wg0 dump"
    )
    r = docker(
        "run", "--rm", "--cap-add", "NET_ADMIN", "--device", "/dev/net/tun",
        "--add-host", "host.docker.internal:host-gateway",
        "-e", "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1",
        "--entrypoint", "bash", "hpcstack-slurm:0.1.0", "-c", script,
        timeout=90,
    )  # fmt: skip
    assert "ANSWERED" not in r.stdout, r.stdout
    return [line.split("\t") for line in r.stdout.strip().splitlines()[-2:]]


# --- scenario 5: the Docker engine restarted ------------------------------------------------------
def restart_engine(timeout: float = 180) -> float:
    """Stop this host's dockerd as a reboot would (SIGTERM: it stops every container) and start
    it again as it was started (systemd's unit, or the same command line, its output to
    /var/log/dockerd.log as scripts/install-docker.sh does). Seconds until `docker info` answers."""
    t0 = time.monotonic()
    if shutil.which("systemctl") and Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "restart", "docker"], check=True, timeout=timeout)
    else:
        pid = int(Path("/var/run/docker.pid").read_text().strip())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        os.kill(pid, 15)
        wait_for("dockerd to stop", lambda: not Path(f"/proc/{pid}").exists(), timeout, 0.5)
        with open("/var/log/dockerd.log", "ab") as log:
            subprocess.Popen(
                [a.decode() for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    wait_for("docker info", lambda: docker("info", check=False).returncode == 0, timeout, 1)
    return time.monotonic() - t0
