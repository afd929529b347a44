"""A generated cluster, opened for operations: its plan, its Docker engine, its controller.

Every operate command starts here: `open_cluster(out_dir)` reads the plan saved in
`.hpcstack/stack.json` (never stack.yaml, never the generated YAML) and talks to the engine
through run.docker. Slurm commands go to slurmctld's container.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from hpcstack.errors import ClusterError
from hpcstack.operate.observed import JobState, NodeState, parse_scontrol_nodes, parse_squeue
from hpcstack.output.state import load_generated
from hpcstack.plan.topology import Plan, SitePlan
from hpcstack.run import apt
from hpcstack.run.docker import Compose, Docker

Progress = Callable[[str], None]


def quiet(_: str) -> None:
    pass


class Cluster:
    def __init__(self, out_dir: Path, plan: Plan, docker: Docker | None = None):
        self.out_dir = out_dir
        self.plan = plan
        self.docker = docker or Docker()

    def compose(self, site: SitePlan) -> Compose:
        return self.docker.compose(self.out_dir / "compose" / f"{site.name}.yml", site.project)

    def sites(self, names: list[str] | None) -> list[SitePlan]:
        if not names:
            return list(self.plan.sites)
        known = {s.name: s for s in self.plan.sites}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ClusterError(
                f"no site named {', '.join(map(repr, unknown))} in the generated definition "
                f"(sites: {', '.join(known)}); edit stack.yaml and run `hpcstack generate`"
            )
        return [known[n] for n in names]

    def controller_container(self) -> str:
        return self.compose(self.plan.controller).container("slurmctld")

    def slurm(self, *argv: str, user: str | None = None) -> str:
        return self.docker.exec_capture(self.controller_container(), list(argv), user=user)

    def nodes(self) -> list[NodeState]:
        return parse_scontrol_nodes(self.slurm("scontrol", "show", "node", "--oneliner"))

    def jobs(self) -> list[JobState]:
        text = self.slurm("squeue", "--noheader", "--format=%i|%j|%u|%T|%M|%D|%R")
        return parse_squeue(text)

    def build_args(self) -> dict[str, str]:
        """Build arguments for the images (never secrets): apt options for a frozen mirror."""
        options = os.environ.get("HPCSTACK_APT_OPTIONS")
        if options is None:
            options = apt.frozen_mirror_options(self.plan.stack.cluster.debian_suite)
        return {"APT_OPTIONS": options}


def open_cluster(out_dir: Path, docker: Docker | None = None) -> Cluster:
    return Cluster(out_dir, load_generated(out_dir), docker)
