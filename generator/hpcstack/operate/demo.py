"""`hpcstack demo`: the ML sweep split over every compute node, run as the definition's first lab
user (the image's `hpc` when `users:` is left out), not as root: on the login service where
there is one (where lab members work), else in slurmctld's container. With a shared filesystem
the data set and each task's results file live on it (run-demo.sh)."""

from __future__ import annotations

from collections.abc import Iterator

from hpcstack.contract import DEMO_DIR, JOB_USER
from hpcstack.errors import ToolError
from hpcstack.operate.session import Cluster


def demo_user(cluster: Cluster) -> str:
    users = cluster.plan.stack.users
    return users[0].name if users else JOB_USER


def demo_container(cluster: Cluster) -> str:
    if cluster.plan.stack.login.enabled:
        try:
            return cluster.compose(cluster.plan.controller).container("login")
        except ToolError:
            pass  # not running: the controller's container has the same clients
    return cluster.controller_container()


GRID_SIZE = 8  # sweep.py's settings: more tasks than this would have nothing to do


def demo_shape(cluster: Cluster) -> tuple[int, int]:
    """(nodes, tasks): every node, one task per CPU (two per node at most), at most one task
    per setting; a node with one CPU gets one task (`srun -n` beyond the CPUs is refused)."""
    nodes = cluster.plan.nodes
    tasks = sum(min(node.cpus, 2) for node in nodes)
    return len(nodes), max(len(nodes), min(tasks, GRID_SIZE))


def demo(cluster: Cluster, extra: list[str] | None = None) -> Iterator[str]:
    nodes, tasks = demo_shape(cluster)
    user = demo_user(cluster)
    argv = ["runuser", "-u", user, "--", f"{DEMO_DIR}/run-demo.sh", str(nodes), str(tasks)]
    return cluster.docker.exec_stream(demo_container(cluster), [*argv, *(extra or [])])
