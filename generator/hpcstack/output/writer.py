"""Write rendered artifacts into an output directory: all or nothing, never over user edits.

`.hpcstack/manifest.json` records the hash of every file the generator last wrote. A file whose
content differs both from the new output and from that hash was edited by someone: generation
stops (nothing written) unless forced. Files are staged and then renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from hpcstack.errors import OutputError
from hpcstack.output.atomic import stage_all
from hpcstack.render import Artifact

STATE_DIR = ".hpcstack"
MANIFEST = f"{STATE_DIR}/manifest.json"


@dataclass(frozen=True)
class Change:
    path: str
    status: str  # created | updated | unchanged | removed | kept-edited


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(out_dir: Path) -> dict[str, str]:
    path = out_dir / MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        return {str(k): str(v) for k, v in data.get("files", {}).items()}
    except (ValueError, AttributeError):
        raise OutputError(f"{path}: not a valid manifest (delete it to start over)") from None


def manifest_artifact(artifacts: list[Artifact]) -> Artifact:
    files = {a.path: _sha(a.content.encode()) for a in artifacts}
    text = json.dumps({"generator": "hpcstack", "files": files}, indent=2, sort_keys=True) + "\n"
    return Artifact(MANIFEST, text)


def plan_changes(out_dir: Path, artifacts: list[Artifact], force: bool = False) -> list[Change]:
    """What writing would do; raises OutputError (before any write) on edited files."""
    manifest = read_manifest(out_dir)
    changes: list[Change] = []
    edited: list[str] = []
    for art in artifacts:
        target = out_dir / art.path
        if target.is_dir():
            raise OutputError(f"{target} is a directory; a generated file goes there")
        if not target.exists():
            changes.append(Change(art.path, "created"))
            continue
        current = target.read_bytes()
        new = art.content.encode()
        if current == new:
            changes.append(Change(art.path, "unchanged"))
        elif art.path == MANIFEST or force or manifest.get(art.path) == _sha(current):
            changes.append(Change(art.path, "updated"))
        else:
            edited.append(art.path)
    new_paths = {a.path for a in artifacts}
    for old, digest in sorted(manifest.items()):
        if old in new_paths:
            continue
        target = out_dir / old
        if not target.exists():
            continue
        if force or _sha(target.read_bytes()) == digest:
            changes.append(Change(old, "removed"))
        else:
            changes.append(Change(old, "kept-edited"))
    if edited:
        listing = "\n".join(f"  {p}" for p in edited)
        raise OutputError(
            f"{len(edited)} generated file(s) in {out_dir} were edited since the last generate "
            f"and would be overwritten:\n{listing}\nMove your changes into stack.yaml (or the "
            "templates), or run again with --force to overwrite them. Nothing was written."
        )
    return changes


def write_tree(out_dir: Path, artifacts: list[Artifact], changes: list[Change]) -> None:
    """Stage every new file, then rename them into place; remove files no longer generated."""
    by_path = {a.path: a for a in artifacts}
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = [
        (out_dir / ch.path, by_path[ch.path].content.encode(), by_path[ch.path].mode)
        for ch in changes
        if ch.status in ("created", "updated")
    ]
    try:
        staged = stage_all(targets)  # every file's data on disk before any rename
    except OSError as exc:
        raise OutputError(f"cannot write into {out_dir}: {exc}") from None
    for staged_file, (target, _, _) in zip(staged, targets, strict=True):
        os.replace(staged_file, target)
    for ch in changes:
        if ch.status == "removed":
            (out_dir / ch.path).unlink()
            _prune_empty_dirs(out_dir, (out_dir / ch.path).parent)


def _prune_empty_dirs(root: Path, start: Path) -> None:
    d = start
    while d != root and d.is_dir() and not any(d.iterdir()):
        d.rmdir()
        d = d.parent
