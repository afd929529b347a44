"""Time one exporter collection over a synthetic squeue with N jobs (target: 10,000 in < 1 s).

Usage: PYTHONPATH=generator python benchmarks/bench_exporter.py [N]
The synthetic jobs are copies of recorded Slurm 26.05 records (tests/fixtures/slurm-json/busy),
so the parser sees real field layouts: one running job on each of 500 nodes, the rest pending.
Most of the time goes to json.loads: Slurm writes about 6 KB per job, 55 MB for 10,000.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from hpcstack.exporter.collector import SlurmCollector

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "slurm-json" / "busy"
NODES = 500


def synthetic_outputs(jobs: int) -> dict[str, str]:
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
    return {"scontrol": json.dumps(nodes_doc), "squeue": json.dumps(queue), "sdiag": sdiag}


def time_collection(jobs: int) -> tuple[float, int]:
    """Seconds for one full cycle (decode JSON, build metrics, render text) and samples served."""
    outputs = synthetic_outputs(jobs)

    def runner(argv: Sequence[str]) -> str:
        return outputs[argv[0]]

    registry = CollectorRegistry()
    registry.register(SlurmCollector(runner))
    start = time.perf_counter()
    text = generate_latest(registry)
    took = time.perf_counter() - start
    samples = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
    return took, samples


def main(argv: list[str]) -> int:
    jobs = int(argv[1]) if len(argv) > 1 else 10_000
    took, samples = time_collection(jobs)
    verdict = "met" if took < 1.0 else "MISSED"
    print(
        f"exporter collection: {jobs} queued jobs, {samples} samples in {took:.3f} s "
        f"(target < 1 s: {verdict})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
