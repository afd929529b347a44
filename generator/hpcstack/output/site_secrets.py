"""Moving a site's share of the secrets: a tar archive made on the controller host, unpacked on
the workstation. Only regular files under the names `site_secret_files` lists travel; import
never overwrites a different file (the controller's copy and this host's must agree)."""

from __future__ import annotations

import io
import os
import re
import tarfile
from collections.abc import Callable
from pathlib import Path

from hpcstack.errors import OutputError
from hpcstack.output.atomic import write_atomic
from hpcstack.output.secrets import IMPORTED_MARK, missing_site_secrets
from hpcstack.plan.topology import Plan


def export_site(out_dir: Path, plan: Plan, site: str, archive: Path) -> list[str]:
    """Write `archive` (0600) with the site's files; returns the names packed."""
    root = out_dir / "secrets"
    files, missing = missing_site_secrets(root, plan, site)
    if missing:
        raise OutputError(
            f"{root} lacks {', '.join(missing)}: run `hpcstack generate` on this (the "
            "controller) host first"
        )
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for rel in [*files, IMPORTED_MARK]:
            data = site.encode() + b"\n" if rel == IMPORTED_MARK else (root / rel).read_bytes()
            mode = 0o644 if "/pub/" in f"/{rel}" or rel == IMPORTED_MARK else 0o600
            if rel == "munge.key":
                mode = 0o400
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(info, io.BytesIO(data))
    write_atomic(archive, buf.getvalue(), 0o600)
    return files


def import_site(out_dir: Path, archive: Path) -> tuple[str, list[str]]:
    """Unpack a site's archive into out_dir/secrets; returns (site, files written or same)."""
    site, contents = _read_archive(archive)
    root = out_dir / "secrets"
    conflicts = [
        rel
        for rel, (data, _) in contents.items()
        if (root / rel).exists() and (root / rel).read_bytes() != data
    ]
    if conflicts:
        raise OutputError(
            f"{root} already holds different {', '.join(sorted(conflicts))}: this host's secrets "
            "do not match the controller's (made here by an earlier `generate`?). Move "
            f"{root} away and import again; nothing was changed"
        )
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    for sub in ("wireguard", "ssh"):
        if any(rel.startswith(f"{sub}/") for rel in contents):
            (root / sub).mkdir(mode=0o700, exist_ok=True)
    for rel, (data, mode) in sorted(contents.items()):
        path = root / rel
        if not path.exists():
            write_atomic(path, data, mode, exclusive=True)
    return site, sorted(r for r in contents if r != IMPORTED_MARK)


def _read_archive(archive: Path) -> tuple[str, dict[str, tuple[bytes, int]]]:
    """The site named in the archive and its files (name -> (bytes, mode)), all checked."""
    try:
        with tarfile.open(archive, mode="r") as tar:
            members = tar.getmembers()
            by_name = {m.name: m for m in members}
            if IMPORTED_MARK not in by_name:
                raise OutputError(f"{archive}: no {IMPORTED_MARK} entry: not from `secrets export`")
            site = _read(tar, by_name[IMPORTED_MARK]).decode().strip()
            allowed = _allowed(site)
            bad = [m.name for m in members if not m.isfile() or not allowed(m.name)]
            if bad:
                raise OutputError(
                    f"{archive}: unexpected entries {', '.join(bad)}; nothing imported"
                )
            return site, {m.name: (_read(tar, m), m.mode & 0o777) for m in members}
    except (OSError, tarfile.TarError) as exc:
        raise OutputError(f"{archive}: not a secrets archive ({exc})") from None


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    f = tar.extractfile(member)
    if f is None:
        raise OutputError(f"{member.name}: not a regular file")
    return f.read()


def _allowed(site: str) -> Callable[[str], bool]:
    """Names an archive for `site` may hold: no paths outside secrets/, nothing cluster-wide."""
    name = r"[a-z0-9][a-z0-9_-]*"
    pattern = re.compile(
        rf"^(munge\.key|{IMPORTED_MARK}|wireguard/(?!hub\.key){name}\.key|wireguard/pub/{name}\.pub"
        rf"|ssh/{re.escape(site)}\.key|ssh/pub/{re.escape(site)}\.pub|ssh/pub/known_hosts)$"
    )
    return lambda rel: bool(pattern.match(rel))
