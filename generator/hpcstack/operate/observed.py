"""What hpcstack reads back from a running cluster: node, job, tunnel and monitoring state, and
the parsers that turn Slurm's, WireGuard's and ss's text into it (pure functions, unit-tested)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from hpcstack.run.docker import ServiceState

READY_STATES = {"IDLE", "MIXED", "ALLOCATED", "COMPLETING", "PLANNED"}
BAD_FLAGS = ("DOWN", "NOT_RESPONDING", "INVAL", "FAIL", "DRAIN", "UNKNOWN")
HANDSHAKE_FRESH_S = 180
HELD_LISTED = 10  # held jobs named one by one in `attention`; more are summed up by reason
# A request slurmctld refused because munge would not vouch for it (another cluster's key, a
# clock far off): Slurm's `Munge decode failed: ...` or `auth_g_verify: ... authentication error`.
AUTH_REFUSED = re.compile(r"munge decode failed|authentication error|auth_g_verify", re.I)
# Where a refused request came from: Slurm's `[peer:port]` or `[[peer]:port]` (peer: an
# address, or the name reverse DNS gave it), else the first IPv4 address on the line.
PEER = re.compile(r"\[\[?([^\[\]\s]+?)\]?:\d+\]|(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")


@dataclass(frozen=True)
class NodeState:
    name: str
    state: str
    addr: str = ""
    partitions: str = ""
    gres: str = ""
    reason: str = ""

    @property
    def ready(self) -> bool:
        flags = self.state.split("+")
        return flags[0] in READY_STATES and not any(f.startswith(BAD_FLAGS) for f in flags)


@dataclass(frozen=True)
class JobState:
    job_id: str
    name: str
    user: str
    state: str
    elapsed: str
    nodes: str
    reason: str


@dataclass(frozen=True)
class TunnelPeer:
    name: str
    endpoint: str
    latest_handshake: int  # unix time, 0 = never
    rx_bytes: int
    tx_bytes: int
    up: bool


@dataclass(frozen=True)
class ScrapeTarget:
    job: str
    url: str
    health: str
    error: str


@dataclass(frozen=True)
class Alert:
    name: str
    state: str
    severity: str
    labels: str


@dataclass(frozen=True)
class RefusedPeer:
    """Requests slurmctld refused for a bad munge credential, by where they came from."""

    addr: str  # "" when the log line names no address
    count: int
    message: str  # the last such line, timestamp left out


@dataclass
class Status:
    sites: dict[str, list[ServiceState]] = field(default_factory=dict)
    nodes: list[NodeState] = field(default_factory=list)
    jobs: list[JobState] = field(default_factory=list)
    tunnel: list[TunnelPeer] = field(default_factory=list)
    targets: list[ScrapeTarget] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    refused: list[RefusedPeer] = field(default_factory=list)
    controller_up: bool = False
    errors: list[str] = field(default_factory=list)
    host: str = "controller"  # or "workstation (<engine>)": what this host could be asked

    def attention(self) -> list[str]:
        """What a person may have to act on: drained or down nodes with Slurm's reason, and held
        jobs (the controller's healer clears the crash-made ones within seconds)."""
        lines = [
            f"node {n.name} is {n.state.lower()}: {n.reason or 'no reason given'}"
            for n in self.nodes
            if not n.ready
        ]
        lines += [
            f"slurmctld refused {r.count} request(s) from {r.addr or 'an unnamed peer'} whose "
            f"munge credential it could not verify (a node with another cluster's munge key?): "
            f"{r.message}"
            for r in self.refused
        ]
        held = [j for j in self.jobs if j.state == "PENDING" and is_held(j.reason)]
        if len(held) <= HELD_LISTED:
            lines += [f"job {j.job_id} ({j.name}, {j.user}) is held: {j.reason}" for j in held]
            return lines
        # Many held jobs (a user's `sbatch --hold` batch): one line per reason, not per job.
        by_reason: dict[str, list[str]] = {}
        for j in held:
            by_reason.setdefault(j.reason, []).append(j.job_id)
        for reason, ids in sorted(by_reason.items()):
            more = ", ..." if len(ids) > HELD_LISTED else ""
            lines.append(
                f"{len(ids)} jobs are held: {reason} (jobs {', '.join(ids[:HELD_LISTED])}{more})"
            )
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "sites": {k: [asdict(s) for s in v] for k, v in self.sites.items()},
            "controller_up": self.controller_up,
            "nodes": [asdict(n) | {"ready": n.ready} for n in self.nodes],
            "jobs": [asdict(j) for j in self.jobs],
            "tunnel": [asdict(t) for t in self.tunnel],
            "targets": [asdict(t) for t in self.targets],
            "alerts": [asdict(a) for a in self.alerts],
            "refused": [asdict(r) for r in self.refused],
            "errors": self.errors,
            "attention": self.attention(),
            "host": self.host,
        }


def is_held(reason: str) -> bool:
    """squeue's %r for a held job: JobHeldAdmin/JobHeldUser, or Slurm's own description
    (`launch failed requeued held`, `job requeued in held state`)."""
    return reason.startswith("JobHeld") or "held" in reason.lower()


def parse_auth_refusals(log: str) -> list[RefusedPeer]:
    """slurmctld's log lines about requests refused for their munge credential, one entry per
    address they came from (one request often logs two lines: munge's reason, then Slurm's
    refusal naming the peer; lines without an address count under the next one with it)."""
    counts: dict[str, int] = {}
    last: dict[str, str] = {}
    pending = ""
    for line in log.splitlines():
        if not AUTH_REFUSED.search(line):
            continue
        message = re.sub(r"^\[[^\]]*\]\s*", "", line.strip())
        found = PEER.search(message)
        if not found:
            pending = message
            continue
        addr = found.group(1) or found.group(2)
        counts[addr] = counts.get(addr, 0) + 1
        last[addr] = f"{pending}; {message}" if pending else message
        pending = ""
    if pending and not counts:
        return [RefusedPeer("", 1, pending)]
    return [RefusedPeer(a, counts[a], last[a]) for a in sorted(counts)]


def parse_scontrol_nodes(text: str) -> list[NodeState]:
    nodes = []
    for line in text.splitlines():
        if not line.startswith("NodeName="):
            continue
        fields = _kv(line)
        nodes.append(
            NodeState(
                name=fields.get("NodeName", ""),
                state=fields.get("State", ""),
                addr=fields.get("NodeAddr", ""),
                partitions=fields.get("Partitions", ""),
                gres=fields.get("Gres", "(null)"),
                reason=fields.get("Reason", ""),
            )
        )
    return sorted(nodes, key=lambda n: n.name)


def _kv(line: str) -> dict[str, str]:
    """Parse `Key=value Key2=value with spaces Key3=...` (Reason may hold spaces)."""
    out: dict[str, str] = {}
    key = None
    for token in line.split(" "):
        head, sep, value = token.partition("=")
        if sep and head and head[0].isupper() and head.replace("_", "").isalnum():
            key = head
            out[key] = value
        elif key is not None and token:
            out[key] += " " + token
    return out


def parse_squeue(text: str) -> list[JobState]:
    jobs = []
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) == 7:
            jobs.append(JobState(*parts))
    return jobs


def parse_ss_listeners(text: str) -> set[int]:
    """Ports from `ss -Htln` lines (`LISTEN 0 128 0.0.0.0:17001 0.0.0.0:*`)."""
    ports = set()
    for line in text.splitlines():
        cols = line.split()
        if len(cols) >= 4 and cols[3].rpartition(":")[2].isdigit():
            ports.add(int(cols[3].rpartition(":")[2]))
    return ports


def parse_wg_dump(text: str, names: dict[str, str], now: int) -> list[TunnelPeer]:
    peers = []
    for i, line in enumerate(text.splitlines()):
        cols = line.split("\t")
        if i == 0 or len(cols) < 8:
            continue  # the first line is the interface itself
        pub, _psk, endpoint, _allowed, handshake, rx, tx = cols[:7]
        hs = int(handshake)
        peers.append(
            TunnelPeer(
                name=names.get(pub, pub[:10] + "…"),
                endpoint="" if endpoint == "(none)" else endpoint,
                latest_handshake=hs,
                rx_bytes=int(rx),
                tx_bytes=int(tx),
                up=hs > 0 and now - hs < HANDSHAKE_FRESH_S,
            )
        )
    return sorted(peers, key=lambda p: p.name)
