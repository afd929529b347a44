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
# The REST gateway (nginx, verifying every token) inside the slurmrestd container; published on
# the host's 127.0.0.1. slurmrestd itself listens only on REST_SOCKET, behind it.
SLURMRESTD_PORT = 6820
SRUN_PORT_RANGE = (60001, 60999)
SSHD_PORT = 22  # the cloud sshd inside its container (ssh mode); published on tunnel.ssh_port
NODE_PORT_BASE = 17001  # ssh mode: the first controller-side port of a tunneled node
# The shared filesystem (GlusterFS): glusterd's management port and the one brick's port.
FS_MGMT_PORT = 24007
FS_BRICK_PORT = 49152
FS_PING_TIMEOUT_S = 10  # a cut to the fs server is an error after this long (GlusterFS: 42 s)
FS_RETRY_S = 10  # a node that could not mount at start tries again this often
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
    "login": 7,  # the lab's login service (key-only sshd, Slurm client)
    "slurmrestd": 8,
    "fs": 9,  # the shared filesystem server (below FIRST_NODE_HOST: cloud sites may have nodes)
}
FIRST_NODE_HOST = 20
# Overlay host numbers inside a site's overlay block: hub .1, nodes from .4; on a tunneled site
# .2 is the site's exporters (node-exporter's own WireGuard peer, decision faults-0016).
OVERLAY_HUB_HOST = 1
OVERLAY_EXPORTER_HOST = 2
OVERLAY_FIRST_NODE = 4
MAX_NODES_PER_SITE = 250  # one overlay /24 less the hub and reserved numbers
MAX_OVERLAY_SITES = 250

# How often a compute node checks whether the controller has it DOWN "Not responding" while
# it reaches the controller again (images/slurm/rejoin.sh), in seconds.
REJOIN_INTERVAL_S = 10

# --- users -----------------------------------------------------------------------------------
JOB_USER = "hpc"  # the demo's unprivileged user in the images
JOB_USER_UID = 1000
SSH_USER = "tunnel"  # ssh mode: the only login the cloud sshd accepts
REST_USER = "slurmrest"  # slurmrestd refuses root and SlurmUser: it runs as this one
REST_GATEWAY_USER = "www-data"  # nginx's workers (Debian's web server user)
# The identity Prometheus scrapes Slurm's /metrics as (MetricsAuthUsers): a system user of the
# slurm image with no Slurm account, so its token can read but never submit.
METRICS_USER = "slurm-metrics"

# --- names -----------------------------------------------------------------------------------
HUB = "hub"  # the WireGuard hub's peer name
# A tunneled site's exporters' WireGuard peer: `exporters_<site>` (`_`: no node name has one).
EXPORTER_PEER_PREFIX = "exporters_"
SSH_HOST_ALIAS = "hpcstack-sshd"  # ssh mode: the name the pinned known_hosts line carries
WG_IFACE = "wg0"
# How a generated file names a key to fill in at start: `@name` (WireGuard peers, ssh sites).
KEY_REF_NAME = r"[a-z0-9][a-z0-9_-]*"


def key_ref(name: str) -> str:
    """`@name` for a generated file; only names the images' KEY_REF_NAME regex accepts."""
    if re.fullmatch(KEY_REF_NAME, name) is None:
        raise ValueError(f"internal: {name!r} cannot be a key reference ({KEY_REF_NAME})")
    return f"@{name}"


# --- paths inside the containers -------------------------------------------------------------
SLURM_CONF_DIR = "/etc/hpcstack/slurm"  # generated slurm/, mounted read-only
WG_CONF_DIR = "/etc/hpcstack/wireguard"  # the site's wireguard/<site>/
WG_PUB_DIR = "/etc/hpcstack/wireguard-pub"  # secrets/wireguard/pub
SSH_CONF_DIR = "/etc/hpcstack/ssh"
SSH_PUB_DIR = "/etc/hpcstack/ssh-pub"
SSH_KEY_PATH = "/run/hpcstack-ssh/key"  # the entrypoint copies the compose secret here, 0600
SSH_JUMP_KNOWN_HOSTS = "jump_known_hosts"  # optional, the operator adds the bastion's key line
SECRETS_DIR = "/run/secrets"  # compose secrets
SSHD_HOST_KEY_PATH = "/etc/ssh/hpcstack_host_ed25519_key"  # the sshd host key, copied at start
SSHD_AUTHORIZED_KEYS_DIR = "/etc/ssh/authorized_keys.d"  # sshd_config's AuthorizedKeysFile %u
JWT_KEY_PATH = "/run/hpcstack-jwt/jwt_hs256.key"  # the entrypoint installs it here, slurm 0400
# The REST gateway: its nginx configuration (from templates/images/slurm/rest-gateway.conf.j2),
# the include the entrypoint writes at start with the JWT key in hex (root 0400, never in the
# image), and slurmrestd's socket, in a directory only nginx's group may enter.
REST_GATEWAY_CONF = "/etc/nginx/hpcstack-rest-gateway.conf"
REST_GATEWAY_KEY_CONF = "/run/hpcstack-rest-key/jwt_key.conf"
REST_SOCKET_DIR = "/run/hpcstack-rest"
REST_SOCKET = f"{REST_SOCKET_DIR}/slurmrestd.sock"
REST_TOKEN_HEADER = "X-SLURM-USER-TOKEN"  # Slurm's header; the only one the gateway reads
# Prometheus's token for Slurm's /metrics: slurmctld's container mints it (`scontrol token`) into
# a volume that only it and Prometheus mount. It lives a year and is minted anew 30 days before it
# ends (or when slurmctld refuses it); Prometheus restarts itself when it changes, because
# Debian's Prometheus keeps the first token it read (rest-0014).
METRICS_TOKEN_DIR = "/run/hpcstack-metrics"
METRICS_TOKEN_PATH = f"{METRICS_TOKEN_DIR}/token"
METRICS_TOKEN_VOLUME = "metrics-token"
METRICS_TOKEN_LIFESPAN_S = 365 * 86400
METRICS_TOKEN_RENEW_BEFORE_S = 30 * 86400
METRICS_TOKEN_CHECK_S = 3600  # how often the minter looks at the token
METRICS_TOKEN_WATCH_S = 60  # how often Prometheus's container looks for a new one
GPU_JOB_DIR = "/run/hpcstack/gpu-jobs"  # the Slurm prolog writes one file per GPU index here
DEMO_DIR = "/opt/hpcstack/demo"
SHARED_DIR = "/shared"
HOME_DIR = "/home"  # users' homes: on the shared filesystem like SHARED_DIR
FS_VOLUME = "hpcfs"  # the GlusterFS volume's name on the fs server
FS_BRICK_DIR = "/srv/hpcstack-fs/brick"  # the server's brick, on a named volume
FS_MOUNT_DIR = "/mnt/hpcstack-fs"  # a client mounts the volume here, then binds its subdirectories
LIB_DIR = "/usr/local/lib/hpcstack"  # shell files the images' scripts source
CONTRACT_PATH = f"{LIB_DIR}/contract.sh"  # where the images keep contract.sh
# Containers in jobs (containers.enabled): oci.conf's RunTimeRun wrapper on compute nodes, the
# bundle maker on every Slurm image, where Slurm binds the step's spool dir in a container
# (under the /tmp the wrapper gives it, as Slurm's own batch files are: no mount point is needed
# in the bundle's read-only rootfs), and the parent of crun's per-user state directories
# (<dir>/<uid>, made by the prolog: nodes without systemd have no /run/user of their own).
OCI_RUN_PATH = "/usr/local/libexec/hpcstack-oci-run"
BUNDLE_TOOL_PATH = "/usr/local/bin/hpcstack-bundle"
OCI_SPOOL_MOUNT = "/tmp/slurm/spool"
OCI_STATE_DIR = "/run/user"

# --- lab users (users/ from users:, mounted read-only into every Slurm container) ------------
USERS_DIR = "/etc/hpcstack/users"  # users.tsv, keys/<name>, sshd_config (login)
USERS_PUB_DIR = "/etc/hpcstack/users-pub"  # secrets/users/pub: generated users' public keys
USERS_MANAGED = "/var/lib/hpcstack/users.managed"  # who hpcstack-users made (it removes only them)
LAB_JUMP_USER = "hpcstack-lab"  # AWS: the bastion account lab members jump through (forward only)
LOGIN_HOST_KEY_PATH = "/etc/ssh/hpcstack_login_host_ed25519_key"
LOGIN_HOST_KEY_SECRET = "login_host_key"

# --- compose secrets (targets under SECRETS_DIR) ---------------------------------------------
MUNGE_KEY_SECRET = "munge_key"
DB_PASSWORD_SECRET = "db_password"
WG_KEY_SECRET = "wg_key"  # this container's WireGuard private key
SSH_KEY_SECRET = "ssh_key"  # a local site's ssh client key
SSH_HOST_KEY_SECRET = "ssh_host_key"  # the cloud sshd's host key
JWT_KEY_SECRET = "jwt_key"  # the HS256 key slurmctld and slurmdbd check REST tokens with

# --- per-container environment compose sets (names only; the values come from the plan) -----
ENV_WG_PEER = "HPCSTACK_WG_PEER"  # this container's WireGuard peer name
ENV_SSH_SITE = "HPCSTACK_SSH_SITE"  # ssh-tunnel: the site whose client config to use
ENV_DNAT = "HPCSTACK_DNAT"  # ssh mode: `dest=to` pairs a node rewrites
ENV_OVERLAY_VIA = "HPCSTACK_OVERLAY_VIA"  # cloud-side services: the tunnel's address
ENV_OVERLAY_NETS = "HPCSTACK_OVERLAY_NETS"  # ... and the overlay networks routed through it
ENV_MKNOD_GPUS = "HPCSTACK_MKNOD_GPUS"  # gpu_runtime mknod: the device numbers to create
ENV_FS_SERVER = "HPCSTACK_FS_SERVER"  # a shared-filesystem client: the server's address
ENV_FS_WAIT = "HPCSTACK_FS_WAIT"  # ... and how many seconds it waits for the mount at start
ENV_FS_ALLOW = "HPCSTACK_FS_ALLOW"  # the fs server: the networks its clients come from
# Prometheus (not a slurm-image service): the token file to watch, and how often
ENV_METRICS_TOKEN = "HPCSTACK_METRICS_TOKEN"
ENV_METRICS_TOKEN_WATCH_S = "HPCSTACK_METRICS_TOKEN_WATCH_S"
# wireguard/<site>/<peer>.env, which hpcstack-tunnel sources: the interface settings `wg setconf`
# does not read (the .conf beside it holds only what it does).
WG_ENV_ADDRESS = "HPCSTACK_WG_ADDRESS"  # the peer's overlay address with prefix length
WG_ENV_MTU = "HPCSTACK_WG_MTU"
WG_ENV_ROUTES = "HPCSTACK_WG_ROUTES"  # space-separated networks routed into the tunnel


def shell_variables() -> dict[str, str]:
    """What the images' scripts read, as `HPCSTACK_*` shell variables (sorted when rendered)."""
    return {
        "HPCSTACK_SLURMCTLD_PORT": str(SLURMCTLD_PORT),
        "HPCSTACK_SLURMD_PORT": str(SLURMD_PORT),
        "HPCSTACK_SLURMDBD_PORT": str(SLURMDBD_PORT),
        "HPCSTACK_SLURMRESTD_PORT": str(SLURMRESTD_PORT),
        "HPCSTACK_REST_USER": REST_USER,
        "HPCSTACK_REST_GATEWAY_USER": REST_GATEWAY_USER,
        "HPCSTACK_REST_GATEWAY_CONF": REST_GATEWAY_CONF,
        "HPCSTACK_REST_GATEWAY_KEY_CONF": REST_GATEWAY_KEY_CONF,
        "HPCSTACK_REST_SOCKET_DIR": REST_SOCKET_DIR,
        "HPCSTACK_REST_SOCKET": REST_SOCKET,
        "HPCSTACK_METRICS_USER": METRICS_USER,
        "HPCSTACK_METRICS_TOKEN_DIR": METRICS_TOKEN_DIR,
        "HPCSTACK_METRICS_TOKEN_PATH": METRICS_TOKEN_PATH,
        "HPCSTACK_METRICS_TOKEN_LIFESPAN_S": str(METRICS_TOKEN_LIFESPAN_S),
        "HPCSTACK_METRICS_TOKEN_RENEW_BEFORE_S": str(METRICS_TOKEN_RENEW_BEFORE_S),
        "HPCSTACK_METRICS_TOKEN_CHECK_S": str(METRICS_TOKEN_CHECK_S),
        "HPCSTACK_JWT_KEY_SECRET": f"{SECRETS_DIR}/{JWT_KEY_SECRET}",
        "HPCSTACK_JWT_KEY_PATH": JWT_KEY_PATH,
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
        "HPCSTACK_MUNGE_KEY_SECRET": f"{SECRETS_DIR}/{MUNGE_KEY_SECRET}",
        "HPCSTACK_DB_PASSWORD_SECRET": f"{SECRETS_DIR}/{DB_PASSWORD_SECRET}",
        "HPCSTACK_WG_KEY_SECRET": f"{SECRETS_DIR}/{WG_KEY_SECRET}",
        "HPCSTACK_SSH_KEY_SECRET": f"{SECRETS_DIR}/{SSH_KEY_SECRET}",
        "HPCSTACK_SSH_HOST_KEY_SECRET": f"{SECRETS_DIR}/{SSH_HOST_KEY_SECRET}",
        "HPCSTACK_SSHD_HOST_KEY_PATH": SSHD_HOST_KEY_PATH,
        "HPCSTACK_SSHD_AUTHORIZED_KEYS_DIR": SSHD_AUTHORIZED_KEYS_DIR,
        "HPCSTACK_HUB": HUB,
        "HPCSTACK_GPU_JOB_DIR": GPU_JOB_DIR,
        "HPCSTACK_OCI_STATE_DIR": OCI_STATE_DIR,
        "HPCSTACK_KEY_REF_NAME": KEY_REF_NAME,
        "HPCSTACK_JOB_USER": JOB_USER,
        "HPCSTACK_DEMO_DIR": DEMO_DIR,
        "HPCSTACK_LIB_DIR": LIB_DIR,
        "HPCSTACK_REJOIN_INTERVAL_S": str(REJOIN_INTERVAL_S),
        "HPCSTACK_SHARED_DIR": SHARED_DIR,
        "HPCSTACK_HOME_DIR": HOME_DIR,
        "HPCSTACK_FS_VOLUME": FS_VOLUME,
        "HPCSTACK_FS_BRICK_DIR": FS_BRICK_DIR,
        "HPCSTACK_FS_MOUNT_DIR": FS_MOUNT_DIR,
        "HPCSTACK_FS_MGMT_PORT": str(FS_MGMT_PORT),
        "HPCSTACK_FS_BRICK_PORT": str(FS_BRICK_PORT),
        "HPCSTACK_FS_PING_TIMEOUT_S": str(FS_PING_TIMEOUT_S),
        "HPCSTACK_FS_RETRY_S": str(FS_RETRY_S),
        "HPCSTACK_USERS_DIR": USERS_DIR,
        "HPCSTACK_USERS_PUB_DIR": USERS_PUB_DIR,
        "HPCSTACK_USERS_MANAGED": USERS_MANAGED,
        "HPCSTACK_LOGIN_HOST_KEY_PATH": LOGIN_HOST_KEY_PATH,
        "HPCSTACK_LOGIN_HOST_KEY_SECRET": f"{SECRETS_DIR}/{LOGIN_HOST_KEY_SECRET}",
    }
