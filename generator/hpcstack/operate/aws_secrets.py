"""`hpcstack aws push-secrets` / `pull-secrets`: secrets through SSM Parameter Store, per site.

Each secret goes under the path of who needs it (render/terraform.py names the paths), so the
IAM policy of a site's hosts (terraform/aws/policies/<site>.json) can grant exactly that path
and the shared munge key: a GPU host can never read the hub's private key or the passwords.
Values are base64 (munge.key is binary); the description carries the file mode, so a 0400 key
comes back as 0400.
"""

from __future__ import annotations

import base64
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from hpcstack.errors import OutputError, StateError
from hpcstack.operate.bundle import SECRET_MODES, secret_mode, site, site_secrets
from hpcstack.output.atomic import write_atomic
from hpcstack.plan.topology import Plan
from hpcstack.render.terraform import (
    SHARED_SECRETS,
    controller_path,
    kms_alias,
    shared_path,
    site_path,
)
from hpcstack.run.aws import Aws, AwsNotFoundError, SecretParameter

_SSM_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/")


@dataclass(frozen=True)
class Pushed:
    rel: str  # relative to secrets/
    name: str  # the SSM parameter


def _secret_files(secrets_dir: Path) -> list[str]:
    if not secrets_dir.is_dir():
        raise StateError(f"{secrets_dir} does not exist: run `hpcstack generate` first")
    return sorted(
        p.relative_to(secrets_dir).as_posix()
        for p in secrets_dir.rglob("*")
        if p.is_file() and not p.is_symlink() and not p.name.startswith(".")
    )


def _check_name(rel: str) -> str:
    if not set(rel) <= _SSM_NAME_CHARS:
        raise StateError(f"secrets/{rel}: SSM names allow only letters, digits and _.-/")
    return rel


def parameter_names(plan: Plan, out_dir: Path) -> list[Pushed]:
    """Where each secret of secrets/ goes: shared, one site's path, or the controller's."""
    present = _secret_files(out_dir / "secrets")
    cluster = plan.cluster
    placed: list[Pushed] = []
    claimed: set[str] = set()
    for rel in present:
        if rel in SHARED_SECRETS:
            placed.append(Pushed(rel, f"{shared_path(cluster)}/{rel}"))
            claimed.add(rel)
    for s in plan.sites:
        if s.is_controller:
            continue
        for rel in site_secrets(plan, s, out_dir):
            if rel not in SHARED_SECRETS:
                placed.append(Pushed(rel, f"{site_path(cluster, s.name)}/{_check_name(rel)}"))
                claimed.add(rel)
    # Everything else (hub key, database and Grafana passwords, sshd host key) is the
    # controller's: kept for the administrator, readable by no site's policy.
    for rel in present:
        if rel not in SHARED_SECRETS and (
            rel not in claimed or rel in site_secrets(plan, plan.controller, out_dir)
        ):
            placed.append(Pushed(rel, f"{controller_path(cluster)}/{_check_name(rel)}"))
    return sorted(placed, key=lambda p: p.name)


def push_secrets(aws: Aws, plan: Plan, out_dir: Path) -> list[Pushed]:
    """Store the secrets as SecureStrings under their per-site paths."""
    secrets_dir = out_dir / "secrets"
    key_id = kms_alias(plan.cluster) if plan.stack.aws.secrets_kms_key else None
    placed = parameter_names(plan, out_dir)
    for item in placed:
        path = secrets_dir / item.rel
        value = base64.b64encode(path.read_bytes()).decode("ascii")
        mode = secret_mode(path)
        aws.put_secret(item.name, value, f"hpcstack mode={mode:o}", key_id=key_id)
    return placed


def _mode_from(description: str) -> int:
    for word in description.split():
        if word.startswith("mode="):
            try:
                mode = int(word.removeprefix("mode="), 8)
            except ValueError:
                break
            return mode if mode in SECRET_MODES else 0o600
    return 0o600


def _fetch(aws: Aws, plan: Plan, site_name: str) -> list[tuple[str, SecretParameter]]:
    """(relative path, parameter) for what this site may read: its path and the shared key."""
    own = controller_path(plan.cluster) if site(plan, site_name).is_controller else None
    own = own or site_path(plan.cluster, site_name)
    found = [(p.name.removeprefix(own + "/"), p) for p in aws.secrets_under(own)]
    for rel in SHARED_SECRETS:
        try:
            found.append((rel, aws.secret(f"{shared_path(plan.cluster)}/{rel}")))
        except AwsNotFoundError:
            continue
    return sorted(found, key=lambda item: item[0])


def pull_secrets(
    aws: Aws,
    plan: Plan,
    out_dir: Path,
    site_name: str,
    only: Iterable[str] = (),
    force: bool = False,
) -> list[tuple[str, str]]:
    """Write one site's secrets into secrets/. Returns (path, created|unchanged|updated)."""
    secrets_dir = out_dir / "secrets"
    params = _fetch(aws, plan, site_name)
    if not params:
        raise StateError(
            f"no secrets for site {site_name!r} under {plan.stack.aws.region}'s "
            f"/hpcstack/{plan.cluster}/: run `hpcstack aws push-secrets` where the secrets "
            "were generated"
        )
    patterns = list(only)
    selected = [
        (rel, base64.b64decode(p.value), _mode_from(p.description))
        for rel, p in params
        if not patterns or any(fnmatch.fnmatch(rel, pat) for pat in patterns)
    ]
    conflicts = [rel for rel, data, _ in selected if _differs(secrets_dir / rel, data)]
    if conflicts and not force:
        raise OutputError(
            "these secrets differ from the ones in AWS and were left alone: "
            + ", ".join(conflicts)
            + " (pass --force to overwrite them)"
        )
    return [(rel, _write_secret(secrets_dir, rel, data, mode)) for rel, data, mode in selected]


def _differs(path: Path, data: bytes) -> bool:
    return path.exists() and path.read_bytes() != data


def _write_secret(secrets_dir: Path, rel: str, data: bytes, mode: int) -> str:
    target = secrets_dir / PurePosixPath(rel)
    if not target.resolve().is_relative_to(secrets_dir.resolve()) or ".." in rel.split("/"):
        raise StateError(f"refusing to write {rel}: outside {secrets_dir}")
    secrets_dir.parent.mkdir(parents=True, exist_ok=True)
    for d in [secrets_dir, *(secrets_dir / p for p in reversed(PurePosixPath(rel).parents))]:
        d.mkdir(mode=0o700, exist_ok=True)
    if target.exists():
        if target.read_bytes() == data:
            target.chmod(mode)
            return "unchanged"
        verb = "updated"
    else:
        verb = "created"
    write_atomic(target, data, mode)
    return verb
