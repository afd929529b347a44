"""Parsers for what the running cluster reports (text recorded from Slurm 26.05 and wg)."""

from __future__ import annotations

from hpcstack.operate.observed import NodeState, parse_scontrol_nodes, parse_squeue, parse_wg_dump

SCONTROL = (
    "NodeName=node1 Arch=x86_64 CoresPerSocket=1 CPUAlloc=0 CPUEfctv=2 CPUTot=2 "
    "Features=site_local,cpu ActiveFeatures=site_local,cpu Gres=(null) NodeAddr=10.99.1.4 "
    "NodeHostName=node1 Version=26.05.5 RealMemory=1024 State=IDLE+DYNAMIC_NORM "
    "Partitions=local,all\n"
    "NodeName=gpu1 Arch=x86_64 CPUTot=2 Gres=gpu:tesla:2 NodeAddr=10.99.2.4 "
    "State=IDLE+DRAIN+DYNAMIC_NORM Partitions=gpusite,all "
    "Reason=hpcstack down --site gpusite [root@2026-11-29T12:00:00]\n"
    "NodeName=node2 NodeAddr=10.99.1.5 State=IDLE*+DYNAMIC_NORM+NOT_RESPONDING Partitions=all\n"
)


def test_scontrol_nodes_with_reasons_and_flags() -> None:
    nodes = {n.name: n for n in parse_scontrol_nodes(SCONTROL)}
    assert list(nodes) == ["gpu1", "node1", "node2"]
    assert nodes["node1"].addr == "10.99.1.4" and nodes["node1"].ready
    assert nodes["gpu1"].gres == "gpu:tesla:2"
    assert nodes["gpu1"].reason == "hpcstack down --site gpusite [root@2026-11-29T12:00:00]"
    assert not nodes["gpu1"].ready  # drained
    assert not nodes["node2"].ready  # not responding


def test_ready_means_usable() -> None:
    assert NodeState("n", "MIXED").ready
    assert NodeState("n", "ALLOCATED+DYNAMIC_NORM").ready
    for state in ("DOWN+DYNAMIC_NORM", "IDLE+DRAIN", "INVAL", "IDLE+NOT_RESPONDING", "FUTURE"):
        assert not NodeState("n", state).ready, state


def test_squeue_lines() -> None:
    jobs = parse_squeue(
        "7|wrap|hpc|PENDING|0:00|2|(Resources)\nbroken line\n8|x|root|RUNNING|0:05|1|gpu1\n"
    )
    assert [(j.job_id, j.state, j.reason) for j in jobs] == [
        ("7", "PENDING", "(Resources)"),
        ("8", "RUNNING", "gpu1"),
    ]


def test_wg_dump_names_peers_and_ages_handshakes() -> None:
    dump = (
        "PRIV=\tPUBHUB=\t51820\toff\n"
        "PUB1=\t(none)\t172.28.0.1:40000\t10.99.1.4/32\t1000\t5508\t9132\toff\n"
        "PUB2=\t(none)\t(none)\t10.99.1.5/32\t0\t0\t0\toff\n"
        "PUB3=\t(none)\t172.28.0.1:40001\t10.99.2.4/32\t700\t10\t20\toff\n"
    )
    peers = {p.name: p for p in parse_wg_dump(dump, {"PUB1=": "node1", "PUB2=": "node2"}, now=1100)}
    assert peers["node1"].up and peers["node1"].rx_bytes == 5508
    assert peers["node1"].endpoint == "172.28.0.1:40000"
    assert not peers["node2"].up and peers["node2"].endpoint == ""  # never handshook
    unknown = next(p for n, p in peers.items() if n.startswith("PUB3"))
    assert not unknown.up  # last handshake 400 s ago: stale
