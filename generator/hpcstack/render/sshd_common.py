"""What the two sshd configs share: ssh/sshd_config (the cloud site's, for reverse tunnels,
render/ssh.py) and users/sshd_config (the login service's, render/users.py)."""

from __future__ import annotations

from collections.abc import Iterable

# Public keys only: every other way in is off, and root never logs in.
KEY_ONLY = (
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "HostbasedAuthentication no",
    "PermitEmptyPasswords no",
    "PermitRootLogin no",
    "UsePAM no",
)


def config_text(lines: Iterable[str]) -> str:
    """A config file's text: one line each, ending in a newline."""
    return "".join(f"{line}\n" for line in lines)
