"""Where the seconds of `up` go: each container's start and first healthy report, from the
engine's own event stream, as offsets from the moment `up` began.

`docker events` is read live for the whole `up` (the engine's replay buffer is short), and kept
for the bench cluster's compose projects. The result is the measured chain behind the `up`
figure: which service waited for which, and how long each took to report healthy.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Stages:
    """Seconds from `up` beginning to each service's start and first healthy report."""

    began: float  # wall-clock epoch seconds when `up` began
    started: dict[str, float] = field(default_factory=dict)
    healthy: dict[str, float] = field(default_factory=dict)

    @staticmethod
    def attrs(event: dict[str, object]) -> dict[str, str]:
        actor = event.get("Actor")
        attrs = actor.get("Attributes", {}) if isinstance(actor, dict) else {}
        return attrs if isinstance(attrs, dict) else {}

    @classmethod
    def project(cls, event: dict[str, object]) -> str:
        return cls.attrs(event).get("com.docker.compose.project", "")

    def add(self, event: dict[str, object]) -> None:
        attrs = self.attrs(event)
        service = f"{self.project(event)}/{attrs.get('com.docker.compose.service', '?')}"
        nanos = event.get("timeNano")
        if not isinstance(nanos, int):
            return
        at = nanos / 1e9 - self.began
        status = event.get("status") or event.get("Action")
        if status == "start":
            self.started.setdefault(service, at)
        elif status == "health_status: healthy":
            self.healthy.setdefault(service, at)

    def summary(self) -> str:
        """`service start->healthy` for every service that reported healthy, in that order."""
        rows = []
        for key in sorted(self.healthy, key=self.healthy.__getitem__):
            start = self.started.get(key)
            began = f"{start:.1f}" if start is not None else "?"
            rows.append(f"{key.split('/', 1)[1]} {began}->{self.healthy[key]:.1f}")
        return "; ".join(rows)


@contextmanager
def recorded(prefix: str) -> Iterator[Stages]:
    """Record start/health events of the containers whose compose project starts with `prefix`
    while the block runs (a reader thread drains the stream, so nothing is lost to a full pipe)."""
    stages = Stages(began=time.time())
    argv = ["docker", "events", "--format", "{{json .}}", "--filter", "type=container"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        yield stages
    finally:
        time.sleep(0.5)  # let the last events arrive
        proc.terminate()
        proc.wait(timeout=10)
        reader.join(timeout=10)
        for line in lines:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if stages.project(event).startswith(prefix):
                stages.add(event)
