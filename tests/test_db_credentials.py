"""A fresh clone's new secrets meet the MariaDB volume of an earlier clone (same cluster name,
so the same volume): the db container says what is wrong and how to proceed, and stops fast;
`up` shows that line instead of "unhealthy". Builds the mariadb image only, under its own tag."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from clusterlib import docker, hpcstack, wait_for
from hpcstack.errors import ClusterError, ToolError
from hpcstack.operate import diagnose
from hpcstack.operate.session import open_cluster

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parent.parent
NAME = "hostiledb"
DEFINITION = (
    (REPO / "stack.yaml")
    .read_text()
    .replace("name: hpcstack", f"name: {NAME}")
    .replace('tag: "0.1.0"', 'tag: "credcheck"')
    .replace("172.28.0.0/24", "172.31.240.0/24")
    .replace("172.28.1.0/24", "172.31.241.0/24")
)


def clone(tmp_path: Path, name: str) -> Path:
    out = tmp_path / name
    out.mkdir()
    (out / "stack.yaml").write_text(DEFINITION)
    hpcstack(out, "generate")
    return out


def compose(out: Path, *args: str, check: bool = True, timeout: int = 900) -> str:
    r = docker(
        "compose",
        "-f",
        str(out / "compose" / "cloud.yml"),
        "-p",
        f"{NAME}-cloud",
        *args,
        check=check,
        timeout=timeout,
    )
    return r.stdout + r.stderr


def db_container(out: Path) -> str:
    return compose(out, "ps", "-a", "-q", "db").strip().splitlines()[0]


def test_a_volume_from_an_earlier_clone_is_named_not_waited_for(tmp_path: Path) -> None:
    first = clone(tmp_path, "first")
    second = clone(tmp_path, "second")
    assert (first / "secrets/db_password").read_text() != (
        second / "secrets/db_password"
    ).read_text()
    apt = os.environ.get("HPCSTACK_APT_OPTIONS", "")
    try:
        compose(first, "build", "--build-arg", f"APT_OPTIONS={apt}", "db")
        compose(first, "up", "-d", "--wait", "--wait-timeout", "180", "db")
        compose(first, "down")  # containers gone, the volume stays: the first clone's database
        start = time.monotonic()
        compose(second, "up", "-d", "db")

        def refused() -> str:
            logs = compose(second, "logs", "db", check=False)
            return logs if "initialised with another password" in logs else ""

        logs = wait_for("the db container to name the stale volume", refused, timeout=120)
        seconds = time.monotonic() - start
        print(f"second clone's db named the stale volume after {seconds:.1f} s")
        assert "hpcstack down --volumes" in logs and "restore" in logs
        state = docker("inspect", "-f", "{{.State.Status}} {{.RestartCount}}", db_container(second))
        print(f"db container state: {state.stdout.strip()}")
        cluster = open_cluster(second)
        site = cluster.plan.controller
        err = diagnose.explain(cluster, site, ToolError(summary="container is unhealthy"))
        assert isinstance(err, ClusterError)
        assert "db: hpcstack-db: error: the database volume was initialised" in str(err)
        # nothing was deleted: the first clone's secrets still open the database
        compose(second, "down")
        compose(first, "up", "-d", "--wait", "--wait-timeout", "180", "db")
    finally:
        compose(first, "down", "--volumes", check=False)
        docker("image", "rm", "-f", "hpcstack-mariadb:credcheck", check=False)
