"""images/: every image's build context, from templates/images/ (the tree mirrors the output).

The `.j2` files (the Dockerfiles, the REST gateway's nginx configuration) get the base image,
suite, Slurm release and the contract's names; every other file is copied verbatim. The Slurm
exporter's source is copied from this package into the slurm image's context so the image needs
nothing but Debian's python3-prometheus-client (and python3-msgspec, which makes it faster; it
runs without).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib import resources
from importlib.resources.abc import Traversable

from hpcstack import contract
from hpcstack.plan.topology import Plan
from hpcstack.render import Artifact, renderer
from hpcstack.render._jinja import read_static
from hpcstack.render._tree import mode_for, render_tree, with_header

# What the demo's ML jobs need on compute nodes: numpy alone (the digits data set travels in
# demo/digits.txt; scikit-learn with SciPy would add ~300 MB to the image); crun runs jobs'
# containers (`srun --container`, rest-0016).
COMPUTE_PACKAGES = ("python3", "python3-numpy", "crun")
EXPORTER_DIR = "images/slurm/python/hpcstack/exporter"
# The slurm image's tunnel scripts, also in node-exporter's context: on a tunneled site that
# container is a WireGuard peer of its own (decision faults-0016). One source, two copies.
SHARED_SCRIPTS = {"images/node-exporter": ("keyrefs.sh", "tunnel.sh")}


def image_context(plan: Plan) -> dict[str, object]:
    return {
        "base_image": plan.stack.base_image,
        "suite": plan.stack.cluster.debian_suite,
        "slurm_release": plan.stack.cluster.slurm_release,
        "job_user": contract.JOB_USER,
        "job_user_uid": contract.JOB_USER_UID,
        "ssh_user": contract.SSH_USER,
        "rest_user": contract.REST_USER,
        "metrics_user": contract.METRICS_USER,
        "rest_gateway_conf": contract.REST_GATEWAY_CONF,
        "rest_gateway": {
            "user": contract.REST_GATEWAY_USER,
            "port": contract.SLURMRESTD_PORT,
            "socket": contract.REST_SOCKET,
            "key_conf": contract.REST_GATEWAY_KEY_CONF,
            "token_header": contract.REST_TOKEN_HEADER,
            # nginx's variable for that request header
            "token_var": "$http_" + contract.REST_TOKEN_HEADER.lower().replace("-", "_"),
        },
        "contract_path": contract.CONTRACT_PATH,
        "lib_dir": contract.LIB_DIR,
        "demo_dir": contract.DEMO_DIR,
        "shared_dir": contract.SHARED_DIR,
        "home_dir": contract.HOME_DIR,
        "oci_run_path": contract.OCI_RUN_PATH,
        "bundle_tool_path": contract.BUNDLE_TOOL_PATH,
        "compute_packages": COMPUTE_PACKAGES,
        "ports": contract.EXPORTER_PORTS,
    }


def _python_files(folder: Traversable, rel: str = "") -> Iterator[tuple[str, str]]:
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            yield from _python_files(entry, f"{rel}{entry.name}/")
        elif entry.name.endswith(".py"):
            yield f"{rel}{entry.name}", entry.read_text(encoding="utf-8")


def _exporter_sources() -> Iterable[Artifact]:
    # A package root that imports nothing, so the exporter runs with Debian's python3 alone.
    yield Artifact(
        "images/slurm/python/hpcstack/__init__.py",
        '"""hpcstack: only the Slurm exporter is installed in this image."""\n',
    )
    for rel, text in _python_files(resources.files("hpcstack.exporter")):
        yield Artifact(f"{EXPORTER_DIR}/{rel}", text, 0o644)


def _shared_scripts() -> Iterable[Artifact]:
    for folder, names in SHARED_SCRIPTS.items():
        for name in names:
            template, path = f"images/slurm/{name}", f"{folder}/{name}"
            yield Artifact(path, with_header(read_static(template), template, path), mode_for(path))


@renderer("images")
def render_images(plan: Plan) -> Iterable[Artifact]:
    yield from render_tree("images", image_context(plan))
    yield from _exporter_sources()
    yield from _shared_scripts()
