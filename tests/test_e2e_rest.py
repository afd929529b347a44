"""End to end: slurmrestd with JWT on the controller's loopback, and `hpcstack token`.

One cluster for the module (no monitoring: this is about the REST API). Names, subnets and ports
differ from the default and from the other e2e modules. Until lab users exist in the images
(the users issue), the test makes its own user, with one uid, in slurmctld and both nodes.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from joserfc import jwt
from joserfc.jwk import OctKey

from clusterlib import (
    GENERATOR,
    Controller,
    docker,
    hpcstack,
    running_cluster,
    started_at,
    wait_for,
)
from hpcstack.operate.rest import REST_API_VERSIONS

pytestmark = pytest.mark.docker

NAME = "hpcsrest"
CTL = f"{NAME}-cloud-slurmctld-1"
ctl = Controller(CTL).run
REST_PORT = 16820
API = REST_API_VERSIONS["26.05"]
USER, UID = "alice", 2301
SERVICES = ("slurmctld", "slurmdbd", "slurmrestd", "db")


def rest_definition(repo: Path) -> str:
    doc = yaml.safe_load((repo / "stack.yaml").read_text())
    doc["cluster"]["name"] = NAME
    doc["tunnel"].update({"subnet": "10.95.0.0/16", "port": 51895})
    doc["monitoring"] = {"enabled": False}
    doc["rest"] = {"port": REST_PORT}
    doc["login"] = {"port": 12822}  # not the default's 2022: a user's own cluster may hold it
    # The lab user the REST calls act as (AccountingStorageEnforce: only known users submit).
    # (and the image's `hpc`, whom the scale tests submit as).
    doc["users"] = [{"name": USER, "uid": UID}, {"name": "hpc", "uid": 1000}]
    doc["sites"][0]["subnet"] = "172.30.10.0/24"
    doc["sites"][1]["subnet"] = "172.30.11.0/24"
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> Iterator[Path]:
    with running_cluster(tmp_path_factory.mktemp("rest"), rest_definition(repo), NAME) as out:
        yield out


def token(out: Path, *args: str) -> str:
    return hpcstack(out, "token", *args).strip()


def request(
    path: str, tok: str | None, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if tok is not None:
        headers["X-SLURM-USER-TOKEN"] = tok
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{REST_PORT}{path}", data, headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            return exc.code, json.loads(text or b"{}")
        except ValueError:
            return exc.code, {"raw": text.decode(errors="replace")}


def claims(tok: str) -> dict[str, Any]:
    payload = tok.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_token_prints_only_the_token(cluster: Path) -> None:
    tok = token(cluster, "--user", USER, "--lifespan", "600")
    assert len(tok.splitlines()) == 1 and tok.count(".") == 2, tok
    got = claims(tok)
    assert got["sun"] == USER
    assert 590 <= got["exp"] - got["iat"] <= 610


def test_rest_lists_nodes_and_partitions(cluster: Path) -> None:
    tok = token(cluster, "--user", USER)
    code, nodes = request(f"/slurm/{API}/nodes", tok)
    assert code == 200, nodes
    assert sorted(n["name"] for n in nodes["nodes"]) == ["node1", "node2"]
    code, parts = request(f"/slurm/{API}/partitions", tok)
    assert code == 200, parts
    assert {"all", "local"} <= {p["name"] for p in parts["partitions"]}


def test_a_job_submitted_through_rest_completes_as_its_user(cluster: Path) -> None:
    tok = token(cluster, "--user", USER)
    job = {
        "script": "#!/bin/bash\nid -un\n",
        "job": {
            "name": "rest-job",
            "current_working_directory": "/tmp",
            "environment": ["PATH=/usr/bin:/bin"],
        },
    }
    code, answer = request(f"/slurm/{API}/job/submit", tok, job)
    assert code == 200, answer
    job_id = str(answer["job_id"])

    def finished() -> str:
        out = ctl("sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State,User", check=False)
        return out.strip() if out.strip().startswith(("COMPLETED", "FAILED")) else ""

    assert wait_for(f"job {job_id} in sacct", finished, timeout=90) == f"COMPLETED|{USER}"
    code, seen = request(f"/slurmdb/{API}/job/{job_id}", tok)
    assert code == 200, seen
    assert seen["jobs"], seen  # accounting answers through REST too


def refused(code: int, body: dict[str, Any]) -> bool:
    """No data, and Slurm's refusal: 401 from slurmrestd (no token), or 511 (measured, Slurm
    26.05) when slurmctld rejects the token slurmrestd passed on."""
    return code in (401, 511) and not body.get("nodes")


def test_a_request_without_a_token_is_refused(cluster: Path) -> None:
    code, _ = request(f"/slurm/{API}/nodes", None)
    assert code == 401


def test_a_token_signed_with_another_key_is_refused(cluster: Path) -> None:
    now = int(time.time())
    forged = jwt.encode(
        {"alg": "HS256", "typ": "JWT"},
        {"sun": USER, "iat": now, "exp": now + 600},
        OctKey.import_key(os.urandom(32)),
    )
    code, body = request(f"/slurm/{API}/nodes", forged)
    assert refused(code, body), (code, body)


def test_an_expired_token_is_refused(cluster: Path) -> None:
    tok = token(cluster, "--user", USER, "--lifespan", "6")  # slack for a slow CLI start
    assert request(f"/slurm/{API}/nodes", tok)[0] == 200
    exp = claims(tok)["exp"]
    wait_for("the token to expire", lambda: time.time() > exp + 1, timeout=10)
    code, body = request(f"/slurm/{API}/nodes", tok)
    assert refused(code, body), (code, body)


def test_rest_is_published_on_loopback_only(cluster: Path) -> None:
    ports = docker("port", f"{NAME}-cloud-slurmrestd-1").stdout.split()
    assert ports[-1] == f"127.0.0.1:{REST_PORT}", ports


def test_the_jwt_key_reaches_only_slurmctld_and_slurmdbd(cluster: Path) -> None:
    for service in ("slurmctld", "slurmdbd"):
        mode = docker(
            "exec",
            f"{NAME}-cloud-{service}-1",
            "stat",
            "-c",
            "%U %a",
            "/run/hpcstack-jwt/jwt_hs256.key",
        ).stdout.split()
        assert mode == ["slurm", "400"], (service, mode)
    for container in (f"{NAME}-cloud-slurmrestd-1", f"{NAME}-local-node1-1"):
        probe = docker("exec", container, "ls", "/run/secrets/jwt_key", check=False)
        assert probe.returncode != 0, container


def test_no_token_appears_in_any_log(cluster: Path) -> None:
    toks = [token(cluster, "--user", USER) for _ in range(2)]
    for tok in toks:
        request(f"/slurm/{API}/nodes", tok)
    containers = [f"{NAME}-cloud-{s}-1" for s in SERVICES] + [
        f"{NAME}-local-node{i}-1" for i in (1, 2)
    ]
    for container in containers:
        r = docker("logs", container)
        logged = r.stdout + r.stderr
        for tok in toks:
            # the signature is the secret part; the header alone is the same for every token
            assert tok.split(".")[2] not in logged, container
            assert tok.split(".")[1] not in logged, container


# --- hpcstack scale: both directions, with a job running -------------------------------------
NODE = f"{NAME}-local-node{{}}-1"
KEPT = (CTL, f"{NAME}-cloud-tunnel-1", NODE.format(1), NODE.format(2))


def node_states() -> dict[str, str]:
    out = ctl("sinfo", "--noheader", "--Node", "--partition=all", "--format=%N %T", check=False)
    return dict(line.split() for line in out.splitlines() if line.strip())


def sbatch(*args: str) -> str:
    # a writable working directory and no output file: the job must not fail on its own
    opts = "--parsable --chdir=/tmp --output=/dev/null"
    return Controller(CTL).as_user(f"sbatch {opts} {' '.join(args)}").strip()


def job_state(job_id: str) -> str:
    return ctl("squeue", "-h", "-j", job_id, "-o", "%T", check=False).strip()


SCALE_UNVERIFIED = pytest.mark.xfail(
    strict=False,
    reason="green in two runs on 2026-12-02 (a CI run and the last local one), not yet on a "
    "CI record; an earlier run failed in the test's own sbatch (fixed: --chdir, a known user)",
)


@SCALE_UNVERIFIED
def test_scale_up_adds_a_node_without_restarting_the_others(cluster: Path) -> None:
    before = {c: started_at(c) for c in KEPT}
    text = (cluster / "stack.yaml").read_text()
    job = sbatch("-w", "node1", "--wrap", "'sleep 300'")
    wait_for("the job running", lambda: job_state(job) == "RUNNING", timeout=30)
    hpcstack(cluster, "scale", "local", "--nodes", "3", timeout=600)
    assert node_states().get("node3") == "idle"
    assert {c: started_at(c) for c in KEPT} == before  # nothing else restarted
    assert job_state(job) == "RUNNING"
    # the new node runs jobs, and reaches its site mates directly over the tunnel
    out = Controller(CTL).as_user("srun -N2 -w node1,node3 hostname")
    assert sorted(out.split()) == ["node1", "node3"]
    # only the count changed in stack.yaml: the user's comments and layout are kept
    edited = (cluster / "stack.yaml").read_text()
    assert edited == text.replace("count: 2", "count: 3", 1)
    ctl("scancel", job)


@SCALE_UNVERIFIED
def test_scale_down_drains_the_node_before_removing_it(cluster: Path) -> None:
    before = {c: started_at(c) for c in KEPT}
    job = sbatch("-w", "node3", "--wrap", "'sleep 15'")
    wait_for("the job running", lambda: job_state(job) == "RUNNING", timeout=30)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpcstack.cli.main", "scale", "local", "--remove", "node3"],
        cwd=cluster, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(GENERATOR)},
    )  # fmt: skip
    try:
        wait_for("node3 draining", lambda: node_states().get("node3") == "draining", timeout=30)
        assert job_state(job) == "RUNNING"
        output, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, output
    state = ctl("sacct", "-j", job, "-X", "-n", "-P", "-o", "State").strip()
    assert state == "COMPLETED"  # the job ended on its own: the node went only after
    assert "node3" not in node_states()
    assert docker("ps", "-aq", "--filter", f"name={NODE.format(3)}").stdout.strip() == ""
    assert {c: started_at(c) for c in KEPT} == before
    assert "count: 2" in (cluster / "stack.yaml").read_text()
