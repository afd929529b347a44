"""The lab users' share of secrets/ (made once, never overwritten):

users/login_host_ed25519_key   the login service's sshd host key (OpenSSH format), 0400
users/pub/login_known_hosts    its public key, for `hpcstack ssh-config` (not secret)
users/<name>.key               a key pair for a user whose `ssh_keys` is empty, 0600: hand it
                               to that person (`ssh -i secrets/users/<name>.key`)
users/pub/<name>.pub           its public key; the login service reads users/pub/
"""

from __future__ import annotations

from pathlib import Path

from hpcstack.output.atomic import write_atomic
from hpcstack.output.secrets import kept_ssh_public, ssh_private_key, verify_keys, write_public
from hpcstack.plan.topology import Plan
from hpcstack.render.users import generated_key_users

LOGIN_HOST_KEY = "users/login_host_ed25519_key"
LOGIN_KNOWN_HOSTS = "users/pub/login_known_hosts"


def user_key(name: str) -> str:
    return f"users/{name}.key"


def ensure_user_secrets(root: Path, plan: Plan) -> list[tuple[Path, bool]]:
    """(path, created) for the login host key and each generated user key."""
    users = root / "users"
    users.mkdir(mode=0o700, exist_ok=True)
    out: list[tuple[Path, bool]] = []

    def ensure(rel: str, mode: int) -> str:
        path = root / rel
        created = not path.exists() and write_atomic(path, ssh_private_key(), mode, exclusive=True)
        out.append((path, bool(created)))
        return kept_ssh_public(path)

    if plan.stack.login.enabled:
        pub = ensure(LOGIN_HOST_KEY, 0o400)
        write_public(root / LOGIN_KNOWN_HOSTS, f"{pub}\n")
    for name in generated_key_users(plan.stack):
        pub = ensure(user_key(name), 0o600)
        write_public(root / "users" / "pub" / f"{name}.pub", f"{pub} {name}@hpcstack\n")
    return out


def verify_user_keys(root: Path, plan: Plan) -> None:
    """The login host key and generated user keys already here are readable (before any write)."""
    rels = [LOGIN_HOST_KEY] if plan.stack.login.enabled else []
    verify_keys(root, plan, rels + [user_key(name) for name in generated_key_users(plan.stack)])
