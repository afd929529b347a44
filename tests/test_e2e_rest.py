"""End to end: slurmrestd behind its verifying gateway on the controller's loopback, `hpcstack
token`, and Slurm's /metrics answering only the metrics identity's token.

One cluster for the module (no monitoring: this is about the REST API). Names, subnets and ports
differ from the default and from the other e2e modules. Until lab users exist in the images
(the users issue), the test makes its own user, with one uid, in slurmctld and both nodes.
"""

from __future__ import annotations

import base64
import http.client
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
from hpcstack import contract
from hpcstack.operate.rest import REST_API_VERSIONS

pytestmark = pytest.mark.docker

NAME = "hpcsrest"
CTL = f"{NAME}-cloud-slurmctld-1"
REST = f"{NAME}-cloud-slurmrestd-1"
ctl = Controller(CTL).run
REST_PORT = 16820
API = REST_API_VERSIONS["26.05"]
USER, UID = "alice", 2301
SERVICES = ("slurmctld", "slurmdbd", "slurmrestd", "db")
SUBNET = "172.30.10"
METRICS = f"http://{SUBNET}.{contract.SERVICE_HOSTS['slurmctld']}:{contract.SLURMCTLD_PORT}"


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
    doc["sites"][0]["subnet"] = f"{SUBNET}.0/24"
    doc["sites"][1]["subnet"] = "172.30.11.0/24"
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> Iterator[Path]:
    with running_cluster(tmp_path_factory.mktemp("rest"), rest_definition(repo), NAME) as out:
        yield out


def token(out: Path, *args: str) -> str:
    return hpcstack(out, "token", *args).strip()


def get(
    url: str, headers: dict[str, str], data: bytes | None = None, method: str | None = None
) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data, headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, bytes(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, bytes(exc.read())


def request(
    path: str,
    tok: str | None,
    body: dict[str, Any] | None = None,
    header: str = contract.REST_TOKEN_HEADER,
    method: str | None = None,
) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if tok is not None:
        headers[header] = tok
    data = None if body is None else json.dumps(body).encode()
    code, text = get(f"http://127.0.0.1:{REST_PORT}{path}", headers, data, method)
    try:
        return code, json.loads(text or b"{}")
    except ValueError:
        return code, {"raw": text.decode(errors="replace")}


def forged_token(user: str = USER) -> str:
    now = int(time.time())
    return jwt.encode(
        {"alg": "HS256", "typ": "JWT"},
        {"sun": user, "iat": now, "exp": now + 600},
        OctKey.import_key(os.urandom(32)),
    )


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


def refused_by_the_gateway(code: int, body: dict[str, Any]) -> bool:
    """401 with nginx's page, not slurmrestd's JSON: the request never reached slurmrestd
    (which answers 511 when slurmctld rejects a token it passed on, measured on 26.05)."""
    return code == 401 and "nginx" in body.get("raw", "") and not body.get("nodes")


def test_a_request_without_a_token_is_refused(cluster: Path) -> None:
    code, body = request(f"/slurm/{API}/nodes", None)
    assert refused_by_the_gateway(code, body), (code, body)


def test_a_token_signed_with_another_key_is_refused(cluster: Path) -> None:
    code, body = request(f"/slurm/{API}/nodes", forged_token())
    assert refused_by_the_gateway(code, body), (code, body)


def test_the_gateway_reads_only_slurms_token_header_and_checks_every_method(cluster: Path) -> None:
    tok = token(cluster, "--user", USER)
    # Slurm would also take `Authorization: Bearer`; the gateway checks its one header only
    code, body = request(f"/slurm/{API}/nodes", tok, header="Authorization")
    assert refused_by_the_gateway(code, body), (code, body)
    # the module lets OPTIONS through unchecked: the gateway answers it itself
    assert request(f"/slurm/{API}/nodes", None, method="OPTIONS")[0] == 405
    # a forged token beside a good one: slurmrestd gets one combined value and Slurm refuses it
    conn = http.client.HTTPConnection("127.0.0.1", REST_PORT, timeout=30)
    conn.putrequest("GET", f"/slurm/{API}/nodes")
    conn.putheader(contract.REST_TOKEN_HEADER, tok)
    conn.putheader(contract.REST_TOKEN_HEADER, forged_token())
    conn.endheaders()
    answer = conn.getresponse()
    assert answer.status != 200 and b'"nodes"' not in answer.read(), answer.status
    print("two token headers, the first good:", answer.status)
    conn.close()


def test_an_expired_token_is_refused(cluster: Path) -> None:
    tok = token(cluster, "--user", USER, "--lifespan", "6")  # slack for a slow CLI start
    assert request(f"/slurm/{API}/nodes", tok)[0] == 200
    exp = claims(tok)["exp"]
    wait_for("the token to expire", lambda: time.time() > exp + 1, timeout=10)
    code, body = request(f"/slurm/{API}/nodes", tok)
    assert refused_by_the_gateway(code, body), (code, body)


def test_rest_is_published_on_loopback_only(cluster: Path) -> None:
    ports = docker("port", REST).stdout.split()
    assert ports[-1] == f"127.0.0.1:{REST_PORT}", ports


def test_slurmrestd_listens_only_on_its_socket_behind_nginx(cluster: Path) -> None:
    dns = "127.0.0.11:"  # Docker's embedded resolver, redirected into every container
    tcp = [ln for ln in docker("exec", REST, "ss", "-Htlnp").stdout.splitlines() if dns not in ln]
    assert tcp and all('"nginx"' in ln for ln in tcp), tcp  # the gateway holds the only port
    assert all(ln.split()[3].endswith(f":{contract.SLURMRESTD_PORT}") for ln in tcp), tcp
    # (ss cannot name slurmrestd, a non-dumpable process, so a TCP port of its would show above
    # without a process name and fail the check)
    unix = docker("exec", REST, "ss", "-Hxl").stdout
    assert contract.REST_SOCKET in unix, unix
    # slurmrestd makes its socket 0777 (measured): the directory above is what keeps others out
    owner = docker("exec", REST, "stat", "-c", "%U %G", contract.REST_SOCKET).stdout.split()
    assert owner == [contract.REST_USER, contract.REST_GATEWAY_USER], owner
    mode = docker("exec", REST, "stat", "-c", "%U %G %a", contract.REST_SOCKET_DIR).stdout.split()
    assert mode == [contract.REST_USER, contract.REST_GATEWAY_USER, "2750"], mode

    # both run under tini, nginx's workers as their own user
    def uid(user: str) -> str:
        return docker("exec", REST, "id", "-u", user).stdout.strip()

    procs = docker("exec", REST, "ps", "-eo", "uid=,comm=").stdout.splitlines()
    seen = {tuple(p.split()) for p in procs if p.strip()}
    assert (uid(contract.REST_USER), "slurmrestd") in seen, seen
    assert ("0", "nginx") in seen and (uid(contract.REST_GATEWAY_USER), "nginx") in seen, seen
    assert docker("exec", REST, "ps", "-o", "comm=", "-p", "1").stdout.strip() == "tini"


def test_the_jwt_key_reaches_only_the_services_that_check_tokens(cluster: Path) -> None:
    for service in ("slurmctld", "slurmdbd"):
        mode = docker(
            "exec", f"{NAME}-cloud-{service}-1", "stat", "-c", "%U %a", contract.JWT_KEY_PATH
        ).stdout.split()
        assert mode == ["slurm", "400"], (service, mode)
    # the gateway's copy: root's alone; slurmrestd's user reads neither it nor the secret
    key_conf = contract.REST_GATEWAY_KEY_CONF
    mode = docker("exec", REST, "stat", "-c", "%U %a", key_conf, key_conf.rsplit("/", 1)[0])
    assert mode.stdout.split() == ["root", "600", "root", "700"], mode.stdout
    secret = f"{contract.SECRETS_DIR}/{contract.JWT_KEY_SECRET}"
    for path in (secret, key_conf):
        probe = docker("exec", "-u", contract.REST_USER, REST, "cat", path, check=False)
        assert probe.returncode != 0, path
    env = docker("inspect", "-f", "{{json .Config.Env}}", REST).stdout
    assert "jwt" not in env.lower(), env
    for container in (f"{NAME}-local-node1-1", f"{NAME}-cloud-login-1"):
        probe = docker("exec", container, "ls", secret, check=False)
        assert probe.returncode != 0, container


def test_slurm_metrics_answer_only_a_token_of_the_metrics_user(cluster: Path) -> None:
    def scrape(tok: str | None) -> tuple[int, bytes]:
        headers = {} if tok is None else {"Authorization": f"Bearer {tok}"}
        return get(f"{METRICS}/metrics/nodes", headers)

    code, text = scrape(None)
    assert code == 401, (code, text)
    assert scrape(forged_token(contract.METRICS_USER))[0] == 401
    code, text = scrape(token(cluster, "--user", contract.METRICS_USER))
    assert code == 200 and b"slurm_nodes" in text, (code, text[:200])
    code, text = scrape(token(cluster, "--user", USER))  # a lab user: not in MetricsAuthUsers
    assert code != 200 and b"slurm_nodes" not in text, code
    print("/metrics with a lab user's token:", code, text[:200])


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


def readme_rest_examples(repo: Path) -> list[str]:
    """The README's copy-paste blocks for the REST API and /metrics, aimed at this cluster."""
    section = (repo / "README.md").read_text().split("## REST API and tokens", 1)[1]
    section = section.split("\n## ", 1)[0]
    blocks = [b.split("```", 1)[0] for b in section.split("```sh\n")[1:]]
    cli = f"{sys.executable} -m hpcstack.cli.main"
    controller = f"{SUBNET}.{contract.SERVICE_HOSTS['slurmctld']}"
    return [
        b.replace(".venv/bin/hpcstack", cli)
        .replace(":6820/", f":{REST_PORT}/")
        .replace("172.28.0.12:", f"{controller}:")
        for b in blocks
    ]


def test_the_readme_rest_examples_work_as_printed(cluster: Path, repo: Path) -> None:
    script, metrics = readme_rest_examples(repo)
    assert script.count("curl ") == 4  # nodes, submit, accounting, the refusal
    env = {**os.environ, "PYTHONPATH": str(GENERATOR)}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cluster, capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # three JSON answers one after the other (curl adds no newline), then the refusal's code
    text, pos, answers = done.stdout, 0, []
    decoder = json.JSONDecoder()
    for _ in range(3):
        while text[pos].isspace():
            pos += 1
        answer, pos = decoder.raw_decode(text, pos)
        answers.append(answer)
    nodes, submitted, accounting = answers
    assert {n["name"] for n in nodes["nodes"]} == {"node1", "node2"}
    assert submitted.get("job_id") and not submitted.get("errors"), submitted
    assert "jobs" in accounting and not accounting.get("errors"), accounting
    assert text[pos:].strip() == "401", text[pos:]
    scraped = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", metrics],
        cwd=cluster, capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert scraped.returncode == 0 and "slurm_nodes" in scraped.stdout, scraped.stderr


def rest_health() -> str:
    return docker("inspect", "-f", "{{.State.Health.Status}}", REST).stdout.strip()


def test_a_crash_of_either_daemon_restarts_the_container_and_a_stop_is_clean(
    cluster: Path,
) -> None:
    tok = token(cluster, "--user", USER)
    for daemon in ("slurmrestd", "nginx"):
        before = started_at(REST)
        docker("exec", REST, "sh", "-c", f"kill -KILL $(pidof {daemon})")
        wait_for(
            f"{REST} restarted after {daemon} died",
            lambda was=before: started_at(REST) != was,
            timeout=30,
        )
        wait_for("healthy again", lambda: rest_health() == "healthy", timeout=90)
        assert request(f"/slurm/{API}/nodes", tok)[0] == 200, daemon
    # `docker stop`: tini hands SIGTERM to both daemons, both end well within the grace period
    since, t0 = str(int(time.time())), time.monotonic()
    docker("stop", REST)
    took = time.monotonic() - t0
    code = docker("inspect", "-f", "{{.State.ExitCode}}", REST).stdout.strip()
    assert took < 8 and code != "137", (took, code)  # 137: killed at the end of the grace period
    logs = docker("logs", "--since", since, REST)
    assert "exited (" not in logs.stdout + logs.stderr  # a stop, not a daemon lost
    docker("start", REST)
    wait_for("healthy after a start", lambda: rest_health() == "healthy", timeout=90)
    print(f"docker stop took {took:.1f} s, exit code {code}")


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
