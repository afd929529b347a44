"""`make bench`: every figure of the speed-and-size targets, measured on this machine.

    benchmarks/run.py [--smoke] [--only NAME,...] [--tag TAG]

NAMEs: images, cold, cluster, sharedfs, exporter, generate, load (default: all). One table on
stdout
with each figure, its target, the ratio (to the target, or to the figure it is compared with in
the same run) and whether it is met; the same rows go to .bench/results.json. `--smoke` runs every
figure's code path at a tiny size (no cold builds: clone and generate only) so `make test` can
check the benchmarks still execute; it asserts each produced a number, never how fast.
`--tag` picks the images measured and used (default: stack.yaml's images.tag).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "generator"))

import yaml
from bench_cluster import Sizes, cluster_figures
from bench_exporter import figures as exporter_figures
from bench_generate import generator_figures
from bench_images import cold_path, image_figures
from bench_load import load_figures
from bench_sharedfs import sharedfs_bench
from common import REPO, Figure, against_target

# generate first: right after many files were deleted (the other benchmarks, the tests), this
# VM's ext4 makes each new inode cost up to ~1 ms of kernel time (decision gen-speed-0011).
NAMES = ("generate", "images", "cold", "cluster", "sharedfs", "exporter", "load")


def plan(smoke: bool, tag: str) -> dict[str, Callable[[], list[Figure]]]:
    images = yaml.safe_load((REPO / "stack.yaml").read_text())["images"]
    prefix = images.get("prefix", "hpcstack")
    base = images.get("base") or "debian:forky-slim"
    return {
        "images": lambda: image_figures(prefix, tag, base),
        "cold": lambda: cold_path(smoke=smoke),
        # smoke: the shared-fs code path runs on the cluster step's tunnel cluster (one `up` less)
        "cluster": lambda: cluster_figures(
            tag, Sizes(5, 1, build=True, shared_mb=1) if smoke else Sizes()
        ),
        "sharedfs": lambda: [] if smoke else sharedfs_bench(tag, 256, build=False),
        "exporter": lambda: exporter_figures(100 if smoke else 10_000, 1 if smoke else 5),
        "generate": lambda: generator_figures(2, 3) if smoke else generator_figures(),
        "load": lambda: load_figures(tag, 20 if smoke else 10_000),
    }


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "files":
        return f"{value:.0f}"
    return (
        f"{value:.3f} {unit}"
        if value < 1
        else f"{value:.1f} {unit}"
        if value < 100
        else f"{value:.0f} {unit}"
    )


def table(figures: list[Figure]) -> str:
    rows = [("figure", "measured", "target", "ratio", "met", "detail")]
    for f in figures:
        target = f"{f.bound} {fmt(f.target, f.unit)}" if f.target is not None else ""
        ratio = f"{f.ratio:.2f} {f.ratio_of}" if f.ratio is not None else ""
        met = "" if f.met is None else "yes" if f.met else "**MISSED**"
        rows.append((f.label, fmt(f.value, f.unit), target, ratio, met, f.note))
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("---" for _ in rows[0]) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes: check the code paths run")
    p.add_argument("--only", default=",".join(NAMES), help=f"comma-separated: {', '.join(NAMES)}")
    p.add_argument(
        "--tag", default=None, help="image tag to measure and run (default stack.yaml's)"
    )
    p.add_argument("--out", default=str(REPO / ".bench" / "results.json"))
    args = p.parse_args(argv)
    tag = args.tag or yaml.safe_load((REPO / "stack.yaml").read_text())["images"]["tag"]
    wanted = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(wanted) - set(NAMES))
    if unknown:
        p.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    steps = plan(args.smoke, tag)
    figures: list[Figure] = []
    for name in wanted:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        for f in steps[name]():
            if args.smoke:
                f.target = None  # tiny sizes: the targets are for the full run
            figures.append(against_target(f))
    for f in figures:
        if not math.isfinite(f.value):
            raise SystemExit(f"bench: {f.key} produced no number ({f.value!r})")
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(table(figures))
    print(f"\nmake bench{' --smoke' if args.smoke else ''}, {when}, {platform.node()}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"when": when, "smoke": args.smoke, "tag": tag, "figures": [f.as_json() for f in figures]}
    out.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
