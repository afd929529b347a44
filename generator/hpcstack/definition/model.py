"""The cluster definition (stack.yaml) as a pydantic model.

Structure only: types, ranges and forbidden extra keys. Checks that look across the definition
(unique names, overlapping subnets, one controller site) live in :mod:`hpcstack.validate`.
Derived values (node names, addresses) are computed here as plain properties so every renderer
reads the same answer.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from hpcstack.definition.model_base import Number as Number
from hpcstack.definition.model_base import Strict as Strict
from hpcstack.definition.model_users import DEFAULT_ACCOUNT as DEFAULT_ACCOUNT
from hpcstack.definition.model_users import DEMO_UID as DEMO_UID
from hpcstack.definition.model_users import DEMO_USER as DEMO_USER
from hpcstack.definition.model_users import FIRST_LAB_UID as FIRST_LAB_UID
from hpcstack.definition.model_users import LAST_LAB_UID as LAST_LAB_UID
from hpcstack.definition.model_users import Account as Account
from hpcstack.definition.model_users import Group as Group
from hpcstack.definition.model_users import Login as Login
from hpcstack.definition.model_users import User as User
from hpcstack.definition.model_users import _default_users

# A Slurm hostname: RFC 1123 label, lower case, starts with a letter.
HOSTNAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?\Z")
# A site name must be usable as a file name and as part of a compose project name.
SITE_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,30}\Z")
CLUSTER_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,19}\Z")
RELEASE_RE = re.compile(r"^\d{2}\.\d{2}\Z")

# Which Debian suite ships each Slurm release (see docs/decisions/0001-debian-packages.md).
SLURM_SUITES: dict[str, str] = {"24.11": "trixie", "26.05": "forky"}


def ipv4_network(value: str, max_prefix: int, what: str) -> str:
    """`value` if it is an IPv4 network in CIDR form no smaller than /max_prefix."""
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"not an IPv4 network in CIDR form: {exc}") from None
    if net.prefixlen > max_prefix:
        raise ValueError(f"{what} too small: use a /{max_prefix} or larger")
    return value


# Upper bounds on list lengths, so no definition makes a check quadratic in a huge list.
MAX_SITES = 250
MAX_GROUPS_PER_SITE = 250
MAX_FEATURES = 32


def duration_seconds(duration: str) -> int:
    """Seconds in a Prometheus-style duration such as `30s`, `5m`, `2h`, `15d`."""
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}[duration[-1]]
    return int(duration[:-1]) * unit


class Images(Strict):
    """Where images come from: `registry/prefix-NAME:tag` (registry may be empty)."""

    registry: str = Field("", description="e.g. ghcr.io/my-lab; empty means local only")
    prefix: str = Field("hpcstack", pattern=r"^[a-z0-9][a-z0-9._/-]*$")
    tag: str = Field("0.1.0", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
    base: str = Field("", description="base image; default debian:<suite>-slim")

    def ref(self, name: str) -> str:
        repo = f"{self.prefix}-{name}" if self.prefix else name
        if self.registry:
            repo = f"{self.registry.rstrip('/')}/{repo}"
        return f"{repo}:{self.tag}"


GpuIndices = Annotated[list[Annotated[Number, Field(ge=0, le=63)]], Field(max_length=64)]


class NodeGroup(Strict):
    """One node, or `count` nodes named `prefix1..prefixN`."""

    name: str | None = None
    prefix: str | None = None
    count: Number = Field(1, ge=1, le=256)
    cpus: Number = Field(1, ge=1, le=1024)
    memory_mb: Number = Field(1024, ge=256, le=16 * 1024 * 1024)
    gpus: int | GpuIndices | Literal["auto"] = 0
    gpu_type: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]{0,30}$")
    features: Annotated[
        list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]],
        Field(max_length=MAX_FEATURES),
    ] = []

    @field_validator("gpus", mode="before")
    @classmethod
    def _gpus_not_boolean(cls, v: object) -> object:
        if isinstance(v, bool):
            raise ValueError(
                f"gpus: {str(v).lower()} is a boolean: give a count, a list of GPU "
                "indices or 'auto'"
            )
        return v

    @field_validator("gpus")
    @classmethod
    def _gpu_count_in_range(cls, v: int | list[int] | str) -> int | list[int] | str:
        if isinstance(v, int) and not 0 <= v <= 64:
            raise ValueError("GPU count must be between 0 and 64")
        if isinstance(v, list) and len(set(v)) != len(v):
            raise ValueError("GPU indices must not repeat")
        return v

    @model_validator(mode="after")
    def _name_or_prefix(self) -> NodeGroup:
        if (self.name is None) == (self.prefix is None):
            raise ValueError("give exactly one of 'name' (one node) or 'prefix' (with 'count')")
        if self.name is not None and self.count != 1:
            raise ValueError("'count' needs 'prefix', not 'name'")
        return self

    @property
    def node_names(self) -> list[str]:
        if self.name is not None:
            return [self.name]
        return [f"{self.prefix}{i}" for i in range(1, self.count + 1)]


# A path in a bind mount: plain characters (no ':' or ',' that compose or mount would parse).
MOUNT_PATH_RE = re.compile(r"[A-Za-z0-9._@+/-]{1,1024}")
MAX_MOUNTS_PER_SITE = 64


def absolute_path(value: str) -> str:
    """`value` if it is an absolute, normalised path of plain characters."""
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is a relative path: write it from / (e.g. /data/{value})")
    if MOUNT_PATH_RE.fullmatch(value) is None:
        raise ValueError(f"{value!r}: only letters, digits and . _ @ + - / may appear in a path")
    parts = value.split("/")[1:]
    if value != "/" and any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{value!r} is not a normalised path (no '//', '.', '..' or trailing /)")
    return value


class Mount(Strict):
    """A directory of the site's host bind-mounted into every node container of the site."""

    source: str = Field(description="absolute path on the host")
    target: str = Field(description="absolute path in the node containers")
    read_only: bool = True

    @field_validator("source", "target")
    @classmethod
    def _absolute(cls, v: str) -> str:
        return absolute_path(v)


class Site(Strict):
    name: str
    role: Literal["cloud", "local"]
    subnet: str = Field(description="the site's Docker network, e.g. 172.28.1.0/24")
    gpu_runtime: Literal["nvidia", "cdi", "mknod"] = Field(
        "nvidia",
        description="how GPUs reach containers: the NVIDIA runtime, CDI device names, or "
        "'mknod' (device nodes without a driver: scheduling tests on hosts without GPUs)",
    )
    overlay: str | None = Field(
        None, description="tunnel addresses for this site (default: derived)"
    )
    nodes: list[NodeGroup] = Field([], max_length=MAX_GROUPS_PER_SITE)
    mounts: list[Mount] = Field(
        [],
        max_length=MAX_MOUNTS_PER_SITE,
        description="site-local data (host path -> node path), read-only unless read_only: false",
    )

    @field_validator("subnet", "overlay")
    @classmethod
    def _is_network(cls, v: str | None) -> str | None:
        return None if v is None else ipv4_network(v, max_prefix=28, what="network")

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def node_names(self) -> list[str]:
        return [n for g in self.nodes for n in g.node_names]


class Controller(Strict):
    site: str = "cloud"


class Tunnel(Strict):
    """How local sites reach the controller: WireGuard (default) or reverse SSH."""

    mode: Literal["wireguard", "ssh"] = "wireguard"
    subnet: str = Field("10.99.0.0/16", description="overlay network for every Slurm daemon")
    endpoint: str = Field(
        "host.docker.internal",
        description="address or DNS name local sites dial to reach the cloud site",
    )
    port: Number = Field(51820, ge=1, le=65535)
    mtu: Number = Field(1380, ge=1280, le=1500)
    keepalive: Number = Field(15, ge=1, le=300)
    ssh_port: Number = Field(
        2222, ge=1, le=65535, description="ssh mode: the host port the cloud site's sshd listens on"
    )
    ssh_jump: str | None = Field(
        None,
        pattern=r"^([a-z_][a-z0-9_.-]{0,31}@)?[A-Za-z0-9.-]{1,253}(:\d{1,5})?$",
        description="ssh mode: optional bastion, [user@]host[:port], local sites dial through",
    )

    @field_validator("subnet")
    @classmethod
    def _is_network(cls, v: str) -> str:
        return ipv4_network(v, max_prefix=20, what="overlay")


class Monitoring(Strict):
    enabled: bool = True
    retention: str = Field("15d", pattern=r"^\d+[hdwy]$")
    scrape_interval: str = Field("30s", pattern=r"^\d+[smh]$")
    grafana: bool = True
    dcgm: bool = True
    prometheus_port: Number = Field(9090, ge=1, le=65535, description="on the host's 127.0.0.1")
    grafana_port: Number = Field(3000, ge=1, le=65535, description="on the host's 127.0.0.1")


class Storage(Strict):
    """The shared filesystem (GlusterFS from the cloud site, see docs/decisions/sharedfs-0001)
    and where `sites[].mounts` may take data from."""

    shared_fs: bool | None = Field(
        None,
        description="serve /home and /shared from the cloud site to every node over the "
        "overlay (default: on with WireGuard, off in ssh mode)",
    )
    mount_wait: Number = Field(
        60, ge=0, le=3600, description="seconds a node waits for the shared filesystem at start"
    )
    mount_roots: list[str] = Field(
        ["/data", "/datasets", "/mnt", "/scratch", "/srv"],
        max_length=32,
        description="host directories sites[].mounts may take their source from",
    )

    @field_validator("mount_roots")
    @classmethod
    def _absolute(cls, v: list[str]) -> list[str]:
        return [absolute_path(p) for p in v]


class Rest(Strict):
    """slurmrestd on the controller's site, JWT-authenticated, on the host's loopback only."""

    enabled: bool = True
    port: Number = Field(6820, ge=1, le=65535, description="on the host's 127.0.0.1")


class Containers(Strict):
    """`srun --container=BUNDLE`: Slurm's OCI support with rootless crun, run as the job's
    user. Off by default: the node containers then run without Docker's seccomp filter
    (docs/decisions/rest-0016-containers-in-jobs.md)."""

    enabled: bool = False


class Aws(Strict):
    region: str = Field("eu-west-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    vpc_cidr: str = "10.0.0.0/16"
    public_subnet_cidr: str = "10.0.2.0/24"
    private_subnet_cidr: str = "10.0.1.0/24"
    availability_zone: str = ""
    trusted_cidrs: list[str] = Field([], description="who may SSH to the bastion")
    local_site_cidrs: list[str] = Field([], description="public addresses of the local sites")
    controller_instance_type: str = "t3.medium"
    bastion_instance_type: str = "t3.micro"
    controller_volume_gb: int = Field(30, ge=8, le=16384)
    key_name: str = ""
    ssh_user: str = "admin"
    controller_data_gb: int = Field(
        20, ge=1, le=16384, description="data volume for MariaDB and StateSaveLocation (GiB)"
    )
    data_snapshots: bool = Field(True, description="daily snapshots of the data volume (DLM)")
    nat_gateway: bool = Field(True, description="false removes the NAT gateway while idle")
    secrets_kms_key: bool = Field(
        False, description="encrypt the SSM secrets with a customer-managed KMS key"
    )
    monthly_budget_usd: int = Field(0, ge=0, description="monthly cost alarm; 0 means none")
    budget_email: str = Field("", description="who the budget alarm mails")


class Cluster(Strict):
    name: str = "hpcstack"
    slurm_release: str = "26.05"
    slurmd_timeout: Number = Field(
        60, ge=10, le=3600, description="seconds before a silent node is marked DOWN"
    )
    max_nodes: Number = Field(1024, ge=1, le=65536, description="MaxNodeCount (dynamic nodes)")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not CLUSTER_NAME_RE.fullmatch(v):
            raise ValueError(
                "cluster name must be 1-20 lower-case letters and digits, starting with a letter "
                "(Slurm's ClusterName rules)"
            )
        return v

    @field_validator("slurm_release")
    @classmethod
    def _release(cls, v: str) -> str:
        if v not in SLURM_SUITES:
            known = ", ".join(sorted(SLURM_SUITES))
            raise ValueError(
                f"Slurm release {v!r} is not packaged by Debian; choose one of {known}"
            )
        return v

    @property
    def debian_suite(self) -> str:
        return SLURM_SUITES[self.slurm_release]


# --- lab users and accounts (docs/decisions/users-0012-lab-users-and-accounts.md) -------------
# The image's own demo user: the one uid under FIRST_LAB_UID a definition may name (as `hpc`).
class Stack(Strict):
    cluster: Cluster = Cluster()
    controller: Controller = Controller()
    images: Images = Images()
    tunnel: Tunnel = Tunnel()
    monitoring: Monitoring = Monitoring()
    storage: Storage = Storage()
    rest: Rest = Rest()
    containers: Containers = Containers()
    aws: Aws = Aws()
    sites: list[Site] = Field(min_length=1, max_length=MAX_SITES)
    login: Login = Login()
    groups: list[Group] = Field([], max_length=1000)
    users: list[User] = Field([], max_length=5000)
    accounts: list[Account] = Field([Account(name=DEFAULT_ACCOUNT)], max_length=1000)

    @model_validator(mode="before")
    @classmethod
    def _users_default(cls, data: object) -> object:
        return _default_users(data)

    def account(self, name: str) -> Account | None:
        return next((a for a in self.accounts if a.name == name), None)

    def site(self, name: str) -> Site:
        for s in self.sites:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def shared_fs(self) -> bool:
        """Whether the cloud site serves the shared filesystem (the default follows the mode)."""
        if self.storage.shared_fs is None:
            return self.tunnel.mode == "wireguard"
        return self.storage.shared_fs

    @property
    def base_image(self) -> str:
        return self.images.base or f"debian:{self.cluster.debian_suite}-slim"
