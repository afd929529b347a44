"""Time one exporter collection over a synthetic squeue with N jobs (target: 10,000 in <= 0.3 s).

Usage: PYTHONPATH=generator python benchmarks/bench_exporter.py [N]
Both decoders run on the same input in the same process: msgspec (what the slurm image uses,
Debian's python3-msgspec) and the standard library's json (the fallback), so the speed-up is a
ratio measured in one run. The figure is the exporter's own work: the Slurm commands' run time
is slurmctld's, not the exporter's, and the runner here answers from memory.
The synthetic jobs are copies of recorded Slurm 26.05 records (tests/fixtures/slurm-json/busy),
so the parser sees real field layouts: one running job on each of 500 nodes, the rest pending.
Slurm writes about 6 KB per job, 55 MB for 10,000: json.loads of that dominated before msgspec.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from common import Figure
from prometheus_client import CollectorRegistry, generate_latest

from hpcstack.exporter.collector import SlurmCollector

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "slurm-json" / "busy"
NODES = 500


def synthetic_outputs(jobs: int) -> dict[str, bytes]:
    nodes_doc = json.loads((FIXTURES / "scontrol-nodes.json").read_text())
    queue = json.loads((FIXTURES / "squeue.json").read_text())
    sdiag = (FIXTURES / "sdiag.json").read_text()
    node_tpl = next(n for n in nodes_doc["nodes"] if n["name"] == "g1")
    running = next(j for j in queue["jobs"] if j["job_state"] == ["RUNNING"])
    pending = next(j for j in queue["jobs"] if j["job_state"] == ["PENDING"])
    nodes_doc["nodes"] = []
    for i in range(NODES):
        node = copy.deepcopy(node_tpl)
        node["name"] = f"n{i:04d}"
        nodes_doc["nodes"].append(node)
    reasons = ["Resources", "Priority", "Dependency", "QOSMaxJobsPerUserLimit"]
    out_jobs = []
    for i in range(jobs):
        job = copy.deepcopy(running if i < NODES else pending)
        job["job_id"] = 100_000 + i
        job["user_name"] = f"user{i % 37}"
        if job["job_state"] == ["RUNNING"]:
            job["job_resources"]["nodes"]["allocation"][0]["name"] = f"n{i % NODES:04d}"
        else:
            job["state_reason"] = reasons[i % len(reasons)]
        out_jobs.append(job)
    queue["jobs"] = out_jobs
    # bytes, as the exporter's subprocess runner returns them
    return {
        "scontrol": json.dumps(nodes_doc).encode(),
        "squeue": json.dumps(queue).encode(),
        "sdiag": sdiag.encode(),
    }


last_cpu = 0.0  # CPU seconds of the last timed collection (wall time waits for a shared core)


def time_collection(
    jobs: int, fast_json: bool = True, outputs: dict[str, bytes] | None = None
) -> tuple[float, int]:
    """Seconds for one full cycle (decode JSON, build metrics, render text) and samples served."""
    outputs = outputs or synthetic_outputs(jobs)

    def runner(argv: Sequence[str]) -> bytes:
        return outputs[argv[0]]

    registry = CollectorRegistry()
    registry.register(SlurmCollector(runner, fast_json=fast_json))
    start = time.perf_counter()
    cpu = time.process_time()
    text = generate_latest(registry)
    took = time.perf_counter() - start
    global last_cpu
    last_cpu = time.process_time() - cpu
    samples = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
    return took, samples


def figures(jobs: int = 10_000, runs: int = 3) -> list[Figure]:
    outputs = synthetic_outputs(jobs)
    fast, cpus = [], []
    for _ in range(runs):
        fast.append(time_collection(jobs, True, outputs))
        cpus.append(last_cpu)
    slow = time_collection(jobs, False, outputs)
    best = min(t for t, _ in fast)
    assert fast[0][1] == slow[1], "the two decoders served different sample counts"
    return [
        Figure(
            "exporter_10k",
            f"exporter collection, {jobs:,} queued jobs (msgspec, best of {runs})",
            best,
            "s",
            target=0.3,
            note=f"{fast[0][1]} samples, CPU {min(cpus):.3f} s; stdlib json fallback "
            f"{slow[0]:.2f} s ({slow[0] / best:.1f}x slower) in the same run",
        )
    ]


def main(argv: list[str]) -> int:
    jobs = int(argv[1]) if len(argv) > 1 else 10_000
    for fig in figures(jobs):
        print(f"{fig.label}: {fig.value:.3f} s (target <= {fig.target} s); {fig.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
