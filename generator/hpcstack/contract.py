"""The contract between the Python side and the images: every name, port and path both use.

This is the one place they are spelled. Python imports the constants; the images read the same
values from `contract.sh`, which `render/contract.py` writes into each image's build context
from `shell_variables()` (the scripts source it; a test checks they use no literal of their own).

A leaf module: it imports nothing from hpcstack, so every layer may import it.
"""

from __future__ import annotations

import re

# --- ports -----------------------------------------------------------------------------------
SLURMCTLD_PORT = 6817
SLURMD_PORT = 6818
SLURMDBD_PORT = 6819
SRUN_PORT_RANGE = (60001, 60999)
SSHD_PORT = 22  # the cloud sshd inside its container (ssh mode); published on tunnel.ssh_port
NODE_PORT_BASE = 17001  # ssh mode: the first controller-side port of a tunneled node
EXPORTER_PORTS: dict[str, int] = {
    "prometheus": 9090,
    "node-exporter": 9100,
    "slurm-exporter": 9341,
    "dcgm-exporter": 9400,
}

# --- addresses -------------------------------------------------------------------------------
# Fixed host numbers for services on a site's Docker network; nodes start at FIRST_NODE_HOST.
SERVICE_HOSTS: dict[str, int] = {
    "db": 10,
    "slurmdbd": 11,
    "slurmctld": 12,
    "tunnel": 13,
    "prometheus": 14,
    "grafana": 15,
    "node-exporter": 16,
    "slurm-exporter": 17,
    "dcgm-exporter": 18,
    "sshd": 19,
}
FIRST_NODE_HOST = 20
# Overlay host numbers inside a site's overlay block: hub .1, nodes from .4.
OVERLAY_HUB_HOST = 1
OVERLAY_FIRST_NODE = 4
MAX_NODES_PER_SITE = 250  # one overlay /24 less the hub and reserved numbers
MAX_OVERLAY_SITES = 250

# --- users -----------------------------------------------------------------------------------
JOB_USER = "hpc"  # the demo's unprivileged user in the images
JOB_USER_UID = 1000
SSH_USER = "tunnel"  # ssh mode: the only login the cloud sshd accepts

# --- names -----------------------------------------------------------------------------------
HUB = "hub"  # the WireGuard hub's peer name
SSH_HOST_ALIAS = "hpcstack-sshd"  # ssh mode: the name the pinned known_hosts line carries
WG_IFACE = "wg0"
# How a generated file names a key to fill in at start: `@name` (WireGuard peers, ssh sites).
KEY_REF_NAME = r"[a-z0-9][a-z0-9_-]*"
KEY_REF_RE = re.compile(rf"@({KEY_REF_NAME})$")

# --- paths inside the containers -------------------------------------------------------------
SLURM_CONF_DIR = "/etc/hpcstack/slurm"  # generated slurm/, mounted read-only
WG_CONF_DIR = "/etc/hpcstack/wireguard"  # the site's wireguard/<site>/
WG_PUB_DIR = "/etc/hpcstack/wireguard-pub"  # secrets/wireguard/pub
SSH_CONF_DIR = "/etc/hpcstack/ssh"
SSH_PUB_DIR = "/etc/hpcstack/ssh-pub"
SSH_KEY_PATH = "/run/hpcstack-ssh/key"  # the entrypoint copies the compose secret here, 0600
SSH_JUMP_KNOWN_HOSTS = "jump_known_hosts"  # optional, the operator adds the bastion's key line
SECRETS_DIR = "/run/secrets"  # compose secrets
GPU_JOB_DIR = "/run/hpcstack/gpu-jobs"  # the Slurm prolog writes one file per GPU index here
DEMO_DIR = "/opt/hpcstack/demo"
SHARED_DIR = "/shared"
CONTRACT_PATH = "/usr/local/lib/hpcstack/contract.sh"  # where the images keep contract.sh


def shell_variables() -> dict[str, str]:
    """What the images' scripts read, as `HPCSTACK_*` shell variables (sorted when rendered)."""
    return {
        "HPCSTACK_SLURMCTLD_PORT": str(SLURMCTLD_PORT),
        "HPCSTACK_SLURMD_PORT": str(SLURMD_PORT),
        "HPCSTACK_SLURMDBD_PORT": str(SLURMDBD_PORT),
        "HPCSTACK_SSHD_PORT": str(SSHD_PORT),
        "HPCSTACK_SSH_USER": SSH_USER,
        "HPCSTACK_SSH_HOST_ALIAS": SSH_HOST_ALIAS,
        "HPCSTACK_SSH_CONF_DIR": SSH_CONF_DIR,
        "HPCSTACK_SSH_PUB_DIR": SSH_PUB_DIR,
        "HPCSTACK_SSH_KEY_PATH": SSH_KEY_PATH,
        "HPCSTACK_SLURM_CONF_DIR": SLURM_CONF_DIR,
        "HPCSTACK_WG_CONF_DIR": WG_CONF_DIR,
        "HPCSTACK_WG_PUB_DIR": WG_PUB_DIR,
        "HPCSTACK_WG_IFACE": WG_IFACE,
        "HPCSTACK_SECRETS_DIR": SECRETS_DIR,
        "HPCSTACK_GPU_JOB_DIR": GPU_JOB_DIR,
        "HPCSTACK_KEY_REF_NAME": KEY_REF_NAME,
        "HPCSTACK_JOB_USER": JOB_USER,
    }
