"""A deployed multi-host cluster as the multi-host tests see it: each host's engine, the
controller's view of the nodes, steps run on a workstation, and a lab member's SSH session to
the login service (from the cloud host, with the entries `hpcstack ssh-config --local` prints)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.multihost.harness import Host, MultiHost
from tests.multihost.names import NETNS_DIR
from tests.multihost.stack import CLUSTER
from tests.multihost.steps import run_step

SITES = {"ws1": "lab1", "ws2": "lab2"}
NODES = {"lab1": ["a1", "a2"], "lab2": ["b1", "b2"]}


@dataclass
class Deployment:
    mh: MultiHost
    mode: str
    dirs: dict[str, Path]  # build | cloud | ws1 | ws2

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
        """A command in slurmctld's container, on the cloud host."""
        cloud = self.mh.cloud
        return self.docker(cloud, "exec", self.container(cloud, "slurmctld"), *argv, check=check)

    def states(self) -> dict[str, str]:
        out = self.ctl("sinfo", "-h", "-N", "-p", "all", "-o", "%N %T", check=False)
        return dict(line.split() for line in out.splitlines() if line.strip())

    def idle(self, nodes: list[str]) -> bool:
        """Every node registered and usable (sinfo marks a node not responding with `*`)."""
        st = self.states()
        return all(st.get(n) in ("idle", "mixed") for n in nodes)

    def slurmd_started(self, node: str) -> str:
        """When the controller last heard this node's slurmd start (changes on re-registration)."""
        out = self.ctl("scontrol", "show", "node", node, "--oneliner", check=False)
        return out.split("SlurmdStartTime=")[1].split()[0] if "SlurmdStartTime=" in out else ""

    def gone_down(self, nodes: list[str]) -> bool:
        """DOWN in the controller's view (not merely not responding, `idle*`: Slurm still
        schedules onto those)."""
        st = self.states()
        return all(st.get(n, "").startswith("down") for n in nodes)

    def hostnames(self, partition: str, n: int, check: bool = True) -> list[str]:
        """The nodes an n-node step ran on. WireGuard: `srun` from the controller. ssh mode
        (README's limits: no interactive srun from the controller, no job across sites): a
        batch job whose script runs srun, its output read where it ran (no shared storage)."""
        if self.mode == "wireguard":
            out = self.ctl("srun", "-N", str(n), "-p", partition, "-t", "1", "hostname",
                           check=check)  # fmt: skip
            return sorted(out.split())
        job = self.ctl("sbatch", "--parsable", "-W", "--deadline=now+120", "-D", "/tmp",
                       "-o", "/tmp/mh-%j.out",
                       "-p", partition, "-N", str(n), "-t", "1", "--wrap", "srun hostname",
                       check=check).strip()  # fmt: skip
        info = self.ctl("scontrol", "show", "job", job, "--oneliner", check=False)
        if "BatchHost=" not in info:
            return []
        batch = info.split("BatchHost=")[1].split()[0]
        ws = next(w for w, site in SITES.items() if batch in NODES[site])
        host = self.mh.workstation(ws)
        out = self.docker(host, "exec", self.container(host, batch), "cat", f"/tmp/mh-{job}.out",
                          check=check)  # fmt: skip
        return sorted(out.split())

    def sbatch(self, *args: str) -> str:
        return self.ctl("sbatch", "--parsable", "-D", "/tmp", *args).strip()

    def on(self, ws: str, step: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_step(step.format(site=SITES[ws]), self.dirs[ws], self.mh.workstation(ws).env,
                        check=check)  # fmt: skip

    def job_state(self, job: str) -> str:
        out = self.ctl("scontrol", "show", "job", job, "--oneliner", check=False)
        return out.split("JobState=")[1].split()[0] if "JobState=" in out else "GONE"

    def ssh_config(self) -> Path:
        """The lab members' entries for the login service, written once in the cloud dir."""
        path = self.dirs["cloud"] / "lab-ssh.cfg"
        if not path.exists():
            run_step(f"hpcstack ssh-config --local -o {path.name}", self.dirs["cloud"],
                     self.mh.cloud.env)  # fmt: skip
        return path

    def login(self, user: str, command: str, check: bool = True, login_as: str = "") -> str:
        """`command` in `user`'s SSH session on the login service, by key, its host key pinned
        (OpenSSH's client on the cloud host: the service listens on its 127.0.0.1). `login_as`
        tries another login name with `user`'s entry and key."""
        argv = ["nsenter", f"--net={NETNS_DIR / self.mh.cloud.netns}", "ssh", "-F",
                str(self.ssh_config()), "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                *(["-l", login_as] if login_as else []), f"{CLUSTER}-{user}", command]  # fmt: skip
        r = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        if check and r.returncode != 0:
            raise AssertionError(f"{user}$ {command} -> {r.returncode}\n{r.stdout}{r.stderr}")
        return r.stdout + (r.stderr if not check else "")
