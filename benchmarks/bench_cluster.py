"""Figures from running clusters: `up` -> every node idle, the first job, scheduler throughput
and the `srun -N2 true` round trip, over the tunnel and with the same nodes on the controller's
own network, one cluster after the other in the same run.

Each bench cluster has its own name, subnets and ports and is removed with its volumes after.
Timings of Slurm commands are taken inside the controller container (a `docker exec` costs tens
of milliseconds that would blur the tunnel's share).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from bench_stages import recorded
from common import REPO, Figure, hpcstack, sh, wait_until


@dataclass
class Sizes:
    jobs: int = 1000  # throughput: trivial jobs, one array
    sruns: int = 7  # srun -N2 true round trips, the median is the figure
    build: bool = False  # smoke: build (cached) first, as the images may not be there yet
    shared_mb: int = 0  # smoke: the shared-fs figures on the tunnel cluster too (one `up` less)


def definition(name: str, net: int, tag: str, same_network: bool = False) -> dict[str, Any]:
    doc = yaml.safe_load((REPO / "stack.yaml").read_text())
    doc["cluster"]["name"] = name
    doc["images"]["tag"] = tag
    doc["tunnel"].update({"subnet": f"10.{net}.0.0/16", "port": 51800 + net})
    doc["monitoring"].update({"prometheus_port": 19000 + net, "grafana_port": 13000 + net})
    doc["sites"][0]["subnet"] = f"172.{net}.0.0/24"
    doc["sites"][1]["subnet"] = f"172.{net}.1.0/24"
    if same_network:
        # the comparison: the same two nodes on the controller's own network, no tunnel
        doc["sites"][0]["nodes"] = doc["sites"][1]["nodes"]
        doc["sites"] = doc["sites"][:1]
    return doc


class Bench:
    def __init__(self, name: str, out: Path, build: bool = False) -> None:
        self.name, self.out, self.build = name, out, build
        self.ctl = f"{name}-cloud-slurmctld-1"
        self.stages = ""  # where the seconds of `up` went (bench_stages)

    def bash(self, script: str) -> str:
        return sh("docker", "exec", self.ctl, "bash", "-c", script)

    def up_and_first_job(self) -> tuple[float, float]:
        """Seconds from `up` starting to every node idle, and to a trivial job COMPLETED."""
        if self.build:
            hpcstack(self.out, "images")
        with recorded(f"{self.name}-") as stages:
            start = time.monotonic()
            hpcstack(self.out, "up", "--no-build")
            t_up = time.monotonic() - start
        self.stages = stages.summary()
        states = set(self.bash("sinfo -h -N -o %T").split())
        if states != {"idle"}:
            raise SystemExit(f"bench: `up` returned with nodes {states}, not all idle")
        job = self.bash("sbatch --parsable -o /dev/null --wait --wrap true").strip()
        t_job = time.monotonic() - start
        state = self.bash(f"sacct -n -X -P -j {job} -o State").split()
        if state[:1] != ["COMPLETED"]:
            raise SystemExit(f"bench: first job {job} ended {state}")
        return t_up, t_job

    def srun_round_trip(self, runs: int) -> float:
        out = self.bash(
            "srun -N2 true; "  # warm: the first step after idle also sets up the nodes' agents
            f"for i in $(seq {runs}); do s=$(date +%s%N); srun -N2 true; "
            "echo $(( ($(date +%s%N) - s) / 1000 )); done"
        )
        return statistics.median(int(us) for us in out.split()) / 1e6

    def throughput(self, jobs: int) -> float:
        """Seconds from submitting `jobs` trivial jobs (one array) to the last one leaving
        the queue; every one must then be COMPLETED in the accounting."""
        out = self.bash(
            "s=$(date +%s%N); "
            f"id=$(sbatch --parsable -o /dev/null --array=1-{jobs} --wrap true); "
            'while squeue -h -r -j "$id" | grep -q .; do sleep 0.1; done; '
            'echo "$id" $(( ($(date +%s%N) - s) / 1000 ))'
        )
        job, micros = out.split()

        def completed() -> bool:
            states = self.bash(f"sacct -n -X -P -j {job} -o State").split()
            return len(states) == jobs and set(states) == {"COMPLETED"}

        wait_until(f"{jobs} array tasks COMPLETED in sacct", completed, 60, 1.0)
        return int(micros) / 1e6


def with_cluster(
    doc: dict[str, Any], body: Callable[[Bench], dict[str, float]], build: bool
) -> tuple[dict[str, float], str]:
    """The body's figures, and where the seconds of its `up` went."""
    name = doc["cluster"]["name"]
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as tmp:
        out = Path(tmp)
        (out / "stack.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        hpcstack(out, "generate", "-c", "stack.yaml", "-o", ".")
        # a bench cluster of this name left by an interrupted run: its state is not this one's
        hpcstack(out, "down", "--volumes", check=False)
        bench = Bench(name, out, build)
        try:
            return body(bench), bench.stages
        finally:
            hpcstack(out, "down", "--volumes", check=False)


def cluster_figures(tag: str, sizes: Sizes) -> list[Figure]:
    def tunnel_body(b: Bench) -> dict[str, float]:
        t_up, t_job = b.up_and_first_job()
        figures = {
            "up": t_up,
            "job": t_job,
            "srun": b.srun_round_trip(sizes.sruns),
            "jobs": b.throughput(sizes.jobs),
        }
        if sizes.shared_mb:
            from bench_sharedfs import shared_fs_io  # it imports this module

            figures.update(shared_fs_io(b.name, sizes.shared_mb))
        return figures

    def flat_body(b: Bench) -> dict[str, float]:
        b.up_and_first_job()
        return {"srun": b.srun_round_trip(sizes.sruns), "jobs": b.throughput(sizes.jobs)}

    tunnel, stages = with_cluster(definition("hpcsbench", 26, tag), tunnel_body, sizes.build)
    flat, _ = with_cluster(
        definition("hpcsflat", 25, tag, same_network=True), flat_body, sizes.build
    )
    n = sizes.jobs
    rate_tunnel, rate_flat = n / tunnel["jobs"], n / flat["jobs"]
    shared: list[Figure] = []
    if sizes.shared_mb:
        from bench_sharedfs import shared_fs_figures

        shared = shared_fs_figures(tunnel, sizes.shared_mb)
    return [
        *shared,
        Figure(
            "up_idle",
            "`up` -> every node idle, images present, monitoring on",
            tunnel["up"],
            "s",
            10.0,
            note=f"service started->healthy, s after `up` began: {stages}",
        ),
        Figure(
            "first_job", "`up` began -> first trivial batch job COMPLETED", tunnel["job"], "s", 12.0
        ),
        Figure(
            "throughput_ratio",
            f"scheduler throughput, {n:,} trivial jobs: tunnel / one network",
            rate_tunnel / rate_flat,
            "x",
            0.9,
            ">=",
            ratio=rate_tunnel / rate_flat,
            ratio_of="tunnel/one network",
            note=f"tunnel {tunnel['jobs']:.1f} s ({rate_tunnel:.0f} jobs/s), "
            f"one network {flat['jobs']:.1f} s ({rate_flat:.0f} jobs/s)",
        ),
        Figure(
            "srun_ratio",
            f"`srun -N2 true` round trip: tunnel / one network (median of {sizes.sruns})",
            tunnel["srun"] / flat["srun"],
            "x",
            1.2,
            ratio=tunnel["srun"] / flat["srun"],
            ratio_of="tunnel/one network",
            note=f"tunnel {tunnel['srun'] * 1000:.0f} ms, one network {flat['srun'] * 1000:.0f} ms",
        ),
    ]
