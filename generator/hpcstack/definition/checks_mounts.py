"""Checks of the data a site's nodes see: `sites[].mounts` and the shared filesystem.

A mount's source must lie under one of `storage.mount_roots` (so a definition cannot hand the
host's /etc or Docker socket to every job), its target must not hide the shared filesystem
(/home, /shared) or a path the image itself needs, and two mounts of a site cannot share a
target. The shared filesystem travels over the WireGuard overlay only (see
docs/decisions/sharedfs-0001-glusterfs-over-the-overlay.md).
"""

from __future__ import annotations

from collections.abc import Iterator

from hpcstack.contract import FS_MOUNT_DIR, HOME_DIR, LIB_DIR, SHARED_DIR
from hpcstack.definition.model import Stack
from hpcstack.definition.registry import check
from hpcstack.errors import Problem

# A host's system directories: no mount root may be one of them or lie inside one.
HOST_SYSTEM_PATHS = (
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/root", "/run", "/sbin",
    "/sys", "/usr", "/var",
)  # fmt: skip
# Paths of the node image a bind mount must not cover (the mount would replace them).
SYSTEM_PATHS = (*HOST_SYSTEM_PATHS, "/opt/hpcstack", "/tmp", LIB_DIR, FS_MOUNT_DIR)
SHARED_FS_PATHS = (HOME_DIR, SHARED_DIR)


def under(path: str, root: str) -> bool:
    """`path` is `root` or lies below it."""
    return root == "/" or path == root or path.startswith(root.rstrip("/") + "/")


@check
def shared_fs_needs_the_overlay(stack: Stack) -> Iterator[Problem]:
    if stack.storage.shared_fs and stack.tunnel.mode == "ssh":
        yield Problem(
            "storage.shared_fs",
            "the shared filesystem travels over the WireGuard overlay; ssh mode forwards only "
            "Slurm's own ports",
            hint="use tunnel.mode: wireguard, or set storage.shared_fs: false (each host then "
            "keeps its own /shared volume)",
        )


@check
def mount_roots_are_not_the_root(stack: Stack) -> Iterator[Problem]:
    for i, root in enumerate(stack.storage.mount_roots):
        if root == "/" or any(under(root, p) for p in HOST_SYSTEM_PATHS):
            yield Problem(
                f"storage.mount_roots[{i}]",
                f"{root!r} would let a mount take the host's system files",
                hint="name the data directories themselves, e.g. /data",
            )


@check
def mount_sources_under_a_root(stack: Stack) -> Iterator[Problem]:
    roots = stack.storage.mount_roots
    for i, site in enumerate(stack.sites):
        for j, mount in enumerate(site.mounts):
            if not any(under(mount.source, r) for r in roots):
                yield Problem(
                    f"sites[{i}].mounts[{j}].source",
                    f"{mount.source!r} is outside the allowed roots ({', '.join(roots)})",
                    hint="move the data under one of them, or add its directory to "
                    "storage.mount_roots",
                )


@check
def mount_targets_are_free(stack: Stack) -> Iterator[Problem]:
    for i, site in enumerate(stack.sites):
        seen: dict[str, int] = {}
        for j, mount in enumerate(site.mounts):
            path = f"sites[{i}].mounts[{j}].target"
            t = mount.target
            clash = next((p for p in SHARED_FS_PATHS if under(t, p) or under(p, t)), None)
            if clash:
                yield Problem(
                    path,
                    f"{t!r} would hide or sit inside the shared filesystem's {clash}",
                    hint="mount site-local data elsewhere, e.g. /data/<name>",
                )
            elif t == "/" or any(under(t, p) for p in SYSTEM_PATHS):
                yield Problem(
                    path,
                    f"{t!r} would cover a system path of the node image",
                    hint="mount site-local data under /data, /datasets, /scratch or /mnt",
                )
            if t in seen:
                yield Problem(
                    path,
                    f"target {t!r} is already used by sites[{i}].mounts[{seen[t]}]",
                    hint="give each mount its own target",
                )
            seen.setdefault(t, j)


@check
def mounts_need_nodes(stack: Stack) -> Iterator[Problem]:
    for i, site in enumerate(stack.sites):
        if site.mounts and not site.node_names:
            yield Problem(
                f"sites[{i}].mounts",
                f"site {site.name!r} has no nodes: its mounts would reach no container",
                hint="add nodes to the site or move the mounts to a site that has them",
            )
