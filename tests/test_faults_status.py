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


def test_many_held_jobs_are_summed_up_by_reason() -> None:
    held = [
        JobState(str(i), "sweep", "ana", "PENDING", "0:00", "1", "JobHeldUser")
        for i in range(100, 10_100)
    ]
    admin = JobState("7", "x", "hpc", "PENDING", "0:00", "1", "JobHeldAdmin")
    lines = Status(jobs=[*held, admin]).attention()
    assert lines == [
        "1 jobs are held: JobHeldAdmin (jobs 7)",
        "10000 jobs are held: JobHeldUser (jobs "
        + ", ".join(str(i) for i in range(100, 110))
        + ", ...)",
    ]


def test_jobs_table_shows_running_first_and_counts_every_job() -> None:
    from rich.console import Console

    from hpcstack.cli.cluster import JOBS_SHOWN, jobs_table

    pending = [
        JobState(str(i), "w", "ana", "PENDING", "0:00", "1", "Priority") for i in range(1, 5001)
    ]
    running = JobState("9999", "train", "ana", "RUNNING", "1:00", "2", "node[1-2]")
    table = jobs_table(Status(jobs=[*pending, running]))
    assert table.row_count == JOBS_SHOWN
    assert table.title == (
        f"jobs (5001: 5000 pending, 1 running; {JOBS_SHOWN} shown, "
        "`hpcstack exec -- squeue` lists all)"
    )
    console = Console(width=200, record=True)
    console.print(table)
    rows = [line for line in console.export_text().splitlines() if "│" in line]
    assert "9999" in rows[0]  # the running job first (the header row is drawn with ┃)
    small = jobs_table(Status(jobs=[running]))
    assert small.row_count == 1 and small.title == "jobs (1: 1 running)"


# What slurmctld logs when a slurmd made with another cluster's munge key asks for its
# configuration, with unrelated lines between (the last line as 26.05.5 wrote it in
# test_faults_e2e's scenario 8; the others in the older `[[addr]:port]` form).
REFUSED_LOG = """\
[2026-12-02T15:01:02.101] sched: Allocate JobId=4 NodeList=node1 #CPUs=1 Partition=all
[2026-12-02T15:01:02.345] error: Munge decode failed: Invalid credential
[2026-12-02T15:01:02.345] auth/munge: _print_cred: ENCODED: Thu Jan 01 00:00:00 1970
[2026-12-02T15:01:02.346] error: slurm_unpack_received_msg: [[172.25.0.30]:45678] \
auth_g_verify: REQUEST_CONFIG has authentication error: Invalid authentication credential
[2026-12-02T15:01:07.345] error: Munge decode failed: Invalid credential
[2026-12-02T15:01:07.346] error: slurm_unpack_received_msg: [[172.25.0.30]:45690] \
auth_g_verify: REQUEST_CONFIG has authentication error: Invalid authentication credential
[2026-12-02T15:44:48.611] error: slurm_unpack_received_msg: [e093ac44ae74.hpcsflt-cloud:37318] \
Protocol authentication error
[2026-12-02T15:01:09.000] _job_complete: JobId=4 done
"""


def test_refused_credentials_are_summed_by_address_and_shown() -> None:
    from hpcstack.operate.observed import RefusedPeer, parse_auth_refusals

    refused = parse_auth_refusals(REFUSED_LOG)
    assert [(r.addr, r.count) for r in refused] == [
        ("172.25.0.30", 2),
        ("e093ac44ae74.hpcsflt-cloud", 1),
    ]
    assert refused[0].message.startswith("error: Munge decode failed: Invalid credential; ")
    assert refused[1].message.endswith("Protocol authentication error")
    assert "REQUEST_CONFIG" in refused[0].message and "[2026" not in refused[0].message
    line = Status(refused=refused).attention()[0]
    assert line.startswith("slurmctld refused 2 request(s) from 172.25.0.30 ")
    assert "another cluster's munge key" in line
    assert Status(refused=refused).to_dict()["refused"][0]["addr"] == "172.25.0.30"
    assert parse_auth_refusals("[t] error: Munge decode failed: Expired credential\n") == [
        RefusedPeer("", 1, "error: Munge decode failed: Expired credential")
    ]
    assert parse_auth_refusals("[t] sched: Allocate JobId=4\n") == []
    named = "[t] error: slurm_unpack_received_msg: [[rogue.hpcsflt-cloud]:6818] auth_g_verify: x"
    assert [r.addr for r in parse_auth_refusals(named)] == ["rogue.hpcsflt-cloud"]
