"""`hpcstack ssh-config`: an ~/.ssh/config block for the bastion and the controller behind it."""

from __future__ import annotations

from pathlib import Path

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
        lines = [f"  User {user}"]
        if identity is not None:
            lines += [f"  IdentityFile {identity}", "  IdentitiesOnly yes"]
        lines += [
            f"  UserKnownHostsFile {known_hosts}",
            "  StrictHostKeyChecking yes",
            "  PasswordAuthentication no",
            "  KbdInteractiveAuthentication no",
        ]
        return lines

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
