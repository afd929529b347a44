"""Meaning checks of `users:`, `groups:` and `accounts:` (lab members and Slurm accounting).

The uid/gid rules follow the slurm image's own /etc/passwd and /etc/group (Debian): ids under
1000 are system ids, 60000-64999 are Debian's per-package ids (slurm is 64030), 65534 is nobody;
uid 1000 is the image's demo user `hpc`, which a definition may list under that name only.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import struct
from collections.abc import Hashable, Iterable, Iterator

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from hpcstack.contract import METRICS_USER, REST_USER
from hpcstack.definition.grammar import LAB_NAME, SSH_PUBLIC_KEY
from hpcstack.definition.model import DEMO_UID, DEMO_USER, FIRST_LAB_UID, LAST_LAB_UID, Stack
from hpcstack.definition.registry import check
from hpcstack.errors import Problem

# Names the slurm image already has (users and groups): a lab user may not take one.
_USERS = "root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc _apt"
_USERS += f" nobody systemd-network munge slurm sshd tunnel {REST_USER} {METRICS_USER}"
_GROUPS = "adm tty disk kmem dialout fax voice cdrom floppy tape sudo audio dip operator src shadow"
_GROUPS += " utmp video sasl plugdev staff users nogroup lpadmin systemd-journal _ssh"
IMAGE_USERS = frozenset(_USERS.split())
IMAGE_GROUPS = IMAGE_USERS | frozenset(_GROUPS.split())
RESERVED_ACCOUNTS = frozenset({"root"})  # Slurm's own top account
MIN_RSA_BITS = 2048
ID_HINT = (
    f"lab ids are {FIRST_LAB_UID + 1}-{LAST_LAB_UID} ({DEMO_UID} is the image's '{DEMO_USER}')"
)


def _close(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    return f"did you mean {close[0]!r}?" if close else f"known: {', '.join(names) or 'none'}"


def _id_problem(value: int, name: str, what: str) -> str | None:
    if value == DEMO_UID:
        return None if name == DEMO_USER else f"{what} {value} is the image's '{DEMO_USER}' user"
    if not FIRST_LAB_UID <= value <= LAST_LAB_UID:
        return f"{what} {value} is reserved for the image's system users and packages"
    return None


# What no two users may share: the field, the message before "users[N]" and the hint.
_UNIQUE = {
    "name": (
        "user {!r} is already defined at",
        "one entry per person; give a second key in ssh_keys instead",
    ),
    "uid": (
        "uid {} is already used by",
        "every user needs their own uid (files on the shared filesystem carry it)",
    ),
}


def _repeats(values: Iterable[Hashable]) -> Iterator[tuple[int, int]]:
    """(i, first) for every value at index i that stood first at index `first` < i."""
    seen: dict[Hashable, int] = {}
    for i, value in enumerate(values):
        first = seen.setdefault(value, i)
        if first != i:
            yield i, first


@check
def user_names_and_ids_unique(stack: Stack) -> Iterator[Problem]:
    for field, (message, hint) in _UNIQUE.items():
        values = [getattr(user, field) for user in stack.users]
        for i, first in _repeats(values):
            yield Problem(
                f"users[{i}].{field}", f"{message.format(values[i])} users[{first}]", hint=hint
            )
    for i, user in enumerate(stack.users):
        if user.name in IMAGE_USERS:
            yield Problem(
                f"users[{i}].name",
                f"{user.name!r} is a system user of the slurm image",
                hint="choose another login name",
            )
        reason = _id_problem(user.uid, user.name, "uid")
        if reason:
            yield Problem(f"users[{i}].uid", reason, hint=ID_HINT)
        if user.name == DEMO_USER and user.uid != DEMO_UID:
            yield Problem(
                f"users[{i}].uid",
                f"'{DEMO_USER}' is the image's demo user: its uid is {DEMO_UID}",
                hint=f"write uid: {DEMO_UID}, or pick another name",
            )


@check
def groups_consistent(stack: Stack) -> Iterator[Problem]:
    """A gid names one group everywhere: supplementary groups and users' primary groups."""
    by_gid: dict[int, tuple[str, str]] = {}  # gid -> (group name, where)
    defined = [g.name for g in stack.groups]
    for i, group in enumerate(stack.groups):
        where = f"groups[{i}]"
        if group.name in IMAGE_GROUPS:
            yield Problem(f"{where}.name", f"{group.name!r} is a group of the slurm image")
        if defined.index(group.name) != i:
            yield Problem(f"{where}.name", f"group {group.name!r} is defined twice")
        reason = _id_problem(group.gid, "", "gid")
        if reason:
            yield Problem(f"{where}.gid", reason, hint=ID_HINT)
        elif group.gid in by_gid:
            yield Problem(f"{where}.gid", f"gid {group.gid} is already {by_gid[group.gid][1]}")
        by_gid.setdefault(group.gid, (group.name, where))
    for i, user in enumerate(stack.users):
        gid = user.primary_gid
        field = f"users[{i}].gid" if user.gid is not None else f"users[{i}].uid"
        if user.gid is not None and _id_problem(gid, user.name, "gid"):
            yield Problem(field, f"gid {gid} is reserved for the image's groups", hint=ID_HINT)
        owner = by_gid.get(gid)
        if owner and owner[0] != user.name:
            yield Problem(
                field,
                f"{user.name!r}'s primary group gid {gid} is already {owner[1]} ({owner[0]!r})",
                hint="give the user another gid, or the group another gid",
            )
        by_gid.setdefault(gid, (user.name, f"users[{i}]"))
        for j, member in enumerate(user.groups):
            if member not in defined:
                yield Problem(
                    f"users[{i}].groups[{j}]",
                    f"no group named {member!r} under groups:",
                    hint=_close(member, defined) + " (each group needs a gid under groups:)",
                )


@check
def users_in_known_accounts(stack: Stack) -> Iterator[Problem]:
    names = [a.name for a in stack.accounts]
    for i, account in enumerate(stack.accounts):
        if names.index(account.name) != i:
            yield Problem(f"accounts[{i}].name", f"account {account.name!r} is defined twice")
        if account.name in RESERVED_ACCOUNTS:
            yield Problem(
                f"accounts[{i}].name",
                f"{account.name!r} is Slurm's own top account",
                hint="choose another name, e.g. 'lab'",
            )
    for i, user in enumerate(stack.users):
        if user.account not in names:
            yield Problem(
                f"users[{i}].account",
                f"no account named {user.account!r}",
                hint=_close(user.account, names) + " (add it under accounts:)",
            )


@check
def account_limits_possible(stack: Stack) -> Iterator[Problem]:
    """A per-user limit the cluster can never reach is a typo, not a limit."""
    cpus = sum(n.cpus * n.count for s in stack.sites for n in s.nodes)
    gpus_known = all(not isinstance(n.gpus, str) for s in stack.sites for n in s.nodes)
    gpus = sum(
        n.count * (len(n.gpus) if isinstance(n.gpus, list) else int(n.gpus))
        for s in stack.sites
        for n in s.nodes
        if not isinstance(n.gpus, str)
    )
    for i, account in enumerate(stack.accounts):
        if account.max_cpus_per_user is not None and account.max_cpus_per_user > cpus:
            yield Problem(
                f"accounts[{i}].max_cpus_per_user",
                f"{account.max_cpus_per_user} CPUs per user is more than the cluster's {cpus}",
                hint=f"at most {cpus}, or leave it out for no limit",
            )
        limit = account.max_gpus_per_user
        if limit is not None and gpus_known and limit > gpus:
            yield Problem(
                f"accounts[{i}].max_gpus_per_user",
                f"{limit} GPUs per user is more than the cluster's {gpus}",
                hint=f"at most {gpus} (0 forbids GPUs), or leave it out for no limit",
            )


def key_problem(line: str) -> str | None:
    """Why `line` is not a usable OpenSSH public key (None when it is)."""
    parts = line.split()
    if len(parts) < 2:
        return "is not 'TYPE BASE64 [comment]'"
    kind, blob = parts[0], parts[1]
    try:
        raw = base64.b64decode(blob, validate=True)
        (length,) = struct.unpack(">I", raw[:4])
        inner = raw[4 : 4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError):
        return "has a key body that is not valid base64 of an SSH key"
    if inner != kind:
        return f"says {kind!r} but its body is a {inner!r} key"
    if kind == "ssh-dss":
        return "is a DSA key, which OpenSSH no longer accepts"
    if kind.startswith("sk-"):
        return None  # security-key types: the body's type matches; OpenSSH checks the rest
    try:
        key = load_ssh_public_key(f"{kind} {blob}".encode())
    except (ValueError, UnsupportedAlgorithm) as exc:
        return f"cannot be read as a {kind} key ({exc})"
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        return f"is a {key.key_size}-bit RSA key; OpenSSH refuses RSA under {MIN_RSA_BITS} bits"
    return None


@check
def ssh_keys_valid(stack: Stack) -> Iterator[Problem]:
    owners: dict[str, str] = {}
    for i, user in enumerate(stack.users):
        for j, line in enumerate(user.ssh_keys):
            path = f"users[{i}].ssh_keys[{j}]"
            if SSH_PUBLIC_KEY.refuse(line) or LAB_NAME.refuse(user.name):
                continue  # the grammar check reports it
            reason = key_problem(line)
            if reason:
                yield Problem(
                    path,
                    f"this public key {reason}",
                    hint="paste one line of ~/.ssh/id_ed25519.pub (ssh-keygen -t ed25519)",
                )
                continue
            body = line.split()[1]
            if body in owners and owners[body] != user.name:
                yield Problem(
                    path,
                    f"the same key is already {owners[body]!r}'s",
                    hint="each person logs in with their own key",
                )
            owners.setdefault(body, user.name)
