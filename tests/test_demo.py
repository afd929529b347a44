"""`hpcstack demo`'s shape: as many tasks as the nodes have CPUs for (two per node at most, at
most one per setting), so `srun -n` never asks for more processors than the cluster has."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from hpcstack.operate.demo import demo_shape


def cluster(*cpus: int) -> Any:
    return SimpleNamespace(plan=SimpleNamespace(nodes=[SimpleNamespace(cpus=c) for c in cpus]))


@pytest.mark.parametrize(
    ("cpus", "shape"),
    [
        ((2, 2), (2, 4)),  # the default: two tasks per node
        ((1, 1, 1, 1), (4, 4)),  # one-CPU nodes: one task each (the multi-host harness)
        ((16, 16, 16, 16, 16), (5, 8)),  # at most one task per setting
        ((1,) * 10, (10, 10)),  # every node gets a task, some with no setting
        ((4,), (1, 2)),
    ],
)
def test_demo_shape(cpus: tuple[int, ...], shape: tuple[int, int]) -> None:
    assert demo_shape(cluster(*cpus)) == shape
