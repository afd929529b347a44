"""End to end: the shared filesystem (GlusterFS from the cloud site's fs service) across sites.

One cluster for the module: the cloud site (controller, fs server, hub) and two workstation
sites with one node each, joined only by the WireGuard overlay. /home and /shared are the same
network filesystem on slurmctld and on every node; ownership travels with the caller's uid; a
site's `mounts:` reach its nodes read-only; a cut to the fs server fails jobs clearly while
slurmd keeps answering, and what was written survives.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from clusterlib import Controller, docker, running_cluster, wait_for

pytestmark = pytest.mark.docker

NAME = "hpcsfs"
CTL = f"{NAME}-cloud-slurmctld-1"
FS = f"{NAME}-cloud-fs-1"
HUB = f"{NAME}-cloud-tunnel-1"
NODE1 = f"{NAME}-ws1-node1-1"
NODE2 = f"{NAME}-ws2-node2-1"
FS_ADDR = "172.27.60.9"
ctl = Controller(CTL).run
USER, UID = "fsuser", 2345


def definition(data_dir: Path) -> dict[str, Any]:
    return {
        "cluster": {"name": NAME, "slurmd_timeout": 20},
        "images": {"tag": "sfs"},
        "tunnel": {"subnet": "10.91.0.0/16", "port": 51891},
        "monitoring": {"enabled": False},
        "login": {"port": 12722},
        "rest": {"port": 16720},  # not the default's 2022: a user's own cluster may hold it
        # The lab user, the same uid everywhere (AccountingStorageEnforce: only known users submit).
        "users": [{"name": USER, "uid": UID}],
        "storage": {"mount_wait": 30, "mount_roots": [str(data_dir.parent)]},
        "sites": [
            {"name": "cloud", "role": "cloud", "subnet": "172.27.60.0/24"},
            {
                "name": "ws1",
                "role": "local",
                "subnet": "172.27.61.0/24",
                "mounts": [{"source": str(data_dir), "target": "/data/local"}],
                "nodes": [{"name": "node1", "cpus": 1, "memory_mb": 512}],
            },
            {
                "name": "ws2",
                "role": "local",
                "subnet": "172.27.62.0/24",
                "nodes": [{"name": "node2", "cpus": 1, "memory_mb": 512}],
            },
        ],
    }


def on(container: str, script: str, check: bool = True) -> str:
    return docker("exec", container, "bash", "-c", script, check=check).stdout


def as_user(container: str, script: str, check: bool = True) -> Any:
    return docker("exec", container, "runuser", "-u", USER, "--", "bash", "-c", script, check=check)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data = tmp_path_factory.mktemp("sitedata") / "ds"
    data.mkdir()
    (data / "train.csv").write_text("a,b\n1,2\n")
    data.chmod(0o755)
    data.parent.chmod(0o755)
    text = yaml.safe_dump(definition(data), sort_keys=False)
    with running_cluster(tmp_path_factory.mktemp("sharedfs"), text, NAME) as out:
        # The lab user (from `users:`) is on every container; their home is private.
        on(CTL, f"install -d -o {USER} -g {USER} -m 0700 /home/{USER}")
        yield out


def test_home_and_shared_are_glusterfs_everywhere(cluster: Path) -> None:
    for c in (CTL, NODE1, NODE2):
        for path in ("/home", "/shared"):
            fstype = on(c, f"findmnt -no FSTYPE --target {path}").split()
            assert fstype == ["fuse.glusterfs"], (c, path, fstype)
    # The workstation nodes reach the server through the overlay, not a Docker network.
    assert "dev wg0" in on(NODE1, f"ip route get {FS_ADDR}")
    # slurmd and its jobs run without the SYS_ADMIN the mount needed.
    assert on(NODE1, "grep CapBnd /proc/$(pgrep -x slurmd)/status") != on(
        NODE1, "grep CapBnd /proc/1/status"
    )


def test_files_keep_their_owner_across_hosts(cluster: Path) -> None:
    as_user(NODE1, f"echo from-node1 > /home/{USER}/n1.txt && echo s1 > /shared/{USER}-n1.txt")
    got = on(CTL, f"stat -c '%u %U' /home/{USER}/n1.txt; cat /home/{USER}/n1.txt")
    assert got.split() == [str(UID), USER, "from-node1"], got
    assert on(CTL, f"stat -c %U /shared/{USER}-n1.txt").strip() == USER
    # and back: written on the controller, read on the other site's node
    as_user(CTL, f"echo from-ctl > /home/{USER}/c.txt")
    got = on(NODE2, f"stat -c '%u %U' /home/{USER}/c.txt; cat /home/{USER}/c.txt")
    assert got.split() == [str(UID), USER, "from-ctl"], got
    # another uid cannot write into the user's home: permissions hold across hosts
    denied = docker("exec", NODE2, "runuser", "-u", "hpc", "--", "touch", f"/home/{USER}/x",
                    check=False)  # fmt: skip
    assert denied.returncode != 0 and "Permission denied" in denied.stderr


def test_batch_output_is_the_users_on_the_controller(cluster: Path) -> None:
    out = as_user(CTL, f"cd /home/{USER} && sbatch --parsable -w node1 -o /home/{USER}/out-%j.txt"
                  " --wrap 'id -u; hostname'").stdout  # fmt: skip
    job = out.strip().split(";")[0]
    path = f"/home/{USER}/out-{job}.txt"
    wait_for(f"job {job} output", lambda: on(CTL, f"cat {path} 2>/dev/null", check=False).split()
             == [str(UID), "node1"], timeout=60)  # fmt: skip
    assert on(CTL, f"stat -c %U {path}").strip() == USER


def test_a_job_on_each_site_reads_the_same_input(cluster: Path) -> None:
    ctl("bash", "-c", "seq 1 1000 > /shared/input.txt")
    want = ctl("sha256sum", "/shared/input.txt").split()[0]
    for node in ("node1", "node2"):
        got = ctl("srun", "-w", node, "-t", "1", "sha256sum", "/shared/input.txt").split()[0]
        assert got == want, node


def test_site_mount_is_read_only_and_only_on_its_site(cluster: Path) -> None:
    assert on(NODE1, "cat /data/local/train.csv") == "a,b\n1,2\n"
    r = docker("exec", NODE1, "touch", "/data/local/new", check=False)
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    assert docker("exec", NODE2, "test", "-e", "/data/local", check=False).returncode != 0


def test_cut_to_the_fs_server_fails_jobs_clearly_and_loses_nothing(cluster: Path) -> None:
    ctl("bash", "-c", "echo before-cut > /shared/kept.txt")
    rule = f"FORWARD -d {FS_ADDR} -j DROP"
    on(HUB, f"iptables -I {rule}")
    try:
        started = time.monotonic()
        r = docker("exec", CTL, "srun", "-w", "node1", "-t", "2", "cat", "/shared/kept.txt",
                   check=False, timeout=170)  # fmt: skip
        assert r.returncode != 0
        assert "Transport endpoint is not connected" in r.stdout + r.stderr, r
        assert time.monotonic() - started < 120
        # the node does not hang: slurmd answers and runs jobs that do not touch the shared fs
        assert ctl("srun", "-w", "node1", "-t", "1", "hostname").strip() == "node1"
    finally:
        on(HUB, f"iptables -D {rule}")
    wait_for("node1 to read the shared fs again",
             lambda: on(NODE1, "cat /shared/kept.txt 2>/dev/null", check=False) == "before-cut\n",
             timeout=60)  # fmt: skip
    assert ctl("srun", "-w", "node1", "-t", "1", "cat", f"/home/{USER}/n1.txt") == "from-node1\n"


def test_data_survives_a_server_restart(cluster: Path) -> None:
    docker("restart", FS)
    wait_for("fs healthy", lambda: docker("inspect", "-f", "{{.State.Health.Status}}", FS)
             .stdout.strip() == "healthy", timeout=90)  # fmt: skip
    wait_for("node2 to read through the restarted server",
             lambda: on(NODE2, "cat /shared/kept.txt 2>/dev/null", check=False) == "before-cut\n",
             timeout=60)  # fmt: skip
    assert on(CTL, f"cat /home/{USER}/c.txt") == "from-ctl\n"
