"""The generator at scale: 1,000 nodes in 20 sites, `hpcstack generate` as a user runs it, twice.

Determinism: the second run goes to another directory holding the first run's secrets/ (secrets
are random per cluster by design and kept once made); every other file must be byte-identical.
"""

from __future__ import annotations

import filecmp
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from common import Figure, hpcstack, timed_cpu


def big_definition(sites: int, nodes_per_site: int) -> dict[str, Any]:
    group = {"prefix": "n", "count": nodes_per_site, "cpus": 4, "memory_mb": 4096}
    site_list: list[dict[str, Any]] = []
    for i in range(sites):
        site: dict[str, Any] = {
            "name": "cloud" if i == 0 else f"site{i:02d}",
            "role": "cloud" if i == 0 else "local",
            "subnet": f"172.30.{i}.0/24",
            "nodes": [{**group, "prefix": f"s{i:02d}n"}],
        }
        site_list.append(site)
    return {
        "cluster": {"name": "hpcsbig"},
        "controller": {"site": "cloud"},
        "tunnel": {"subnet": "10.30.0.0/16"},
        "sites": site_list,
    }


def differing(a: Path, b: Path) -> list[str]:
    cmp = filecmp.dircmp(a, b, ignore=["secrets"])
    out: list[str] = []

    def walk(c: filecmp.dircmp[str], prefix: str) -> None:
        out.extend(prefix + n for n in c.left_only + c.right_only + c.diff_files + c.funny_files)
        for name, sub in c.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(cmp, "")
    return out


def generator_figures(sites: int = 20, nodes_per_site: int = 50) -> list[Figure]:
    doc = yaml.safe_dump(big_definition(sites, nodes_per_site), sort_keys=False)
    with tempfile.TemporaryDirectory(prefix="hpcstack-gen-") as tmp:
        first, second = Path(tmp) / "a", Path(tmp) / "b"
        for d in (first, second):
            d.mkdir()
            (d / "stack.yaml").write_text(doc)
        t1, cpu1 = timed_cpu(lambda: hpcstack(first, "generate", "-c", "stack.yaml", "-o", "."))
        shutil.copytree(first / "secrets", second / "secrets")
        t2, cpu2 = timed_cpu(lambda: hpcstack(second, "generate", "-c", "stack.yaml", "-o", "."))
        diff = differing(first, second)
        files = sum(1 for p in first.rglob("*") if p.is_file())
    if diff:
        print(f"bench: generate is not deterministic: {diff[:10]}", file=sys.stderr)
    n = sites * nodes_per_site
    return [
        Figure(
            "generate",
            f"`generate`, {n:,} nodes in {sites} sites (CLI start included, slower of two runs)",
            max(t1, t2),
            "s",
            2.0,
            note=f"{files} files; first run (makes every secret, a WireGuard key pair a tunneled "
            f"node) {t1:.1f} s, CPU {cpu1:.1f} s; second (secrets kept) {t2:.1f} s, "
            f"CPU {cpu2:.1f} s",
        ),
        Figure(
            "generate_deterministic",
            "files that differ between the two runs (secrets/ aside)",
            float(len(diff)),
            "files",
            0.0,
        ),
    ]
