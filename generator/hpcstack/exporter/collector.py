"""The Prometheus collector: one cached collection per cycle, every metric from it.

Each command runs at most once per `max_age` seconds however many scrapes arrive, so two
Prometheus servers (or a person with curl) never multiply the load on slurmctld. A command that
fails drops only its own metrics for that cycle and counts an error; the rest are still served.
"""

from __future__ import annotations

import gc
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .decode import decode
from .slurm_json import Job, Node, Scheduler, parse_jobs, parse_nodes, parse_sdiag

# The runner takes argv and returns stdout; it raises on any failure. Tests pass recorded JSON.
# Bytes from a real command: the decoders read UTF-8 directly, no 55 MB str is made first.
Runner = Callable[[Sequence[str]], str | bytes]

COMMANDS: dict[str, tuple[str, ...]] = {
    "nodes": ("scontrol", "show", "nodes", "--json"),
    "jobs": ("squeue", "--json"),
    "sdiag": ("sdiag", "--json"),
}


def subprocess_runner(timeout: float) -> Runner:
    def run(argv: Sequence[str]) -> bytes:
        done = subprocess.run(list(argv), capture_output=True, timeout=timeout, check=True)
        return done.stdout

    return run


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Decoding 10,000 jobs makes ~100,000 containers, each one a nudge towards a full cyclic
    collection that finds nothing (JSON has no cycles): pausing it cut a cycle's CPU by a
    quarter to a third in the benchmark. Reference counting still frees everything."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class Snapshot:
    """What one collection cycle learned; None where its command failed."""

    nodes: list[Node] | None = None
    jobs: list[Job] | None = None
    scheduler: Scheduler | None = None
    durations: dict[str, float] = field(default_factory=dict)
    collected_at: float = 0.0
    took: float = 0.0
    ok: bool = False


class SlurmCollector(Collector):
    def __init__(
        self,
        runner: Runner,
        max_age: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        fast_json: bool | None = None,
    ) -> None:
        self._runner = runner
        self._fast_json = fast_json  # None: msgspec when installed (see decode.py)
        self._max_age = max_age
        self._clock = clock
        self._wall = wall_clock
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._errors: Counter[str] = Counter(dict.fromkeys(COMMANDS, 0))
        self._last_success = 0.0
        self.cycles = 0  # how many collections ran; tests read it to prove caching

    def snapshot(self) -> Snapshot:
        """The cached collection, refreshed when older than max_age."""
        with self._lock:
            now = self._clock()
            if self._snapshot is None or now - self._snapshot.collected_at >= self._max_age:
                self._snapshot = self._collect_once(now)
            return self._snapshot

    def _collect_once(self, now: float) -> Snapshot:
        self.cycles += 1
        snap = Snapshot(collected_at=now)
        start = self._clock()
        with _cyclic_gc_paused():
            parsed = {name: self._run(name, snap) for name in COMMANDS}
            snap.nodes = parse_nodes(parsed["nodes"]) if parsed["nodes"] is not None else None
            snap.jobs = parse_jobs(parsed["jobs"]) if parsed["jobs"] is not None else None
            sdiag = parsed["sdiag"]
            snap.scheduler = parse_sdiag(sdiag) if sdiag is not None else None
        snap.took = self._clock() - start
        snap.ok = all(v is not None for v in parsed.values())
        if snap.ok:
            self._last_success = self._wall()
        return snap

    def _run(self, name: str, snap: Snapshot) -> dict[str, Any] | None:
        start = self._clock()
        try:
            doc = decode(name, self._runner(COMMANDS[name]), self._fast_json)
            if not isinstance(doc, dict):
                raise ValueError("top level is not an object")
            return doc
        except (OSError, subprocess.SubprocessError, ValueError):
            # A down slurmctld must not crash the exporter: count it and serve what we have.
            self._errors[name] += 1
            return None
        finally:
            snap.durations[name] = self._clock() - start

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot()
        if snap.nodes is not None:
            yield from node_metrics(snap.nodes)
        if snap.jobs is not None:
            yield from job_metrics(snap.jobs)
        if snap.scheduler is not None:
            yield from scheduler_metrics(snap.scheduler)
        yield from self._self_metrics(snap)

    def _self_metrics(self, snap: Snapshot) -> Iterator[Metric]:
        duration = GaugeMetricFamily(
            "slurm_exporter_command_duration_seconds",
            "Seconds the last run of each Slurm command took",
            labels=["command"],
        )
        errors = CounterMetricFamily(
            "slurm_exporter_command_errors",
            "Slurm command runs that failed or returned unreadable JSON",
            labels=["command"],
        )
        for name in sorted(COMMANDS):
            duration.add_metric([name], snap.durations.get(name, 0.0))
            errors.add_metric([name], self._errors[name])
        yield duration
        yield errors
        yield GaugeMetricFamily(
            "slurm_exporter_collection_duration_seconds",
            "Seconds the last collection cycle took",
            value=snap.took,
        )
        yield GaugeMetricFamily(
            "slurm_exporter_last_success_timestamp_seconds",
            "Unix time of the last cycle in which every command succeeded",
            value=self._last_success,
        )
        yield GaugeMetricFamily(
            "slurm_exporter_collection_success",
            "1 when every command of the last cycle succeeded",
            value=1.0 if snap.ok else 0.0,
        )


def node_metrics(nodes: list[Node]) -> Iterator[Metric]:
    state = GaugeMetricFamily(
        "slurm_node_state",
        "1 for the node's current state (sinfo %T) and reason",
        labels=["node", "state", "reason"],
    )
    responding = GaugeMetricFamily(
        "slurm_node_responding", "0 when slurmctld marks the node NOT_RESPONDING", labels=["node"]
    )
    drain_since = GaugeMetricFamily(
        "slurm_node_drain_since_seconds",
        "Unix time the drain or down reason was set, for drained, draining and down nodes",
        labels=["node"],
    )
    # Same names and meaning as the native endpoint's /metrics/nodes.
    per_node: dict[str, tuple[str, Callable[[Node], int]]] = {
        "slurm_node_cpus": ("Total number of cpus in the node", lambda n: n.cpus),
        "slurm_node_cpus_alloc": ("Allocated cpus in the node", lambda n: n.cpus_alloc),
        "slurm_node_gpus": ("Total number of GPUs in the node", lambda n: n.gpus),
        "slurm_node_gpus_alloc": (
            "Number of GPUs currently allocated by jobs on the node",
            lambda n: n.gpus_alloc,
        ),
    }
    families = {
        name: GaugeMetricFamily(name, text, labels=["node"]) for name, (text, _) in per_node.items()
    }
    for node in nodes:
        state.add_metric([node.name, node.state, node.reason], 1.0)
        responding.add_metric([node.name], 1.0 if node.responding else 0.0)
        if node.reason_since and node.state in ("drained", "draining", "down", "fail"):
            drain_since.add_metric([node.name], float(node.reason_since))
        for name, (_, get) in per_node.items():
            families[name].add_metric([node.name], float(get(node)))
    yield state
    yield responding
    yield drain_since
    yield from families.values()


def job_metrics(jobs: list[Job]) -> Iterator[Metric]:
    by_state: Counter[str] = Counter()
    pending: Counter[tuple[str, str]] = Counter()
    node_job = GaugeMetricFamily(
        "slurm_node_job",
        "1 for each running job on each node it runs on",
        labels=["node", "job_id", "user", "partition"],
    )
    for job in jobs:
        by_state[job.state] += job.tasks
        if job.state == "PENDING":
            pending[(job.partition, job.reason)] += job.tasks
        for node in job.nodes:
            node_job.add_metric([node, job.job_id, job.user, job.partition], 1.0)
    yield GaugeMetricFamily(
        "slurm_jobs_running", "Number of jobs in Running state", value=by_state["RUNNING"]
    )
    yield GaugeMetricFamily(
        "slurm_jobs_pending", "Number of jobs in Pending state", value=by_state["PENDING"]
    )
    reasons = GaugeMetricFamily(
        "slurm_jobs_pending_by_reason",
        "Pending jobs by partition and the reason squeue gives",
        labels=["partition", "reason"],
    )
    for (partition, reason), count in sorted(pending.items()):
        reasons.add_metric([partition, reason], float(count))
    yield reasons
    yield node_job


def scheduler_metrics(scheduler: Scheduler) -> Iterator[Metric]:
    for name, value in sorted(scheduler.values.items()):
        yield GaugeMetricFamily(name, f"sdiag: {name.removeprefix('slurm_')}", value=value)
