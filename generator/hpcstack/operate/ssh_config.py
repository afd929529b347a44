"""`hpcstack ssh-config`: an ~/.ssh/config block for the bastion and the controller behind it."""

from __future__ import annotations

from pathlib import Path

from hpcstack.contract import LAB_JUMP_USER
from hpcstack.run.ssh import Endpoint


def ssh_config_text(
    cluster: str,
    user: str,
    bastion: Endpoint,
    controller: Endpoint,
    identity: Path | None,
    known_hosts: Path,
) -> str:
    """The bastion, and the controller reached through it (ProxyJump); pinned host keys only."""

    def common() -> list[str]:
        return [f"  User {user}", *_key_only(identity, known_hosts)]

    lines = [
        f"# hpc-stack cluster {cluster}: written by `hpcstack ssh-config`",
        f"Host {cluster}-bastion",
        f"  HostName {bastion.host}",
        f"  Port {bastion.port}",
        *common(),
        "",
        f"Host {cluster}-controller",
        f"  HostName {controller.host}",
        f"  Port {controller.port}",
        f"  ProxyJump {cluster}-bastion",
        *common(),
    ]
    return "\n".join(lines) + "\n"


def lab_user_entries(
    cluster: str,
    users: list[tuple[str, Path | None]],
    host: str,
    port: int,
    known_hosts: Path,
    jump: tuple[Endpoint, Path] | None = None,
) -> str:
    """One `Host <cluster>-<user>` entry per lab member for the login service: key only, its
    host key pinned (secrets/users/pub/login_known_hosts), and on AWS through the bastion:
    `jump` is the bastion and the known_hosts file pinning it. There each member has a jump
    entry of their own, as the bastion's forward-only account (LAB_JUMP_USER) with their key.
    `users` pairs a name with the key file hpcstack made for them, if any."""
    lines = [f"# hpc-stack cluster {cluster}: the login service, one entry per lab member"]
    for name, identity in users:
        if jump is not None:
            bastion, pinned = jump
            lines += [
                f"Host {cluster}-{name}-jump",
                f"  HostName {bastion.host}",
                f"  Port {bastion.port}",
                f"  User {LAB_JUMP_USER}",
                *_key_only(identity, pinned),
                "",
            ]
        lines += [
            f"Host {cluster}-{name}",
            f"  HostName {host}",
            f"  Port {port}",
            f"  User {name}",
            f"  HostKeyAlias {cluster}-login",
        ]
        if jump is not None:
            lines.append(f"  ProxyJump {cluster}-{name}-jump")
        lines += [*_key_only(identity, known_hosts), ""]
    return "\n".join(lines)


def _key_only(identity: Path | None, known_hosts: Path) -> list[str]:
    """The lines every entry shares: this key only (where given), the pinned host keys, no
    password or keyboard-interactive fallback."""
    lines = [f"  IdentityFile {identity}", "  IdentitiesOnly yes"] if identity is not None else []
    return [
        *lines,
        f"  UserKnownHostsFile {known_hosts}",
        "  StrictHostKeyChecking yes",
        "  PasswordAuthentication no",
        "  KbdInteractiveAuthentication no",
    ]


def login_known_hosts_line(cluster: str, public_key: str) -> str:
    """The known_hosts line for HostKeyAlias <cluster>-login."""
    return f"{cluster}-login {' '.join(public_key.split()[:2])}\n"
