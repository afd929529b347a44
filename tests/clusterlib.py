"""What the end-to-end tests share: run the CLI as a user would, run docker, wait for a state.

Each test module binds the controller container it talks to (`Controller(name)`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

GENERATOR = Path(__file__).resolve().parent.parent / "generator"


def run_cli(out: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hpcstack.cli.main", *args],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(GENERATOR)},
    )


def hpcstack(out: Path, *args: str, check: bool = True, timeout: int = 600) -> str:
    """The CLI in `out`; stdout and stderr together. Fails the test on a non-zero exit."""
    r = run_cli(out, *args, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"hpcstack {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r.stdout + r.stderr


def docker(*args: str, check: bool = True, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def wait_for(what: str, fn: Any, timeout: float, interval: float = 1.0) -> Any:
    """Poll `fn` until it returns something truthy; fail with its last answer."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@contextmanager
def running_cluster(out: Path, definition: str, name: str) -> Iterator[Path]:
    """Generate `definition` into `out`, bring it up, and always take it down with its volumes
    (and any container of cluster `name` left behind)."""
    (out / "stack.yaml").write_text(definition)
    hpcstack(out, "generate", "-c", "stack.yaml", "-o", ".")
    try:
        hpcstack(out, "up", timeout=1800)
        yield out
    finally:
        hpcstack(out, "down", "--volumes", check=False)
        left = docker("ps", "-aq", "--filter", f"name={name}-").stdout.split()
        if left:
            docker("rm", "-f", *left, check=False)


def started_at(container: str) -> str:
    return docker("inspect", "-f", "{{.State.StartedAt}}", container).stdout.strip()


class Controller:
    """Commands on one cluster's slurmctld container."""

    def __init__(self, container: str):
        self.container = container

    def run(self, *argv: str, check: bool = True) -> str:
        return docker("exec", self.container, *argv, check=check).stdout

    def as_user(self, script: str) -> str:
        return self.run("runuser", "-u", "hpc", "--", "bash", "-c", script)

    def node_states(self) -> dict[str, str]:
        out = self.run(
            "sinfo", "--noheader", "--Node", "--partition=all", "--format=%N %T", check=False
        )
        return dict(line.split() for line in out.splitlines() if line.strip())
