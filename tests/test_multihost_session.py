"""Which host is this (decision 0010): the engine decides; Slurm is asked through slurmctld on
the controller host, through the site's own node container on a workstation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.multihost.stack import definition

from hpcstack.errors import ToolError
from hpcstack.operate.generate import generate
from hpcstack.operate.session import Cluster
from hpcstack.output.state import load_generated
from hpcstack.run.docker import ServiceState


class FakeCompose:
    def __init__(self, running: list[str]):
        self._running = running

    def running(self) -> dict[str, ServiceState]:
        return {s: ServiceState(s, f"c-{s}", "running", "healthy") for s in self._running}

    def container(self, service: str) -> str:
        if service not in self._running:
            raise ToolError(summary=f"{service} is not running")
        return f"c-{service}"


class FakeCluster(Cluster):
    """A cluster whose engine runs exactly `here`: site -> running services."""

    def __init__(self, out: Path, here: dict[str, list[str]], sites: list[str]):
        super().__init__(out, load_generated(out), docker=object(), site_names=sites)  # type: ignore[arg-type]
        self.here = here

    def compose(self, site: Any) -> Any:
        return FakeCompose(self.here.get(site.name, []))

    def engine_name(self) -> str:
        return "unix:///run/ws1.sock"


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("session")
    (d / "stack.yaml").write_text(definition())
    generate(d / "stack.yaml", d)
    return d


def test_controller_host_asks_slurmctld(out: Path) -> None:
    c = FakeCluster(out, {"cloud": ["slurmctld"], "lab1": ["a1", "a2"]}, ["lab1"])
    assert not c.workstation()
    assert c.slurm_container() == "c-slurmctld"


def test_workstation_asks_through_its_own_node(out: Path) -> None:
    c = FakeCluster(out, {"lab1": ["a2"]}, ["lab1"])
    assert c.workstation()
    assert c.slurm_container() == "c-a2"


def test_workstation_without_running_nodes_says_what_to_do(out: Path) -> None:
    c = FakeCluster(out, {}, ["lab1"])
    with pytest.raises(ToolError, match=r"hpcstack up --site lab1"):
        c.slurm_container()


def test_no_site_and_no_controller_here_says_what_to_do(out: Path) -> None:
    c = FakeCluster(out, {"lab1": ["a1"]}, [])
    assert not c.workstation()
    with pytest.raises(ToolError) as exc:
        c.slurm_container()
    message = exc.value.summary
    assert "does not run on unix:///run/ws1.sock" in message
    assert "hpcstack up --site cloud" in message and "--site lab1" in message
