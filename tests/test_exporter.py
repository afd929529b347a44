"""The Slurm exporter against JSON recorded from Slurm 26.05.5 (tests/fixtures/slurm-json/).

Phases recorded in one container with five nodes (c1-c3 CPU, g1-g2 with gpu:tesla:2):
idle (c3's slurmd never started), busy (4 running jobs, pending for Resources, Priority,
Dependency, JobHeldUser, BeginTime and a 4-task array), drained (c2 draining with a job, g2
drained idle, c3 down with a reason).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hpcstack.exporter import decode
from hpcstack.exporter.__main__ import parse_args
from hpcstack.exporter.collector import SlurmCollector, subprocess_runner
from hpcstack.exporter.slurm_json import array_task_count, gpu_count, node_state

FIXTURES = Path(__file__).parent / "fixtures" / "slurm-json"
FILES = {"scontrol": "scontrol-nodes.json", "squeue": "squeue.json", "sdiag": "sdiag.json"}
PHASES = ("idle", "busy", "drained")


@pytest.fixture(autouse=True, params=["msgspec", "stdlib"])
def json_decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with both decoders: the image has msgspec, the fallback must agree."""
    monkeypatch.setattr(decode, "FAST", request.param == "msgspec")
    return str(request.param)


class RecordedSlurm:
    """A command runner that answers from a recorded phase and counts the calls."""

    def __init__(self, phase: str, broken: frozenset[str] = frozenset()) -> None:
        self.phase = phase
        self.broken = broken
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str]) -> str:
        self.calls.append(tuple(argv))
        if argv[0] in self.broken:
            raise subprocess.CalledProcessError(1, list(argv), "", "slurm_load_jobs error")
        return (FIXTURES / self.phase / FILES[argv[0]]).read_text()


def scrape(collector: SlurmCollector) -> dict[str, list[tuple[dict[str, str], float]]]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def by_label(samples: list[tuple[dict[str, str], float]], key: str) -> dict[str, float]:
    return {labels[key]: value for labels, value in samples}


def test_idle_cluster_has_every_node_idle_but_the_unstarted_one() -> None:
    m = scrape(SlurmCollector(RecordedSlurm("idle")))
    states = {lab["node"]: lab["state"] for lab, _ in m["slurm_node_state"]}
    assert states == {"c1": "idle", "c2": "idle", "c3": "unknown", "g1": "idle", "g2": "idle"}
    assert by_label(m["slurm_node_responding"], "node")["c3"] == 0
    assert m["slurm_jobs_running"][0][1] == 0
    assert m["slurm_jobs_pending"][0][1] == 0
    assert "slurm_node_job" not in m
    assert "slurm_node_drain_since_seconds" not in m
    assert by_label(m["slurm_node_gpus"], "node") == {"c1": 0, "c2": 0, "c3": 0, "g1": 2, "g2": 2}


def test_busy_cluster_counts_pending_jobs_by_reason_with_array_tasks() -> None:
    m = scrape(SlurmCollector(RecordedSlurm("busy")))
    reasons = {(lab["partition"], lab["reason"]): v for lab, v in m["slurm_jobs_pending_by_reason"]}
    assert reasons == {
        ("cpu", "Resources"): 1,
        ("cpu", "Priority"): 5,  # job 6 plus the four tasks of array 11
        ("cpu", "Dependency"): 1,
        ("cpu", "JobHeldUser"): 1,
        ("cpu", "BeginTime"): 1,
        ("gpu", "Resources"): 1,
    }
    # The native endpoint recorded at the same moment said slurm_jobs_pending 10.
    assert m["slurm_jobs_pending"][0][1] == 10
    assert m["slurm_jobs_running"][0][1] == 4


def test_busy_cluster_maps_nodes_to_jobs_and_counts_gpus() -> None:
    m = scrape(SlurmCollector(RecordedSlurm("busy")))
    jobs = sorted(
        (lab["node"], lab["job_id"], lab["user"], lab["partition"])
        for lab, _ in m["slurm_node_job"]
    )
    assert jobs == [
        ("c1", "1", "alice", "cpu"),
        ("c2", "2", "alice", "cpu"),
        ("g1", "3", "bob", "gpu"),
        ("g2", "4", "bob", "gpu"),
    ]
    assert by_label(m["slurm_node_gpus_alloc"], "node") == {
        "c1": 0,
        "c2": 0,
        "c3": 0,
        "g1": 2,
        "g2": 1,
    }
    assert by_label(m["slurm_node_cpus_alloc"], "node") == {
        "c1": 4,
        "c2": 4,
        "c3": 0,
        "g1": 2,
        "g2": 2,
    }
    assert by_label(m["slurm_node_cpus"], "node")["g1"] == 8


def test_drained_nodes_carry_reason_and_since() -> None:
    m = scrape(SlurmCollector(RecordedSlurm("drained")))
    states = {lab["node"]: (lab["state"], lab["reason"]) for lab, _ in m["slurm_node_state"]}
    assert states["c2"] == ("draining", "bad DIMM slot 3")
    assert states["g2"] == ("drained", "XID 79: GPU fell off the bus")
    assert states["c3"] == ("down", "not responding since power work")
    assert states["c1"] == ("allocated", "")
    since = by_label(m["slurm_node_drain_since_seconds"], "node")
    assert set(since) == {"c2", "c3", "g2"}
    raw = json.loads((FIXTURES / "drained" / "scontrol-nodes.json").read_text())
    g2 = next(n for n in raw["nodes"] if n["name"] == "g2")
    assert since["g2"] == g2["reason_changed_at"]["number"]


def test_sdiag_figures_use_native_names() -> None:
    m = scrape(SlurmCollector(RecordedSlurm("drained")))
    assert m["slurm_slurmdbd_queue_size"][0][1] == 0
    assert m["slurm_schedule_cycle_max"][0][1] > 0
    assert m["slurm_server_thread_cnt"][0][1] >= 1


def test_one_collection_per_cycle_however_many_scrapes() -> None:
    slurm = RecordedSlurm("busy")
    now = [100.0]
    collector = SlurmCollector(slurm, max_age=30, clock=lambda: now[0])
    for _ in range(5):
        scrape(collector)
    assert collector.cycles == 1
    assert sorted(c[0] for c in slurm.calls) == ["scontrol", "sdiag", "squeue"]
    now[0] += 30
    scrape(collector)
    assert collector.cycles == 2
    assert len(slurm.calls) == 6


def test_a_failing_command_drops_only_its_metrics_and_counts_an_error() -> None:
    now = [0.0]
    collector = SlurmCollector(
        RecordedSlurm("busy", broken=frozenset({"squeue"})), max_age=1, clock=lambda: now[0]
    )
    m = scrape(collector)
    assert "slurm_jobs_pending" not in m
    assert "slurm_node_state" in m
    errors = by_label(m["slurm_exporter_command_errors_total"], "command")
    assert errors == {"jobs": 1, "nodes": 0, "sdiag": 0}
    assert m["slurm_exporter_collection_success"][0][1] == 0
    assert m["slurm_exporter_last_success_timestamp_seconds"][0][1] == 0
    now[0] += 1
    m = scrape(collector)
    assert by_label(m["slurm_exporter_command_errors_total"], "command")["jobs"] == 2


def test_unreadable_json_is_an_error_not_a_crash() -> None:
    collector = SlurmCollector(lambda argv: "slurm_load_node error: Unable to contact")
    m = scrape(collector)
    assert set(by_label(m["slurm_exporter_command_errors_total"], "command").values()) == {1}
    assert "slurm_node_state" not in m


def test_success_sets_last_success_time() -> None:
    collector = SlurmCollector(RecordedSlurm("idle"), wall_clock=lambda: 1_800_000_000.0)
    m = scrape(collector)
    assert m["slurm_exporter_last_success_timestamp_seconds"][0][1] == 1_800_000_000.0
    assert m["slurm_exporter_collection_success"][0][1] == 1


@pytest.mark.parametrize(
    ("gres", "count"),
    [
        ("gpu:tesla:2(IDX:0-1)", 2),
        ("gpu:tesla:0(IDX:N/A)", 0),
        ("gpu:4", 4),
        ("gpu:a100:1(IDX:0),gpu:h100:2(IDX:1-2)", 3),
        ("gpu:a100:2(S:0-1),shard:8", 2),
        ("", 0),
    ],
)
def test_gpu_count(gres: str, count: int) -> None:
    assert gpu_count(gres) == count


@pytest.mark.parametrize(
    ("tasks", "count"), [("1-4", 4), ("1,3,5-9:2%2", 5), ("7", 1), ("0-99%10", 100)]
)
def test_array_task_count(tasks: str, count: int) -> None:
    assert array_task_count(tasks) == count


@pytest.mark.parametrize(
    ("flags", "word"),
    [
        (["IDLE"], "idle"),
        (["IDLE", "DRAIN"], "drained"),
        (["MIXED", "DRAIN"], "draining"),
        (["DOWN", "DRAIN", "NOT_RESPONDING"], "down"),
        (["IDLE", "COMPLETING"], "completing"),
        ([], "unknown"),
    ],
)
def test_node_state_word(flags: list[str], word: str) -> None:
    assert node_state(flags) == word


def test_entry_point_defaults() -> None:
    args = parse_args([])
    assert (args.port, args.interval) == (9341, 30.0)


def served_text(collector: SlurmCollector) -> list[str]:
    """What Prometheus would read, less the exporter's own timings (they differ run to run)."""
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "slurm_exporter_" not in line]


@pytest.mark.parametrize("phase", PHASES)
def test_msgspec_and_stdlib_serve_identical_metrics(phase: str) -> None:
    fast = served_text(SlurmCollector(RecordedSlurm(phase), fast_json=True))
    slow = served_text(SlurmCollector(RecordedSlurm(phase), fast_json=False))
    assert fast == slow
    assert any(line.startswith("slurm_node_state{") for line in fast)


def test_typed_decode_keeps_only_the_fields_the_parser_reads() -> None:
    text = (FIXTURES / "busy" / "squeue.json").read_text()
    typed = decode.decode("jobs", text, fast=True)
    full = json.loads(text)
    assert len(typed["jobs"]) == len(full["jobs"])
    assert set(typed["jobs"][0]) < set(full["jobs"][0])
    assert typed["jobs"][0]["job_state"] == full["jobs"][0]["job_state"]


def test_a_field_of_another_type_falls_back_to_the_untyped_decode() -> None:
    # A future Slurm that writes job_state as a string must not cost the whole squeue.
    doc = json.loads((FIXTURES / "busy" / "squeue.json").read_text())
    for job in doc["jobs"]:
        job["job_state"] = job["job_state"][0]
    text = json.dumps(doc)
    assert decode.decode("jobs", text, fast=True) == json.loads(text)


def test_unreadable_json_raises_value_error_with_either_decoder() -> None:
    for fast in (True, False):
        with pytest.raises(ValueError):
            decode.decode("jobs", "slurm_load_jobs error: Unable to contact", fast=fast)


def test_subprocess_runner_hands_bytes_to_the_decoder() -> None:
    path = FIXTURES / "busy" / "squeue.json"
    out = subprocess_runner(10.0)(["cat", str(path)])
    assert isinstance(out, bytes)
    assert (
        decode.decode("jobs", out)["jobs"][0]["job_id"]
        == json.loads(path.read_text())["jobs"][0]["job_id"]
    )


def test_collection_pauses_cyclic_gc_only_while_it_runs() -> None:
    import gc

    seen: list[bool] = []
    slurm = RecordedSlurm("busy")

    def runner(argv: Sequence[str]) -> str:
        seen.append(gc.isenabled())
        return slurm(argv)

    assert gc.isenabled()
    scrape(SlurmCollector(runner))
    assert seen == [False, False, False]
    assert gc.isenabled()
    gc.disable()
    try:
        scrape(SlurmCollector(RecordedSlurm("idle")))
        assert not gc.isenabled()  # a caller's own choice is left as it was
    finally:
        gc.enable()
