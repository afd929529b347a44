"""`hpcstack demo`: the ML sweep split over every compute node, run from the controller as the
definition's first lab user (the image's `hpc` when `users:` is left out), not as root."""

from __future__ import annotations

from collections.abc import Iterator

from hpcstack.contract import DEMO_DIR, JOB_USER
from hpcstack.operate.session import Cluster


def demo_user(cluster: Cluster) -> str:
    users = cluster.plan.stack.users
    return users[0].name if users else JOB_USER


def demo(cluster: Cluster, extra: list[str] | None = None) -> Iterator[str]:
    nodes = len(cluster.plan.nodes)
    user = demo_user(cluster)
    argv = ["runuser", "-u", user, "--", f"{DEMO_DIR}/run-demo.sh", str(nodes), str(nodes * 2)]
    return cluster.docker.exec_stream(cluster.controller_container(), [*argv, *(extra or [])])
