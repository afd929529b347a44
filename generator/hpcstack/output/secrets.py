"""Per-cluster secrets under <output>/secrets: made once, never overwritten, never logged.

Layout (the directory is 0700):
  munge.key                 1 KiB random, 0400
  db_password               0600
  jwt_hs256.key             32 random bytes, 0400: the HS256 key REST tokens are signed with
  grafana_admin_password    0440 (when Grafana is on; read by Grafana's gid 0)
  wireguard/<peer>.key      WireGuard private key, 0600
  wireguard/pub/<peer>.pub  its public key (not secret; containers read them all)
  ssh/host_ed25519_key      ssh mode: the cloud sshd's host key (OpenSSH format), 0600
  ssh/<site>.key            ssh mode: a local site's client key (OpenSSH format), 0600
  ssh/pub/<site>.pub        its public key; ssh/pub/known_hosts pins the sshd's host key
"""

from __future__ import annotations

import base64
import os
import secrets as pysecrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_ssh_private_key,
)

from hpcstack.contract import SSH_HOST_ALIAS
from hpcstack.errors import OutputError
from hpcstack.output.atomic import write_all, write_atomic
from hpcstack.plan.topology import Plan
from hpcstack.plan.tunnel import peer_names, site_peer_names, ssh_mode

MUNGE_KEY_BYTES = 1024
JWT_KEY_BYTES = 32  # HS256: a key as long as the hash (Slurm's jwt guide makes 32 bytes)
JWT_KEY_FILE = "jwt_hs256.key"


@dataclass(frozen=True)
class SecretFile:
    path: Path
    status: str  # "created" | "kept"


def wireguard_keypair() -> tuple[str, str]:
    key = X25519PrivateKey.generate()
    priv = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(priv).decode(), base64.b64encode(pub).decode()


def wireguard_public(private_b64: str) -> str:
    raw = base64.b64decode(private_b64.strip(), validate=True)
    key = X25519PrivateKey.from_private_bytes(raw)
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


# The smallest kept secret that can be right: munged refuses a key under 32 bytes.
MIN_BYTES = {"munge.key": 32}


def damaged(path: Path, what: str, why: object) -> OutputError:
    """A kept secret that cannot be what it should be: said with its path, never replaced."""
    return OutputError(
        f"{path} is not a usable {what} ({why}). Secrets are never overwritten: restore it from "
        f"your backup, or delete it and run `hpcstack generate` again to make a new one (every "
        f"host that uses it then needs the new one: `hpcstack secrets export`)"
    )


def kept_wireguard_public(path: Path) -> str:
    try:
        return wireguard_public(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:  # binascii.Error is a ValueError
        raise damaged(path, "WireGuard private key", exc) from None


def kept_ssh_public(path: Path) -> str:
    try:
        return ssh_public(path.read_bytes())
    except (ValueError, TypeError) as exc:  # not an unencrypted OpenSSH private key
        raise damaged(path, "OpenSSH private key", exc) from None


def check_kept(path: Path, rel: str) -> None:
    size, least = path.stat().st_size, MIN_BYTES.get(rel, 1)
    if size < least:
        raise damaged(path, "secret", f"{size} bytes, at least {least} bytes needed")


def ssh_private_key() -> bytes:
    """A new ed25519 key in OpenSSH's own private key format (what ssh and sshd read)."""
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())


def ssh_public(private_pem: bytes) -> str:
    """`ssh-ed25519 AAAA...` for an OpenSSH private key."""
    key = load_ssh_private_key(private_pem, password=None)
    return key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


def _password() -> bytes:
    return pysecrets.token_urlsafe(32).encode()


def required_secrets(plan: Plan) -> dict[str, tuple[Callable[[], bytes], int]]:
    """Relative path -> (maker, mode) for every secret this plan needs, except WireGuard."""
    need: dict[str, tuple[Callable[[], bytes], int]] = {
        "munge.key": (lambda: os.urandom(MUNGE_KEY_BYTES), 0o400),
        "db_password": (_password, 0o600),
        # Only slurmctld and slurmdbd read it (compose secrets): they check every REST token.
        JWT_KEY_FILE: (lambda: os.urandom(JWT_KEY_BYTES), 0o400),
    }
    if plan.stack.monitoring.enabled and plan.stack.monitoring.grafana:
        # Grafana runs as uid 472, gid 0 in its image and reads the bind-mounted file through its
        # group; the secrets directory itself stays 0700.
        need["grafana_admin_password"] = (_password, 0o440)
    return need


def ensure_secrets(out_dir: Path, plan: Plan, dry_run: bool = False) -> list[SecretFile]:
    root = out_dir / "secrets"
    result: list[SecretFile] = []
    if root.exists() and not root.is_dir():
        raise OutputError(f"{root} exists and is not a directory")
    if dry_run:
        for rel in required_secrets(plan):
            p = root / rel
            if p.exists():
                check_kept(p, rel)
            result.append(SecretFile(p, "kept" if p.exists() else "created"))
        verify_keys(root, plan)
        return result
    root.mkdir(mode=0o700, exist_ok=True)
    os.chmod(root, 0o700)
    for rel, (make, mode) in sorted(required_secrets(plan).items()):
        path = root / rel
        created = not path.exists() and write_atomic(path, make(), mode, exclusive=True)
        if not created:
            check_kept(path, rel)
        result.append(SecretFile(path, "created" if created else "kept"))
    result.extend(_ensure_wireguard_keys(root, peer_names(plan)))
    if ssh_mode(plan):
        result.extend(_ensure_ssh_keys(root, plan))
    return result


def verify_keys(root: Path, plan: Plan, rels: list[str] | None = None) -> None:
    """Every key pair already under `root` (or those of `rels`) is readable: checked before
    `generate` writes anything, so a damaged key stops it with nothing half-written."""
    if rels is None:
        rels = [f"wireguard/{peer}.key" for peer in peer_names(plan)]
        if ssh_mode(plan):
            rels += ["ssh/host_ed25519_key", *(f"ssh/{s.name}.key" for s in plan.tunneled_sites)]
    for rel in rels:
        path = root / rel
        if path.is_file() and rel.startswith("wireguard/") and not rel.startswith("wireguard/pub"):
            kept_wireguard_public(path)
        elif path.is_file() and rel.startswith(("ssh/", "users/")) and rel.endswith("key"):
            kept_ssh_public(path)


def write_public(path: Path, text: str) -> None:
    """A derived, non-secret file: kept in step with its private key."""
    if _differs(path, text):
        write_atomic(path, text.encode(), 0o644)


def _ensure_ssh_key(path: Path) -> tuple[SecretFile, str]:
    created = not path.exists() and write_atomic(path, ssh_private_key(), 0o600, exclusive=True)
    return SecretFile(path, "created" if created else "kept"), kept_ssh_public(path)


def _ensure_ssh_keys(root: Path, plan: Plan) -> list[SecretFile]:
    """The sshd host key (pinned in known_hosts) and one client key per tunneled site."""
    ssh = root / "ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    host, host_pub = _ensure_ssh_key(ssh / "host_ed25519_key")
    write_public(ssh / "pub" / "known_hosts", f"{SSH_HOST_ALIAS} {host_pub}\n")
    out = [host]
    for site in plan.tunneled_sites:
        key, pub = _ensure_ssh_key(ssh / f"{site.name}.key")
        write_public(ssh / "pub" / f"{site.name}.pub", f"{pub} hpcstack-{site.name}\n")
        out.append(key)
    return out


def _ensure_wireguard_keys(root: Path, peers: list[str]) -> list[SecretFile]:
    """A key pair per peer, made where none is (a thousand at once for a large cluster: written
    with one flush, see atomic.write_all); each public key kept in step with its private key."""
    keys = root / "wireguard"
    paths = {peer: keys / f"{peer}.key" for peer in peers}
    fresh = [peer for peer, path in paths.items() if not path.exists()]
    pairs = {peer: wireguard_keypair() for peer in fresh}
    written = write_all(
        [(paths[peer], (pairs[peer][0] + "\n").encode(), 0o600) for peer in fresh], exclusive=True
    )
    # peer -> public key, for each key made now (one another run made meanwhile is kept)
    made = {peer: pairs[peer][1] for peer, ok in zip(fresh, written, strict=True) if ok}
    # The public key is derived, not user data: keep it in step with the private key.
    write_publics(
        [
            (
                keys / "pub" / f"{peer}.pub",
                (made.get(peer) or kept_wireguard_public(path)) + "\n",
            )
            for peer, path in paths.items()
        ]
    )
    return [SecretFile(path, "created" if peer in made else "kept") for peer, path in paths.items()]


def write_publics(files: list[tuple[Path, str]]) -> None:
    """`write_public` for many files, with one flush for those that change."""
    stale = [(path, text.encode(), 0o644) for path, text in files if _differs(path, text)]
    write_all(stale)


def _differs(path: Path, text: str) -> bool:
    return not path.exists() or path.read_text() != text


# --- a workstation's share ---------------------------------------------------------------------
# A workstation receives only what its site's containers use; `secrets export --site` packs it on
# the controller host, `secrets import` unpacks it there, and IMPORTED_MARK records the site so
# that `generate` on that host never makes cluster-wide secrets of its own.
IMPORTED_MARK = "imported-site"


def site_secret_files(plan: Plan, site: str) -> list[str]:
    """Paths (relative to secrets/) a site's host needs: the munge key, its peers' WireGuard
    keys (nodes, exporters) and the hub's public key, or its ssh client key and the pinned
    host key."""
    target = next((s for s in plan.tunneled_sites if s.name == site), None)
    if target is None:
        local = ", ".join(s.name for s in plan.tunneled_sites) or "none"
        raise OutputError(
            f"site {site!r} is not a local (tunneled) site of this definition (local sites: "
            f"{local}); the controller's own secrets never leave the controller host"
        )
    files = ["munge.key"]
    if ssh_mode(plan):
        files += [f"ssh/{site}.key", f"ssh/pub/{site}.pub", "ssh/pub/known_hosts"]
    else:
        files.append("wireguard/pub/hub.pub")
        for peer in site_peer_names(plan, target):
            files += [f"wireguard/{peer}.key", f"wireguard/pub/{peer}.pub"]
    return files


def imported_site(out_dir: Path) -> str | None:
    """The site whose secrets were imported here from the controller, if any."""
    mark = out_dir / "secrets" / IMPORTED_MARK
    return mark.read_text().strip() or None if mark.exists() else None


def missing_site_secrets(root: Path, plan: Plan, site: str) -> tuple[list[str], list[str]]:
    """(what site `site` needs from secrets/, what of it is not under `root`)."""
    need = site_secret_files(plan, site)
    return need, [rel for rel in need if not (root / rel).is_file()]


def check_site_secrets(out_dir: Path, plan: Plan, site: str) -> list[SecretFile]:
    """A workstation's generate: every file the site needs is here (none is ever made here)."""
    root = out_dir / "secrets"
    need, missing = missing_site_secrets(root, plan, site)
    verify_keys(root, plan, need)
    if missing:
        raise OutputError(
            f"secrets for site {site} are missing in {root}: {', '.join(missing)}. They come "
            f"from the controller host: there run `hpcstack secrets export --site {site} -o "
            f"{site}-secrets.tar`, copy the file here, run `hpcstack secrets import "
            f"{site}-secrets.tar`, then `hpcstack generate --site {site}` again"
        )
    return [SecretFile(root / rel, "kept") for rel in need]
