"""`make bench`: the figures the README records, measured on this machine.

- image sizes;
- cold build: a fresh debootstrap base under a bench-only tag, then every image with --no-cache
  (the user's images and build cache are left alone);
- up -> all nodes idle (images present) and submit -> done for a trivial job;
- `srun -N2 true` round trip over the tunnel vs. with the nodes on the controller's network;
- time for a cut tunnel's nodes to return to idle;
- the Slurm exporter's collection time at 10,000 queued jobs.

Bench clusters use their own names, subnets and ports; each is removed (with its volumes) after.
Results print as a table and land in .bench/results.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "generator"))
ENV = {**os.environ, "PYTHONPATH": str(REPO / "generator")}
BASE = "debian:forky-slim"


def sh(*argv: str, cwd: Path | None = None, check: bool = True) -> str:
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=ENV, check=False)
    if check and r.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r.stdout


def hpcstack(cwd: Path, *args: str) -> str:
    return sh(sys.executable, "-m", "hpcstack.cli.main", *args, cwd=cwd)


def timed(fn: Callable[[], Any]) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def image_sizes() -> dict[str, str]:
    out = {}
    for name in ("slurm", "compute", "mariadb", "prometheus", "node-exporter"):
        ref = f"hpcstack-{name}:0.1.0"
        size = sh("docker", "image", "inspect", "-f", "{{.Size}}", ref, check=False).strip()
        out[f"image {ref}"] = f"{int(size) / 1e6:.0f} MB" if size else "not built"
    return out


def cold_build() -> dict[str, str]:
    tag = "hpcstack-bench-base:forky"
    sh("docker", "rmi", "-f", tag, check=False)
    results: dict[str, str] = {}
    t_base = timed(lambda: sh("bash", str(REPO / "scripts/base-image.sh"), tag, check=True))
    apt = os.environ.get("HPCSTACK_APT_OPTIONS", "")
    total = t_base
    for ctx, target in (("slurm", "compute"), ("mariadb", None), ("prometheus", None)):
        argv = [
            "docker",
            "build",
            "-q",
            "--no-cache",
            "--build-arg",
            f"BASE_IMAGE={tag}",
            "--build-arg",
            f"APT_OPTIONS={apt}",
            "-t",
            f"hpcstack-bench-{ctx}:cold",
        ]
        if target:
            argv += ["--target", target]
        argv.append(str(REPO / "images" / ctx))
        total += timed(lambda argv=argv: sh(*argv))
    for ctx in ("slurm", "mariadb", "prometheus"):
        sh("docker", "rmi", "-f", f"hpcstack-bench-{ctx}:cold", check=False)
    sh("docker", "rmi", "-f", tag, check=False)
    results["cold build (debootstrap base + slurm, compute, mariadb, prometheus)"] = (
        f"{total:.0f} s"
    )
    results["  of which the debootstrap base"] = f"{t_base:.0f} s"
    return results


def definition(name: str, net: int, port: int, same_network: bool = False) -> dict[str, Any]:
    doc = yaml.safe_load((REPO / "stack.yaml").read_text())
    doc["cluster"].update({"name": name, "slurmd_timeout": 20})
    doc["tunnel"].update({"subnet": f"10.{net}.0.0/16", "port": port})
    doc["monitoring"] = {"enabled": False}
    doc["sites"][0]["subnet"] = f"172.{net}.0.0/24"
    doc["sites"][1]["subnet"] = f"172.{net}.1.0/24"
    if same_network:
        # the comparison: the same two nodes on the controller's own network, no tunnel
        doc["sites"][0]["nodes"] = doc["sites"][1]["nodes"]
        doc["sites"] = doc["sites"][:1]
    return doc


def ctl(name: str, *argv: str) -> str:
    return sh("docker", "exec", f"{name}-cloud-slurmctld-1", *argv)


def srun_round_trip(name: str, runs: int = 7) -> float:
    ctl(name, "srun", "-N2", "true")  # warm
    times = [timed(lambda: ctl(name, "srun", "-N2", "true")) for _ in range(runs)]
    return statistics.median(times)


def with_cluster(
    doc: dict[str, Any], body: Callable[[Path, str], dict[str, str]]
) -> dict[str, str]:
    name = doc["cluster"]["name"]
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as tmp:
        out = Path(tmp)
        (out / "stack.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        hpcstack(out, "generate", "-c", "stack.yaml", "-o", ".")
        try:
            return body(out, name)
        finally:
            hpcstack(out, "down", "--volumes")


def tunnel_figures(out: Path, name: str) -> dict[str, str]:
    t_up = timed(lambda: hpcstack(out, "up", "--no-build"))
    t_job = timed(lambda: ctl(name, "sbatch", "--wait", "-o", "/dev/null", "--wrap", "true"))
    rt = srun_round_trip(name)
    tunnel = f"{name}-cloud-tunnel-1"
    sh("docker", "stop", tunnel)

    def states() -> set[str]:
        return set(ctl(name, "sinfo", "-h", "-N", "-o", "%T").split())

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(s.endswith("*") or "down" in s for s in states()):
        time.sleep(1)
    sh("docker", "start", tunnel)
    start = time.monotonic()
    while time.monotonic() - start < 180 and states() != {"idle"}:
        time.sleep(0.5)
    back = time.monotonic() - start
    return {
        "up -> all nodes idle (images present)": f"{t_up:.1f} s",
        "submit -> done, trivial batch job": f"{t_job:.1f} s",
        "srun -N2 true over the tunnel (median of 7)": f"{rt * 1000:.0f} ms",
        "cut tunnel restored -> nodes idle again": f"{back:.1f} s",
        "_rt": str(rt),
    }


def same_network_figures(out: Path, name: str) -> dict[str, str]:
    hpcstack(out, "up", "--no-build")
    rt = srun_round_trip(name)
    return {
        "srun -N2 true, nodes on the controller's network": f"{rt * 1000:.0f} ms",
        "_rt": str(rt),
    }


def exporter() -> dict[str, str]:
    out = sh(sys.executable, str(REPO / "benchmarks/bench_exporter.py"), "10000")
    return {"exporter collection, 10,000 queued jobs": out.strip().splitlines()[-1]}


def main() -> int:
    results: dict[str, str] = {}
    results.update(image_sizes())
    if "--quick" not in sys.argv:
        results.update(cold_build())
    tunnel = with_cluster(definition("hpcsbench", 26, 51826), tunnel_figures)
    flat = with_cluster(definition("hpcsflat", 25, 51825, same_network=True), same_network_figures)
    ratio = float(tunnel.pop("_rt")) / float(flat.pop("_rt"))
    results.update(tunnel)
    results.update(flat)
    results["tunnel / same network (target <= 1.2)"] = f"{ratio:.2f}x"
    results.update(exporter())
    results.update(image_sizes())
    width = max(map(len, results))
    print(f"| {'figure':<{width}} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for key, value in results.items():
        print(f"| {key:<{width}} | {value} |")
    (REPO / ".bench").mkdir(exist_ok=True)
    (REPO / ".bench/results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
