"""Dockerfiles, entrypoints, the demo and the exporter under images/: every build context.

Templates (`Dockerfile.j2`) get the base image, suite and Slurm release; the other files are
copied verbatim. The Slurm exporter's source is copied from this package into the slurm image's
context so the image needs nothing but Debian's python3-prometheus-client.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources

from hpcstack.plan.topology import Plan
from hpcstack.render import Artifact, renderer
from hpcstack.render._jinja import read_static, render_template

JOB_USER = "hpc"
JOB_USER_UID = 1000
# What the demo's ML jobs need on compute nodes (scikit-learn ships the digits data set).
COMPUTE_PACKAGES = ("python3", "python3-sklearn")

STATIC_FILES: dict[str, tuple[str, ...]] = {
    "slurm": (
        "entrypoint.sh",
        "healthcheck.sh",
        "tunnel.sh",
        "prolog.sh",
        "epilog.sh",
        "torch-cuda.lock.txt",
        "demo/sweep.py",
        "demo/run-demo.sh",
    ),
    "mariadb": ("entrypoint.sh", "healthcheck.sh", "slurm.cnf"),
    "prometheus": ("entrypoint.sh",),
    "node-exporter": (),
}
GPU_STAGE = "images/slurm/gpu.Dockerfile.fragment"
EXPORTER_FILES = ("__init__.py", "__main__.py", "collector.py", "slurm_json.py")


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


def render_dockerfile(plan: Plan, image: str) -> str:
    text = render_template(f"images/{image}/Dockerfile.j2", **image_context(plan))
    if image == "slurm":
        text += read_static(GPU_STAGE)
    return text


def _exporter_sources() -> Iterable[Artifact]:
    pkg = resources.files("hpcstack.exporter")
    # A package root that imports nothing, so the exporter runs with Debian's python3 alone.
    yield Artifact(
        "images/slurm/python/hpcstack/__init__.py",
        '"""hpcstack: only the Slurm exporter is installed in this image."""\n',
    )
    for name in EXPORTER_FILES:
        yield Artifact(
            f"images/slurm/python/hpcstack/exporter/{name}", pkg.joinpath(name).read_text(), 0o644
        )


@renderer("images")
def render_images(plan: Plan) -> Iterable[Artifact]:
    for image, static in STATIC_FILES.items():
        yield Artifact(f"images/{image}/Dockerfile", render_dockerfile(plan, image))
        for name in static:
            yield Artifact(
                f"images/{image}/{name}", read_static(f"images/{image}/{name}"), _mode(name)
            )
    yield from _exporter_sources()
