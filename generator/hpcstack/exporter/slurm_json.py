"""Slurm's `--json` output turned into small records. Pure functions: no commands, no clocks.

Field names are those of Slurm 26.05 (data_parser v0.0.4x); recorded samples live in
tests/fixtures/slurm-json/. Missing fields read as empty rather than failing the whole scrape, so
a new Slurm release that renames one field loses one metric, not all of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

# "gpu:2", "gpu:tesla:2(S:0-1)", "gpu:a100:1(IDX:0),gpu:h100:2(IDX:1-2)"
_GPU_GRES = re.compile(r"(?:^|,)gpu(?::[^:(,]+)?:(\d+)")
# One element of an array task string: "3", "1-9", "1-9:2"; "%4" (a throttle) is dropped first.
_TASK_RANGE = re.compile(r"^(\d+)(?:-(\d+)(?::(\d+))?)?$")


@dataclass(frozen=True)
class Node:
    name: str
    state: str  # sinfo-style: idle, mixed, allocated, draining, drained, down, ...
    responding: bool
    reason: str
    reason_since: int  # unix time the reason was set; 0 when none
    cpus: int
    cpus_alloc: int
    gpus: int
    gpus_alloc: int
    partitions: tuple[str, ...]


class Job(NamedTuple):
    """A NamedTuple, not a dataclass: 10,000 of these are made per cycle, and a tuple is cheaper."""

    job_id: str
    user: str
    partition: str
    state: str  # PENDING, RUNNING, ...
    reason: str
    nodes: tuple[str, ...]
    tasks: int  # how many jobs this record stands for (a pending array counts its tasks)


@dataclass(frozen=True)
class Scheduler:
    values: dict[str, float]


def number(value: Any) -> int:
    """Slurm wraps many integers as {"set": bool, "infinite": bool, "number": n}."""
    if isinstance(value, dict):
        return int(value.get("number", 0)) if value.get("set", False) else 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return int(value)
    return 0


def gpu_count(gres: str) -> int:
    """GPUs in a GRES string such as 'gpu:tesla:2(IDX:0-1)'; other GRES are ignored."""
    return sum(int(m.group(1)) for m in _GPU_GRES.finditer(gres or ""))


def node_state(flags: list[str]) -> str:
    """The one word sinfo's %T prints, from the state list (base state first, then flags)."""
    if not flags:
        return "unknown"
    base, rest = flags[0].lower(), {f.upper() for f in flags[1:]}
    if "DRAIN" in rest:
        if base == "down":
            return "down"
        return "drained" if base == "idle" else "draining"
    for flag, word in (
        ("COMPLETING", "completing"),
        ("FAIL", "fail"),
        ("MAINTENANCE", "maint"),
        ("REBOOT_REQUESTED", "reboot_requested"),
        ("POWERED_DOWN", "powered_down"),
        ("POWERING_UP", "powering_up"),
        ("PLANNED", "planned"),
        ("RESERVED", "reserved"),
    ):
        if flag in rest:
            return word
    return base


def parse_nodes(doc: dict[str, Any]) -> list[Node]:
    """Nodes from `scontrol show nodes --json` (one record per node, unlike sinfo's groups)."""
    out = []
    for raw in doc.get("nodes", []):
        flags = [str(f) for f in raw.get("state", [])]
        reason = str(raw.get("reason", "") or "")
        out.append(
            Node(
                name=str(raw.get("name", "")),
                state=node_state(flags),
                responding="NOT_RESPONDING" not in flags,
                reason=reason,
                reason_since=number(raw.get("reason_changed_at")) if reason else 0,
                cpus=number(raw.get("cpus")),
                cpus_alloc=number(raw.get("alloc_cpus")),
                gpus=gpu_count(str(raw.get("gres", ""))),
                gpus_alloc=gpu_count(str(raw.get("gres_used", ""))),
                partitions=tuple(str(p) for p in raw.get("partitions", [])),
            )
        )
    return sorted(out, key=lambda n: n.name)


def array_task_count(tasks: str) -> int:
    """How many tasks a pending array record holds: '1-4' -> 4, '1,3,5-9:2%2' -> 5."""
    total = 0
    for part in tasks.split("%", 1)[0].split(","):
        m = _TASK_RANGE.match(part.strip())
        if not m:
            continue
        start, end, step = m.group(1), m.group(2), m.group(3)
        if end is None:
            total += 1
        else:
            total += len(range(int(start), int(end) + 1, int(step or 1)))
    return max(total, 1)


def _job_nodes(raw: dict[str, Any]) -> tuple[str, ...]:
    resources = raw.get("job_resources") or {}
    nodes = resources.get("nodes") or {}
    allocation = nodes.get("allocation") if isinstance(nodes, dict) else None
    if isinstance(allocation, list):
        return tuple(str(a.get("name", "")) for a in allocation if a.get("name"))
    return ()


def parse_jobs(doc: dict[str, Any]) -> list[Job]:
    """Jobs from `squeue --json`; node names come from the allocation, no hostlist parsing."""
    out: list[Job] = []
    append = out.append  # the loop runs once per queued job: 10,000 times on a busy cluster
    for raw in doc.get("jobs", []):
        states = raw.get("job_state")
        state = str(states[0]) if states else "UNKNOWN"
        task_string = raw.get("array_task_string")
        append(
            Job(
                _job_id(raw),
                str(raw.get("user_name", "")),
                str(raw.get("partition", "")),
                state,
                str(raw.get("state_reason") or "None"),
                _job_nodes(raw) if state == "RUNNING" else (),
                array_task_count(str(task_string)) if task_string else 1,
            )
        )
    return out


def _job_id(raw: dict[str, Any]) -> str:
    """'123', or '120_3' for an array task, as squeue prints it."""
    array_id = number(raw.get("array_job_id"))
    task = raw.get("array_task_id")
    if array_id and isinstance(task, dict) and task.get("set"):
        return f"{array_id}_{number(task)}"
    return str(raw.get("job_id", ""))


# sdiag --json field -> the native endpoint's metric name for the same figure.
SDIAG_FIELDS: dict[str, str] = {
    "dbd_agent_queue_size": "slurm_slurmdbd_queue_size",
    "agent_queue_size": "slurm_agent_queue_size",
    "server_thread_count": "slurm_server_thread_cnt",
    "schedule_cycle_last": "slurm_schedule_cycle_last",
    "schedule_cycle_max": "slurm_schedule_cycle_max",
    "schedule_queue_length": "slurm_schedule_queue_len",
    "bf_cycle_last": "slurm_bf_cycle_last",
    "bf_queue_len": "slurm_bf_queue_len",
}


def parse_sdiag(doc: dict[str, Any]) -> Scheduler:
    stats = doc.get("statistics", {})
    return Scheduler({name: float(number(stats.get(f))) for f, name in SDIAG_FIELDS.items()})
