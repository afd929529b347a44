"""A generated cluster, opened for operations: its plan, its Docker engine, its controller.

Every operate command starts here: `open_cluster(out_dir)` reads the plan saved in
`.hpcstack/stack.json` (never stack.yaml, never the generated YAML) and talks to the engine
through run.docker.

Which host is this? The engine the CLI talks to (DOCKER_HOST, as for `docker` itself) decides:
when the controller site's slurmctld runs on it, this is the controller host and Slurm
commands go to slurmctld's container. When it does not and the command names local sites
(`--site lab`), this is that site's workstation: Slurm commands run in one of the site's own
node containers, which reach slurmctld over the tunnel (configless: the client commands read
the configuration slurmd fetched). docs/decisions/ records the choice.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from hpcstack.errors import ClusterError, ToolError
from hpcstack.operate.observed import JobState, NodeState, parse_scontrol_nodes, parse_squeue
from hpcstack.output.state import load_generated
from hpcstack.plan.topology import Plan, SitePlan
from hpcstack.run import apt
from hpcstack.run.docker import Compose, Docker

Progress = Callable[[str], None]


def quiet(_: str) -> None:
    pass


class Cluster:
    def __init__(
        self,
        out_dir: Path,
        plan: Plan,
        docker: Docker | None = None,
        site_names: list[str] | None = None,
    ):
        self.out_dir = out_dir
        self.plan = plan
        self.docker = docker or Docker()
        # The sites the command was given (`--site`): on a workstation, the ones on this host.
        self.site_names = list(site_names or [])

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

    def engine_name(self) -> str:
        return self.docker.host or os.environ.get("DOCKER_HOST") or "the default Docker engine"

    def controller_here(self) -> bool:
        """True when the controller site's slurmctld runs on this engine (the controller host)."""
        try:
            return "slurmctld" in self.compose(self.plan.controller).running()
        except ToolError:
            return False

    def workstation(self) -> bool:
        """True on a workstation: local sites named, the controller not on this engine."""
        named = self.sites(self.site_names) if self.site_names else []
        return bool(named) and all(s.tunneled for s in named) and not self.controller_here()

    def controller_container(self) -> str:
        try:
            return self.compose(self.plan.controller).container("slurmctld")
        except ToolError:
            raise ToolError(summary=self.not_here_message()) from None

    def not_here_message(self) -> str:
        local = [s.name for s in self.plan.tunneled_sites]
        hint = f" `--site {local[0]}`" if local else ""
        return (
            f"slurmctld (site {self.plan.controller.name}) does not run on {self.engine_name()}. "
            f"On the controller host start it: `hpcstack up --site {self.plan.controller.name}`; "
            f"on a workstation name its site:{hint} (status, up and down then ask the controller "
            "through the site's own nodes, over the tunnel)"
        )

    def slurm_container(self) -> str:
        """Where Slurm client commands run: slurmctld's container, or (on a workstation) a
        running node container of the named sites."""
        if not self.workstation():
            return self.controller_container()
        for site in self.sites(self.site_names):
            running = self.compose(site).running()
            for node in site.nodes:
                if node.name in running:
                    return running[node.name].container
        names = ", ".join(self.site_names)
        raise ToolError(
            summary=f"no node of site {names} runs on {self.engine_name()}, and the controller "
            f"is on another host: the controller can only be asked through a running node "
            f"(start them: `hpcstack up --site {self.site_names[0]}`)"
        )

    def slurm(self, *argv: str, user: str | None = None) -> str:
        return self.docker.exec_capture(self.slurm_container(), list(argv), user=user)

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


def open_cluster(
    out_dir: Path, docker: Docker | None = None, site_names: list[str] | None = None
) -> Cluster:
    return Cluster(out_dir, load_generated(out_dir), docker, site_names)
