"""The shared filesystem's figure: 256 MB written and read through /shared (GlusterFS from the
cloud site, across the WireGuard tunnel) from a workstation node, against the node's own disk.

Written on node1 with fsync; the shared copy is read back on node2 (another host's view: no page
cache of node1's write helps it); the local copy is read with O_DIRECT where the disk allows it.
"""

from __future__ import annotations

from bench_cluster import Bench, definition, with_cluster
from common import Figure, hpcstack, sh

SCRIPT = r"""
set -e
mb={mb}; f=$1
t() {{ s=$(date +%s%N); "$@" >/dev/null 2>&1; echo $(( ($(date +%s%N) - s) / 1000 )); }}
t dd if=/dev/zero of="$f" bs=1M count="$mb" conv=fsync
"""
READ = r"""
f=$1
t() { s=$(date +%s%N); "$@" >/dev/null 2>&1 || return 1; echo $(( ($(date +%s%N) - s) / 1000 )); }
t dd if="$f" of=/dev/null bs=1M iflag=direct || t dd if="$f" of=/dev/null bs=1M
rm -f "$f"
"""


def _run(container: str, script: str, path: str) -> float:
    out = sh("docker", "exec", container, "bash", "-c", script, "bench", path)
    return int(out.split()[-1]) / 1e6


def shared_fs_io(cluster: str, mb: int) -> dict[str, float]:
    """Seconds to write and to read `mb` MB: through /shared and on node1's local disk."""
    node1, node2 = f"{cluster}-local-node1-1", f"{cluster}-local-node2-1"
    write = SCRIPT.format(mb=mb)
    return {
        "shared_write": _run(node1, write, "/shared/.bench-io"),
        "shared_read": _run(node2, READ, "/shared/.bench-io"),
        "local_write": _run(node1, write, "/var/tmp/.bench-io"),
        "local_read": _run(node1, READ, "/var/tmp/.bench-io"),
    }


def shared_fs_figures(io: dict[str, float], mb: int) -> list[Figure]:
    def rate(s: float) -> str:
        return f"{mb / s:.0f} MB/s" if s > 0 else "-"

    figures = []
    for op in ("write", "read"):
        shared, local = io[f"shared_{op}"], io[f"local_{op}"]
        figures.append(
            Figure(
                f"sharedfs_{op}_ratio",
                f"{mb} MB {op} from a workstation node: shared fs (across the tunnel) / local disk",
                local / shared if shared else 0.0,
                "x",
                ratio=local / shared if shared else 0.0,
                ratio_of="shared speed / local speed",
                note=f"shared {shared:.2f} s ({rate(shared)}), local {local:.2f} s ({rate(local)})",
            )
        )
    return figures


def sharedfs_bench(tag: str, mb: int, build: bool) -> list[Figure]:
    """The default shape (two workstation nodes behind the tunnel), monitoring off."""
    doc = definition("hpcsfsb", 24, tag)
    doc["monitoring"]["enabled"] = False

    def body(b: Bench) -> dict[str, float]:
        if b.build:
            hpcstack(b.out, "images")
        hpcstack(b.out, "up", "--no-build")
        return shared_fs_io(b.name, mb)

    return shared_fs_figures(with_cluster(doc, body, build)[0], mb)
