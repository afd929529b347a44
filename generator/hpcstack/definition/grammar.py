"""What every string of the definition may contain, by the place it lands: one table.

A value from stack.yaml ends up inside WireGuard, Slurm, compose, sshd, ssh_config, Prometheus,
Dockerfile or Terraform files. Each of those has its own syntax, and a newline or a `#`, `=`,
`$`, `[` in the wrong field would add a directive there (a `PostUp` line in a WireGuard config
runs a command as root). So every string field is checked against the grammar of its target
before anything is rendered; a field not named in FIELDS gets TEXT, which allows no control
character, quote, backslash, `$` or backtick, so a new field is safe before anyone adds it here.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pydantic import BaseModel

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_IPV4_SHAPE = re.compile(r"[0-9.]+")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_USER = r"[a-z_][a-z0-9_-]{0,31}"


@dataclass(frozen=True)
class Grammar:
    """A named grammar: a full-match pattern, a length limit and an optional extra test."""

    name: str  # what the value must be, e.g. "a DNS name or IPv4 address"
    example: str  # shown as the hint
    pattern: re.Pattern[str]
    max_len: int = 253
    empty_ok: bool = False
    extra: Callable[[str], str | None] | None = None  # a reason the value is refused, or None

    def refuse(self, value: str) -> str | None:
        """Why `value` is not in this grammar, or None when it is."""
        if len(value) > self.max_len:  # first: a 10 MB value is refused without a scan
            return f"is {len(value)} characters long; at most {self.max_len}"
        bad = first_unsafe_char(value)
        if bad is not None:
            return bad
        if value == "" and self.empty_ok:
            return None
        if not self.pattern.fullmatch(value):
            return "does not match"
        return self.extra(value) if self.extra else None


def first_unsafe_char(value: str) -> str | None:
    """A control, format or separator character would start a new line or hide text."""
    for i, ch in enumerate(value):
        if ch != " " and not ch.isprintable():
            name = unicodedata.name(ch, "") or "a control character"
            return f"contains {name.lower()} (U+{ord(ch):04X}) at character {i + 1}"
    return None


def _host_extra(value: str) -> str | None:
    if _IPV4_SHAPE.fullmatch(value):
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            return "looks like an IPv4 address but is not one"
    elif value.rsplit(".", 1)[-1].isdigit():
        return "the last label of a DNS name cannot be all digits"
    return None


def _cidr_extra(value: str) -> str | None:
    try:
        ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        return f"is not an IPv4 network in CIDR form ({exc})"
    return None


def _jump_extra(value: str) -> str | None:
    host = value.rsplit("@", 1)[-1]
    host, _, port = host.partition(":")
    if port and not 1 <= int(port) <= 65535:
        return f"port {port} is not between 1 and 65535"
    return _host_extra(host)


HOST = Grammar(
    "a DNS name or IPv4 address",
    "e.g. vpn.example.org or 203.0.113.7; IPv6 and ports do not go here",
    _DNS_RE,
    extra=_host_extra,
)
SLURM_HOSTNAME = Grammar(
    "a valid Slurm hostname",
    "lower-case letters, digits and '-', starting with a letter, at most 63 characters",
    re.compile(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"),
    max_len=63,
)
HOSTNAME_PREFIX = Grammar(
    "a node name prefix",
    "lower-case letters, digits and '-', starting with a letter (nodes are named PREFIX1..N)",
    re.compile(r"[a-z][a-z0-9-]{0,57}"),
    max_len=58,
)
SITE_NAME = Grammar(
    "a site name",
    "lower-case letters, digits, '-' or '_', starting with a letter, at most 31 characters",
    re.compile(r"[a-z][a-z0-9_-]{0,30}"),
    max_len=31,
)
CLUSTER_NAME = Grammar(
    "a cluster name",
    "1-20 lower-case letters and digits, starting with a letter (Slurm's ClusterName)",
    re.compile(r"[a-z][a-z0-9]{0,19}"),
    max_len=20,
)
REGISTRY = Grammar(
    "an image registry",
    "host[:port][/path], e.g. ghcr.io/my-lab or registry.local:5000",
    re.compile(rf"{_DOMAIN}(?:/{_PATH_COMPONENT})*/?"),
    empty_ok=True,
)
IMAGE_PATH = Grammar(
    "an image name prefix",
    "lower-case path components such as hpcstack or lab/hpc",
    re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"),
    max_len=200,
)
IMAGE_TAG = Grammar("an image tag", "e.g. 0.1.0", re.compile(_TAG), max_len=128)
IMAGE_REF = Grammar(
    "an image reference",
    "[registry/]name[:tag][@digest], e.g. debian:forky-slim",
    re.compile(
        rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?"
    ),
    max_len=255,
    empty_ok=True,
)
CIDR = Grammar(
    "an IPv4 network in CIDR form",
    "e.g. 10.99.0.0/16 (host bits zero)",
    re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}/[0-9]{1,2}"),
    max_len=18,
    extra=_cidr_extra,
)
SSH_JUMP = Grammar(
    "an ssh jump host",
    "[user@]host[:port], e.g. admin@bastion.example.org:22",
    re.compile(rf"(?:{_USER}@)?{_LABEL}(?:\.{_LABEL})*(?::[0-9]{{1,5}})?"),
    max_len=300,
    extra=_jump_extra,
)
POSIX_USER = Grammar("a user name", "e.g. admin", re.compile(_USER), max_len=32)
DURATION = Grammar("a duration", "e.g. 30s, 5m, 15d", re.compile(r"[1-9][0-9]{0,5}[smhdwy]"), 7)
RELEASE = Grammar("a Slurm release", "e.g. 26.05", re.compile(r"[0-9]{2}\.[0-9]{2}"), 5)
GRES_TYPE = Grammar("a GPU type", "e.g. a100", re.compile(r"[a-z0-9][a-z0-9_-]{0,30}"), max_len=31)
FEATURE = Grammar(
    "a Slurm feature", "letters, digits, '_', '.', '-'", re.compile(r"[A-Za-z0-9_.-]{1,64}"), 64
)
AWS_REGION = Grammar(
    "an AWS region", "e.g. eu-west-1", re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]"), 32
)
AWS_ZONE = Grammar(
    "an AWS availability zone",
    "e.g. eu-west-1a, or empty for the first one",
    re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9][a-z]"),
    max_len=32,
    empty_ok=True,
)
EMAIL = Grammar(
    "an email address",
    "e.g. lab-admin@example.org, or empty for no budget alarm",
    re.compile(rf"[A-Za-z0-9._%+-]{{1,64}}@{_LABEL}(?:\.{_LABEL})+"),
    max_len=254,
    empty_ok=True,
)
INSTANCE_TYPE = Grammar(
    "an EC2 instance type", "e.g. t3.medium", re.compile(r"[a-z][a-z0-9-]*\.[a-z0-9-]+"), 64
)
AWS_KEY_NAME = Grammar(
    "an EC2 key pair name",
    "letters, digits, spaces and ._-:/@+=,()#",
    re.compile(r"[A-Za-z0-9 ._:/@+=,()#-]+"),
    max_len=255,
    empty_ok=True,
)
ABS_PATH = Grammar(
    "an absolute path",
    "e.g. /data/imagenet",
    re.compile(r"/[A-Za-z0-9._@+/-]*"),
    max_len=1024,
)
LAB_NAME = Grammar(
    "a lab user, group or account name",
    "lower-case letters, digits, '-' or '_', starting with a letter, at most 32 characters",
    re.compile(r"[a-z][a-z0-9_-]{0,31}"),
    max_len=32,
)
SSH_PUBLIC_KEY = Grammar(
    "an OpenSSH public key line",
    "TYPE BASE64 [comment], e.g. ssh-ed25519 AAAAC3Nza... alice@laptop (one key per entry)",
    re.compile(r"[a-z0-9@.-]{1,64} [A-Za-z0-9+/]{16,}={0,3}(?: [^\"'\\$`]{0,200})?"),
    max_len=16384,
)
TEXT = Grammar(
    "plain text",
    "printable characters without quotes, backslash, '$' or backtick",
    re.compile(r"[^\"'\\$`]*"),
    max_len=256,
)

# Field path ([*] for any list index) -> its grammar, and where the value lands.
FIELDS: dict[str, tuple[Grammar, str]] = {
    "cluster.name": (CLUSTER_NAME, "slurm.conf ClusterName, compose project and volume names"),
    "cluster.slurm_release": (RELEASE, "the Dockerfiles"),
    "controller.site": (SITE_NAME, "file names and compose"),
    "images.registry": (REGISTRY, "every compose image: and terraform.tfvars.json"),
    "images.prefix": (IMAGE_PATH, "every compose image:"),
    "images.tag": (IMAGE_TAG, "every compose image:"),
    "images.base": (IMAGE_REF, "the Dockerfiles' FROM and compose build args"),
    "tunnel.subnet": (CIDR, "WireGuard configs and compose environment"),
    "tunnel.endpoint": (HOST, "WireGuard Endpoint lines and the ssh client's HostName"),
    "tunnel.ssh_jump": (SSH_JUMP, "the ssh client config's ProxyJump"),
    "monitoring.retention": (DURATION, "the Prometheus command line"),
    "monitoring.scrape_interval": (DURATION, "prometheus.yml"),
    "sites[*].name": (SITE_NAME, "file names, compose projects, slurm.conf partitions"),
    "sites[*].subnet": (CIDR, "compose networks"),
    "sites[*].overlay": (CIDR, "WireGuard configs"),
    "sites[*].nodes[*].name": (SLURM_HOSTNAME, "slurm.conf, compose and WireGuard configs"),
    "sites[*].nodes[*].prefix": (HOSTNAME_PREFIX, "node names"),
    "sites[*].nodes[*].gpu_type": (GRES_TYPE, "gres.conf and slurmd --conf"),
    "sites[*].nodes[*].features[*]": (FEATURE, "slurmd --conf Feature="),
    "sites[*].mounts[*].source": (ABS_PATH, "compose bind mounts"),
    "sites[*].mounts[*].target": (ABS_PATH, "compose bind mounts"),
    "storage.mount_roots[*]": (ABS_PATH, "checks only (where mounts may come from)"),
    "aws.region": (AWS_REGION, "terraform.tfvars.json"),
    "aws.vpc_cidr": (CIDR, "terraform.tfvars.json"),
    "aws.public_subnet_cidr": (CIDR, "terraform.tfvars.json"),
    "aws.private_subnet_cidr": (CIDR, "terraform.tfvars.json"),
    "aws.availability_zone": (AWS_ZONE, "terraform.tfvars.json"),
    "aws.trusted_cidrs[*]": (CIDR, "terraform.tfvars.json (security groups)"),
    "aws.local_site_cidrs[*]": (CIDR, "terraform.tfvars.json (security groups)"),
    "aws.controller_instance_type": (INSTANCE_TYPE, "terraform.tfvars.json"),
    "aws.bastion_instance_type": (INSTANCE_TYPE, "terraform.tfvars.json"),
    "aws.key_name": (AWS_KEY_NAME, "terraform.tfvars.json"),
    "aws.ssh_user": (POSIX_USER, "terraform.tfvars.json and ssh commands"),
    "aws.budget_email": (EMAIL, "terraform.tfvars.json (budget alarm)"),
    "groups[*].name": (LAB_NAME, "users/users.tsv (groupadd on every host)"),
    "users[*].name": (LAB_NAME, "users/users.tsv, authorized keys, sacctmgr"),
    "users[*].groups[*]": (LAB_NAME, "users/users.tsv"),
    "users[*].ssh_keys[*]": (SSH_PUBLIC_KEY, "the login service's authorized_keys"),
    "users[*].account": (LAB_NAME, "sacctmgr"),
    "accounts[*].name": (LAB_NAME, "sacctmgr and the account's QOS name"),
}
_INDEX_RE = re.compile(r"\[\d+\]")


def grammar_for(path: str) -> tuple[Grammar, str]:
    """The grammar of a dotted path such as `sites[2].nodes[0].name` (TEXT when not listed)."""
    return FIELDS.get(_INDEX_RE.sub("[*]", path), (TEXT, "generated files"))


def string_fields(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every string value of a model, with its dotted path."""
    for name in type(model).model_fields:
        path = f"{prefix}.{name}" if prefix else name
        yield from _strings(getattr(model, name), path)


def _strings(value: object, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, BaseModel):
        yield from string_fields(value, path)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value
