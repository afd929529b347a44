"""operate/diagnose: a failed `up` shows the failing service's own error line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpcstack.definition.load import load_stack
from hpcstack.errors import ClusterError, ToolError
from hpcstack.operate import diagnose
from hpcstack.operate.session import Cluster
from hpcstack.plan.topology import make_plan
from hpcstack.run.docker import ServiceState

LINE = (
    "hpcstack-db: error: the database volume was initialised with another password: user slurm "
    "cannot log in with secrets/db_password"
)


class FakeCompose:
    def __init__(self, states: list[ServiceState]) -> None:
        self._states = states

    def states(self) -> list[ServiceState]:
        return self._states


class FakeDocker:
    def __init__(self, logs: dict[str, str]) -> None:
        self.logs = logs

    def logs_tail(self, container: str, lines: int = 30) -> str:
        return self.logs[container]


def cluster(repo: Path, states: list[ServiceState], logs: dict[str, str]) -> Any:
    c = Cluster(repo, make_plan(load_stack(repo / "stack.yaml")), docker=FakeDocker(logs))  # type: ignore[arg-type]
    c.compose = lambda site: FakeCompose(states)  # type: ignore[method-assign,assignment,return-value]
    return c


def test_the_services_error_line_replaces_unhealthy(repo: Path) -> None:
    states = [
        ServiceState("db", "x-db-1", "restarting", ""),
        ServiceState("slurmctld", "x-ctld-1", "running", "healthy"),
    ]
    logs = {"x-db-1": f"hpcstack-db: starting mariadbd\n{LINE}\n"}
    c = cluster(repo, states, logs)
    err = diagnose.explain(c, c.plan.controller, ToolError(summary="container is unhealthy"))
    assert isinstance(err, ClusterError)
    assert f"db: {LINE}" in str(err)
    assert "slurmctld" not in str(err)


def test_without_an_error_line_the_last_lines_are_shown(repo: Path) -> None:
    states = [ServiceState("slurmdbd", "x-dbd-1", "running", "unhealthy")]
    logs = {"x-dbd-1": "one\ntwo\nthree\n"}
    c = cluster(repo, states, logs)
    err = diagnose.explain(c, c.plan.controller, ToolError(summary="unhealthy"))
    assert "slurmdbd (last lines of its log)" in str(err)
    assert "three" in str(err)


def test_nothing_to_add_keeps_compose_error(repo: Path) -> None:
    c = cluster(repo, [ServiceState("db", "x-db-1", "running", "healthy")], {})
    original = ToolError(summary="starting failed")
    assert diagnose.explain(c, c.plan.controller, original) is original
