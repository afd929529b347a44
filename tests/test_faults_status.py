"""`hpcstack status` names what needs a person: drained/down nodes with reasons, held jobs."""

from __future__ import annotations

from hpcstack.operate.observed import JobState, NodeState, Status, is_held


def test_attention_lists_unready_nodes_with_reasons_and_held_jobs() -> None:
    st = Status(
        nodes=[
            NodeState("node1", "IDLE"),
            NodeState("node2", "IDLE+DRAIN", reason="bad DIMM"),
            NodeState("node3", "DOWN+NOT_RESPONDING"),
        ],
        jobs=[
            JobState("7", "train", "hpc", "PENDING", "0:00", "1", "launch failed requeued held"),
            JobState("8", "eval", "hpc", "PENDING", "0:00", "1", "JobHeldAdmin"),
            JobState("9", "wait", "hpc", "PENDING", "0:00", "1", "Resources"),
            JobState("10", "run", "hpc", "RUNNING", "0:10", "1", "node1"),
        ],
    )
    assert st.attention() == [
        "node node2 is idle+drain: bad DIMM",
        "node node3 is down+not_responding: no reason given",
        "job 7 (train, hpc) is held: launch failed requeued held",
        "job 8 (eval, hpc) is held: JobHeldAdmin",
    ]
    assert st.to_dict()["attention"] == st.attention()


def test_held_reasons() -> None:
    assert is_held("JobHeldUser") and is_held("job requeued in held state")
    assert not is_held("Resources") and not is_held("Priority")
