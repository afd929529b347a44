"""slurm/: the configuration the controller serves configless, from templates/slurm/*.j2:
slurm.conf, cgroup.conf, gres.conf, oci.conf (only with containers.enabled: its presence turns
`--container` on), and slurmdbd.conf (without the password, which the container adds from its
secret)."""

from __future__ import annotations

from collections.abc import Iterable

from hpcstack.contract import (
    JWT_KEY_PATH,
    METRICS_USER,
    OCI_RUN_PATH,
    OCI_SPOOL_MOUNT,
    OCI_STATE_DIR,
    SLURMCTLD_PORT,
    SLURMD_PORT,
    SLURMDBD_PORT,
    SRUN_PORT_RANGE,
)
from hpcstack.plan.topology import Plan
from hpcstack.render import Artifact, renderer
from hpcstack.render._tree import render_tree

DEFAULT_PARTITION = "all"
DB_NAME = "slurm_acct_db"
DB_USER = "slurm"
OCI_CONF = "slurm/oci.conf"
# Rootless crun with its state in the user's own directory, which the prolog makes (%U: uid).
OCI_RUNTIME = f"crun --rootless=true --root={OCI_STATE_DIR}/%U"


def _ports() -> dict[str, str]:
    return {
        "slurmctld": str(SLURMCTLD_PORT),
        "slurmd": str(SLURMD_PORT),
        "slurmdbd": str(SLURMDBD_PORT),
        "srun": f"{SRUN_PORT_RANGE[0]}-{SRUN_PORT_RANGE[1]}",
    }


def _device_files(indices: tuple[int, ...]) -> str:
    """/dev/nvidia[0-1] for a contiguous run, /dev/nvidia[0,2] otherwise."""
    if len(indices) == 1:
        return f"/dev/nvidia{indices[0]}"
    lo, hi = min(indices), max(indices)
    if list(indices) == list(range(lo, hi + 1)):
        return f"/dev/nvidia[{lo}-{hi}]"
    return "/dev/nvidia[" + ",".join(str(i) for i in indices) + "]"


def metrics_auth(plan: Plan) -> bool:
    """Slurm checks a token on its /metrics endpoints (MetricsAuthUsers) from 26.05 on."""
    major, minor = (int(x) for x in plan.stack.cluster.slurm_release.split("."))
    return (major, minor) >= (26, 5)


def def_mem_per_cpu(plan: Plan) -> int:
    """The smallest node's memory per CPU (MB), so a default job fits anywhere."""
    shares = [n.memory_mb // n.cpus for n in plan.nodes]
    return max(min(shares), 1) if shares else 1024


def template_context(plan: Plan) -> dict[str, object]:
    """What the templates under templates/slurm/ read (one context for all of them)."""
    compute_sites = [s for s in plan.sites if s.nodes]
    nodesets = [{"name": f"ns_{s.name}", "feature": f"site_{s.name}"} for s in compute_sites]
    partitions = [
        {"name": s.name, "nodes": f"ns_{s.name}", "default": False} for s in compute_sites
    ]
    partitions.append({"name": DEFAULT_PARTITION, "nodes": "ALL", "default": True})
    gres = [
        {"node": n.name, "type": n.gpu_type, "files": _device_files(n.gpu_indices)}
        for n in plan.nodes
        if n.gpu_indices
    ]
    return {
        "cluster": plan.cluster,
        "controller_addr": plan.controller_addr,
        "ports": _ports(),
        "max_node_count": plan.stack.cluster.max_nodes,
        "slurmd_timeout": plan.stack.cluster.slurmd_timeout,
        "def_mem_per_cpu": def_mem_per_cpu(plan),
        "nodesets": nodesets,
        "partitions": partitions,
        "gres": gres,
        "db_name": DB_NAME,
        "db_user": DB_USER,
        "jwt_key_path": JWT_KEY_PATH,
        "metrics_auth_users": METRICS_USER if metrics_auth(plan) else "",
        "oci": {"crun": OCI_RUNTIME, "run": OCI_RUN_PATH, "spool_mount": OCI_SPOOL_MOUNT},
    }


def node_conf(plan: Plan, node_name: str) -> str:
    """The `slurmd -Z --conf` string a dynamic node registers with."""
    node = plan.node(node_name)
    parts = [
        f"CPUs={node.cpus}",
        f"RealMemory={node.memory_mb}",
        f"Feature={','.join(node.features)}",
    ]
    if node.gres:
        parts.append(f"Gres={node.gres}")
    return " ".join(parts)


@renderer("slurm")
def render_slurm(plan: Plan) -> Iterable[Artifact]:
    containers = plan.stack.containers.enabled
    return [
        a for a in render_tree("slurm", template_context(plan)) if a.path != OCI_CONF or containers
    ]
