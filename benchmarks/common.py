"""What every benchmark shares: running commands, timing them, and one row of the table."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
GENERATOR = REPO / "generator"
ENV = {**os.environ, "PYTHONPATH": str(GENERATOR)}


@dataclass
class Figure:
    """One measured figure. `target` is a bound on `value` (`<=` or `>=`); `ratio` is the figure
    compared with the target or with a figure measured in the same run (`ratio_of` says which)."""

    key: str
    label: str
    value: float
    unit: str
    target: float | None = None
    bound: str = "<="
    ratio: float | None = None
    ratio_of: str = ""
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value <= self.target if self.bound == "<=" else self.value >= self.target

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


def against_target(fig: Figure) -> Figure:
    """Fill in the ratio measured/target where no same-run comparison gives one."""
    if fig.ratio is None and fig.target:
        fig.ratio = fig.value / fig.target
        fig.ratio_of = "of target"
    return fig


def sh(
    *argv: str,
    cwd: Path | None = None,
    check: bool = True,
    timeout: float = 1800,
    env: dict[str, str] | None = None,
) -> str:
    r = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, env=env or ENV, check=False, timeout=timeout
    )
    if check and r.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r.stdout


def hpcstack(cwd: Path, *args: str, check: bool = True) -> str:
    return sh(sys.executable, "-m", "hpcstack.cli.main", *args, cwd=cwd, check=check)


def timed(fn: Callable[[], Any]) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def timed_cpu(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall seconds and the CPU seconds its child processes used (user + system): on a shared
    machine the second says how much of the first was waiting for a core."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = timed(fn)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def wait_until(what: str, fn: Callable[[], bool], timeout: float, interval: float = 0.2) -> float:
    """Seconds until `fn()` is true; SystemExit after `timeout`."""
    start = time.monotonic()
    while not fn():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"bench: timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - start
