"""`hpcstack demo`: the ML sweep split over every compute node, run from the controller."""

from __future__ import annotations

from collections.abc import Iterator

from hpcstack.contract import DEMO_DIR, JOB_USER
from hpcstack.operate.session import Cluster


def demo(cluster: Cluster, extra: list[str] | None = None) -> Iterator[str]:
    nodes = len(cluster.plan.nodes)
    argv = ["runuser", "-u", JOB_USER, "--", f"{DEMO_DIR}/run-demo.sh", str(nodes), str(nodes * 2)]
    return cluster.docker.exec_stream(cluster.controller_container(), [*argv, *(extra or [])])
