"""Figures under load: a cluster holding N queued jobs (10,000 in the full run).

`sinfo` and `squeue` are timed inside the controller container (a `docker exec` adds tens of
milliseconds that are not Slurm's); the Slurm exporter's scrape is one HTTP GET of /metrics from
inside its container, after it has collected once with all N jobs queued; `hpcstack status`
is timed as a user runs it, from this host. The jobs are held (`--hold`) so they stay queued
and nothing runs; the 1,000-task array that runs to the end is bench_cluster's throughput figure.
"""

from __future__ import annotations

import time

from bench_cluster import Bench, definition, with_cluster
from common import Figure, hpcstack, sh, timed, wait_until

from hpcstack.contract import EXPORTER_PORTS

EXPORTER = "slurm-exporter"


def _median_of(b: Bench, command: str, runs: int = 5) -> float:
    out = b.bash(
        f"for i in $(seq {runs}); do s=$(date +%s%N); {command} >/dev/null; "
        "echo $(( ($(date +%s%N) - s) / 1000 )); done"
    )
    values = sorted(int(us) for us in out.split())
    return values[len(values) // 2] / 1e6


def load_figures(tag: str, jobs: int) -> list[Figure]:
    def body(b: Bench) -> dict[str, float]:
        hpcstack(b.out, "up", "--no-build")
        # one sbatch per job, as users submit; held so the queue keeps all of them
        b.bash(
            f"for i in $(seq {jobs}); do sbatch --hold -o /dev/null --wrap true >/dev/null "
            "|| exit 1; done"
        )
        queued = int(b.bash("squeue -h -t PENDING | wc -l").strip())
        if queued != jobs:
            raise SystemExit(f"bench: {queued} jobs queued, expected {jobs}")
        exporter = f"{b.name}-cloud-{EXPORTER}-1"

        def exporter_sees_all() -> bool:
            text = sh("docker", "exec", exporter, "python3", "-c", _GET, check=False)
            return f"slurm_jobs_pending {float(jobs)}" in text

        wait_until(f"the exporter to collect {jobs} pending jobs", exporter_sees_all, 120, 2.0)
        scrape = min(
            timed(lambda: sh("docker", "exec", exporter, "python3", "-c", _GET)) for _ in range(3)
        )
        collect = float(
            next(
                line.split()[-1]
                for line in sh("docker", "exec", exporter, "python3", "-c", _GET).splitlines()
                if line.startswith("slurm_exporter_collection_duration_seconds")
            )
        )
        status = min(timed(lambda: hpcstack(b.out, "status")) for _ in range(2))
        return {
            "sinfo": _median_of(b, "sinfo"),
            "squeue": _median_of(b, "squeue"),
            "scrape": scrape,
            "collect": collect,
            "status": status,
        }

    started = time.monotonic()
    r, _ = with_cluster(definition("hpcsload", 24, tag), body, build=False)
    n = f"{jobs:,} queued jobs"
    note = f"whole run {time.monotonic() - started:.0f} s"
    return [
        Figure("load_sinfo", f"`sinfo` with {n}", r["sinfo"], "s", 1.0, note=note),
        Figure("load_squeue", f"`squeue` with {n}", r["squeue"], "s", 1.0),
        Figure(
            "load_scrape",
            f"Slurm exporter scrape with {n} (incl. docker exec)",
            r["scrape"],
            "s",
            1.0,
            note=f"its background collection took {r['collect']:.2f} s",
        ),
        Figure("load_status", f"`hpcstack status` with {n}", r["status"], "s", 2.0),
    ]


# One GET of the exporter's /metrics inside its container (the image has python3, no curl).
_GET = (
    "import urllib.request,sys;"
    f"sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:{EXPORTER_PORTS[EXPORTER]}"
    "/metrics',timeout=30).read().decode())"
)
