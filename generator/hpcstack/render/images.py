"""Dockerfiles, entrypoints and the demo under images/: build contexts for every image."""

from __future__ import annotations

from collections.abc import Iterable

from ..topology import Plan
from . import Artifact, renderer
from ._jinja import read_static, render_template

JOB_USER = "hpc"
JOB_USER_UID = 1000
# What the demo's ML jobs need on compute nodes (scikit-learn ships the digits data set).
COMPUTE_PACKAGES = ("python3", "python3-sklearn")

SLURM_STATIC = ("entrypoint.sh", "healthcheck.sh", "tunnel.sh", "demo/sweep.py", "demo/run-demo.sh")
MARIADB_STATIC = ("entrypoint.sh", "healthcheck.sh", "slurm.cnf")


def image_context(plan: Plan) -> dict[str, object]:
    return {
        "base_image": plan.stack.base_image,
        "suite": plan.stack.cluster.debian_suite,
        "slurm_release": plan.stack.cluster.slurm_release,
        "job_user": JOB_USER,
        "job_user_uid": JOB_USER_UID,
        "compute_packages": COMPUTE_PACKAGES,
    }


def _mode(name: str) -> int:
    return 0o755 if name.endswith((".sh", ".py")) else 0o644


@renderer("images")
def render_images(plan: Plan) -> Iterable[Artifact]:
    ctx = image_context(plan)
    for image, static in (("slurm", SLURM_STATIC), ("mariadb", MARIADB_STATIC)):
        yield Artifact(
            f"images/{image}/Dockerfile", render_template(f"images/{image}/Dockerfile.j2", **ctx)
        )
        for name in static:
            yield Artifact(
                f"images/{image}/{name}", read_static(f"images/{image}/{name}"), _mode(name)
            )
