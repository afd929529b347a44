"""Slurm's JSON to plain dicts: msgspec where Debian's python3-msgspec is installed, else json.

`squeue --json` writes about 6 KB per job (55 MB at 10,000 jobs) and the exporter reads nine of
its fields. msgspec decodes it against the TypedDicts below, skipping every other field without
building a Python object for it: about ten times faster than `json.loads`, and the result is the
same dicts `json.loads` would give, minus the skipped fields, so slurm_json's parsers do not know
which decoder ran. Where a Slurm release changes one of these fields' types, the typed decode
fails and the whole document is decoded untyped instead: slower, never wrong. Without msgspec
the standard library decodes everything (the image's pure-stdlib fallback).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypedDict

try:
    import msgspec
except ImportError:  # pragma: no cover - the fallback is tested by forcing FAST = False
    msgspec = None  # type: ignore[assignment]


class _Number(TypedDict, total=False):
    """Slurm's {"set", "infinite", "number"} wrapper; slurm_json.number reads two of the three."""

    set: bool
    number: int


class _Allocation(TypedDict, total=False):
    name: str


class _AllocatedNodes(TypedDict, total=False):
    allocation: list[_Allocation] | None


class _Resources(TypedDict, total=False):
    nodes: _AllocatedNodes | None


class _Job(TypedDict, total=False):
    """The fields of one squeue record that slurm_json.parse_jobs reads."""

    job_id: Any
    job_state: list[str]
    user_name: str
    partition: str
    state_reason: str
    array_task_string: str
    array_job_id: _Number | int
    array_task_id: _Number | int
    job_resources: _Resources | None


class _Queue(TypedDict, total=False):
    jobs: list[_Job]


Decode = Callable[[str | bytes], Any]


def _stdlib(text: str | bytes) -> Any:
    return json.loads(text)


def _msgspec_decoders() -> dict[str, Decode]:
    untyped = msgspec.json.Decoder()
    queue = msgspec.json.Decoder(_Queue)

    def jobs(text: str | bytes) -> Any:
        try:
            return queue.decode(text)
        except msgspec.ValidationError:
            return untyped.decode(text)

    return {"jobs": jobs, "default": untyped.decode}


FAST = msgspec is not None
_DECODERS: dict[str, Decode] = _msgspec_decoders() if FAST else {}


def decode(command: str, text: str | bytes, fast: bool | None = None) -> Any:
    """The document one Slurm command printed; raises ValueError when it is not JSON.

    `fast` overrides the choice (tests and the benchmark compare both decoders)."""
    if fast if fast is not None else FAST:
        if not _DECODERS:
            raise RuntimeError("msgspec is not installed")
        return _DECODERS.get(command, _DECODERS["default"])(text)
    return _stdlib(text)
