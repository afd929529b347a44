"""The REST gateway (nginx verifying every token before slurmrestd) and the token Prometheus
scrapes Slurm's /metrics with: what the generator writes, and the image scripts that turn the
secrets into files, run here in bash with the contract pointed at a temporary directory."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from hpcstack import contract
from hpcstack.definition.model import Stack
from hpcstack.plan.topology import Plan, make_plan
from hpcstack.render import render_all
from hpcstack.render.compose import compose_site
from hpcstack.render.prometheus import prometheus_config

SITES = [
    {"name": "cloud", "role": "cloud", "subnet": "172.28.0.0/24"},
    {
        "name": "local",
        "role": "local",
        "subnet": "172.28.1.0/24",
        "nodes": [{"prefix": "node", "count": 2, "cpus": 2}],
    },
]


def plan_for(**extra: Any) -> Plan:
    return make_plan(Stack.model_validate({"sites": SITES, **extra}))


def services(plan: Plan) -> dict[str, dict[str, Any]]:
    """Every service of every site, by `<site>/<service>`."""
    return {
        f"{site.name}/{name}": svc
        for site in plan.sites
        for name, svc in compose_site(plan, site)["services"].items()
    }


def artifacts(plan: Plan) -> dict[str, str]:
    return {a.path: a.content for a in render_all(plan)}


# --- compose ---------------------------------------------------------------------------------


def test_the_jwt_key_goes_to_the_verifiers_only() -> None:
    plan = plan_for()  # secrets are {"source", "target"} or a bare name (Grafana's)
    holders = sorted(
        name
        for name, svc in services(plan).items()
        if "jwt_key" in (s if isinstance(s, str) else s["source"] for s in svc.get("secrets", []))
    )
    assert holders == ["cloud/slurmctld", "cloud/slurmdbd", "cloud/slurmrestd"]
    rest = services(plan)["cloud/slurmrestd"]
    assert rest["secrets"] == [{"source": "jwt_key", "target": contract.JWT_KEY_SECRET}]
    assert "environment" not in rest  # never a key in an environment block
    assert rest["ports"] == [f"127.0.0.1:6820:{contract.SLURMRESTD_PORT}"]


def test_the_metrics_token_volume_is_shared_by_slurmctld_and_prometheus_only() -> None:
    plan = plan_for()
    mounts = {
        name: [v for v in svc.get("volumes", []) if v.startswith(contract.METRICS_TOKEN_VOLUME)]
        for name, svc in services(plan).items()
    }
    users = {name: m for name, m in mounts.items() if m}
    token_dir = f"{contract.METRICS_TOKEN_VOLUME}:{contract.METRICS_TOKEN_DIR}"
    assert users == {"cloud/slurmctld": [token_dir], "cloud/prometheus": [f"{token_dir}:ro"]}


def test_without_monitoring_no_token_is_minted() -> None:
    plan = plan_for(monitoring={"enabled": False})
    assert not any(
        v.startswith(contract.METRICS_TOKEN_VOLUME)
        for svc in services(plan).values()
        for v in svc.get("volumes", [])
    )
    # /metrics stays protected: only root's and SlurmUser's tokens are good for it then
    assert f"MetricsAuthUsers={contract.METRICS_USER}\n" in artifacts(plan)["slurm/slurm.conf"]


# --- slurm.conf and prometheus.yml ------------------------------------------------------------


def test_slurm_checks_the_metrics_token_with_the_cluster_key() -> None:
    conf = artifacts(plan_for())["slurm/slurm.conf"]
    assert f"\nMetricsAuthUsers={contract.METRICS_USER}\n" in conf
    assert f"\nSlurmctldHttpAuthParameters=jwt_key={contract.JWT_KEY_PATH}\n" in conf
    assert f"\nAuthAltParameters=jwt_key={contract.JWT_KEY_PATH}\n" in conf


def test_slurm_24_11_has_no_metrics_auth() -> None:
    plan = plan_for(cluster={"slurm_release": "24.11"})
    conf = artifacts(plan)["slurm/slurm.conf"]
    assert "MetricsAuthUsers" not in conf and "SlurmctldHttpAuthParameters" not in conf
    assert "authorization" not in str(prometheus_config(plan))


def test_prometheus_scrapes_slurmctld_with_the_token_file() -> None:
    jobs = {j["job_name"]: j for j in prometheus_config(plan_for())["scrape_configs"]}
    assert jobs["slurmctld"]["authorization"] == {
        "type": "Bearer",
        "credentials_file": contract.METRICS_TOKEN_PATH,
    }
    assert [name for name, job in jobs.items() if "authorization" in job] == ["slurmctld"]


# --- the gateway's nginx configuration --------------------------------------------------------


def nginx_directives(text: str) -> list[str]:
    lines = (re.sub(r"#.*", "", ln).strip() for ln in text.splitlines())
    return [ln for ln in lines if ln]


def test_the_gateway_config_verifies_hs256_in_the_slurm_header_and_proxies_to_the_socket() -> None:
    arts = artifacts(plan_for())
    conf = nginx_directives(arts["images/slurm/rest-gateway.conf"])
    assert f"COPY rest-gateway.conf {contract.REST_GATEWAY_CONF}" in arts["images/slurm/Dockerfile"]
    for line in (
        "load_module modules/ngx_http_auth_jwt_module.so;",
        f"user {contract.REST_GATEWAY_USER};",
        f"server unix:{contract.REST_SOCKET};",
        f"listen {contract.SLURMRESTD_PORT};",
        f"include {contract.REST_GATEWAY_KEY_CONF};",
        "auth_jwt_enabled on;",
        "auth_jwt_algorithm HS256;",
        f"auth_jwt_location HEADER={contract.REST_TOKEN_HEADER};",
        "auth_jwt_redirect off;",
        # slurmrestd sees the verified header alone
        f"proxy_set_header {contract.REST_TOKEN_HEADER} $http_x_slurm_user_token;",
        'proxy_set_header Authorization "";',
        "access_log /dev/stdout combined;",
        "error_log stderr notice;",
    ):
        assert line in conf, line
    # the module passes OPTIONS through unchecked: the gateway answers it itself
    assert conf[conf.index("if ($request_method = OPTIONS) {") + 1] == "return 405;"
    # one listener, one location: nothing reaches slurmrestd around the check
    assert sum(ln.startswith("listen ") for ln in conf) == 1
    assert [ln for ln in conf if ln.startswith("location ")] == ["location / {"]
    assert "auth_jwt_enabled off;" not in conf


# --- the image scripts, run here ------------------------------------------------------------


@pytest.fixture
def contract_dir(tmp_path: Path) -> Path:
    """contract.sh with every in-container path moved under tmp_path."""
    values = contract.shell_variables()
    for name in (
        "HPCSTACK_JWT_KEY_SECRET",
        "HPCSTACK_REST_GATEWAY_KEY_CONF",
        "HPCSTACK_METRICS_TOKEN_DIR",
        "HPCSTACK_METRICS_TOKEN_PATH",
    ):
        values[name] = str(tmp_path / values[name].lstrip("/"))
    lines = [f"{k}='{v}'" for k, v in sorted(values.items())]
    (tmp_path / "contract.sh").write_text("\n".join(lines) + "\n")
    return tmp_path


def image_script(name: str, tmp: Path) -> Path:
    text = artifacts(plan_for())[f"images/slurm/{name}"].replace(
        contract.CONTRACT_PATH, str(tmp / "contract.sh")
    )
    path = tmp / name
    path.write_text(text)
    return path


def shell_function(script: str, name: str) -> str:
    found = re.search(rf"^{name}\(\) {{\n.*?^}}\n", script, re.M | re.S)
    assert found, name
    return found.group(0)


def test_the_gateway_key_is_the_slurm_key_byte_for_byte(contract_dir: Path) -> None:
    entry = image_script("entrypoint.sh", contract_dir).read_text()
    key = bytes(range(256))[:16] + b"\n\x00 \xff" + os.urandom(12)  # NUL, newline, blank, high
    secret = contract_dir / contract.SECRETS_DIR.lstrip("/") / contract.JWT_KEY_SECRET
    secret.parent.mkdir(parents=True)
    secret.write_bytes(key)
    run = 'die() { echo "die: $*"; exit 1; }; . "$0/contract.sh"; {\n'
    run += shell_function(entry, "install_gateway_key") + "}\ninstall_gateway_key"
    subprocess.run(["bash", "-c", run, str(contract_dir)], check=True)
    conf = contract_dir / contract.REST_GATEWAY_KEY_CONF.lstrip("/")
    found = re.fullmatch(r'auth_jwt_key "([0-9a-f]+)";\n', conf.read_text())
    assert found and bytes.fromhex(found.group(1)) == key
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600  # root's, written under umask 077
    assert stat.S_IMODE(conf.parent.stat().st_mode) == 0o700
    secret.write_bytes(b"")
    empty = subprocess.run(["bash", "-c", run, str(contract_dir)], capture_output=True, text=True)
    assert empty.returncode == 1 and "JWT key missing" in empty.stdout


def fake_scontrol(bin_dir: Path, output: str, rc: int = 0) -> None:
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / "scontrol"
    tool.write_text(f"#!/bin/bash\necho \"$*\" >>\"$0.args\"\nprintf '%s' '{output}'\nexit {rc}\n")
    tool.chmod(0o755)


def minter(script: Path, bin_dir: Path, mode: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    argv = ["bash", str(script), mode]
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=60)


def jwt_ending_in(seconds: int) -> str:
    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    claims = {"sun": contract.METRICS_USER, "exp": int(time.time()) + seconds}
    return f"{part({'alg': 'HS256'})}.{part(claims)}.c2lnbmF0dXJl"


@pytest.fixture
def token_file(contract_dir: Path) -> Path:
    path = contract_dir / contract.METRICS_TOKEN_PATH.lstrip("/")
    path.parent.mkdir(parents=True)
    return path


def test_a_missing_token_is_minted_into_the_volume_and_never_printed(
    contract_dir: Path, token_file: Path
) -> None:
    script = image_script("metrics-token.sh", contract_dir)
    tok = jwt_ending_in(contract.METRICS_TOKEN_LIFESPAN_S)
    fake_scontrol(contract_dir / "bin", f"SLURM_JWT={tok}\n")
    done = minter(script, contract_dir / "bin", "--once")
    assert done.returncode == 0, done.stderr
    assert token_file.read_text() == tok
    assert tok not in done.stdout + done.stderr and tok.split(".")[2] not in done.stderr
    assert "no readable token" in done.stderr  # the reason, logged
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o644
    args = (contract_dir / "bin" / "scontrol.args").read_text().split()
    assert args == [
        "token",
        f"username={contract.METRICS_USER}",
        f"lifespan={contract.METRICS_TOKEN_LIFESPAN_S}",
    ]


def test_a_token_is_kept_until_30_days_before_it_ends(contract_dir: Path, token_file: Path) -> None:
    script = image_script("metrics-token.sh", contract_dir)
    new = jwt_ending_in(contract.METRICS_TOKEN_LIFESPAN_S)
    fake_scontrol(contract_dir / "bin", f"SLURM_JWT={new}\n")
    young = jwt_ending_in(contract.METRICS_TOKEN_RENEW_BEFORE_S + 86400)
    token_file.write_text(young)
    assert minter(script, contract_dir / "bin", "--once").returncode == 0
    assert token_file.read_text() == young  # (no slurmctld answers here: nothing refuses it)
    assert not (contract_dir / "bin" / "scontrol.args").exists()
    token_file.write_text(jwt_ending_in(contract.METRICS_TOKEN_RENEW_BEFORE_S - 86400))
    done = minter(script, contract_dir / "bin", "--once")
    assert done.returncode == 0 and token_file.read_text() == new
    assert "the token ends" in done.stderr


@pytest.mark.parametrize(
    ("output", "rc"),
    [("SLURM_JWT=abc\n", 1), ("scontrol: error: Invalid user\n", 0), ("SLURM_JWT=a b\n", 0)],
)
def test_a_failed_renewal_keeps_the_last_token(
    contract_dir: Path, token_file: Path, output: str, rc: int
) -> None:
    script = image_script("metrics-token.sh", contract_dir)
    token_file.write_text("previous")
    fake_scontrol(contract_dir / "bin", output, rc)
    assert minter(script, contract_dir / "bin", "--renew").returncode != 0
    assert token_file.read_text() == "previous"


def test_the_lifespan_leaves_time_for_renewal() -> None:
    renewals = contract.METRICS_TOKEN_RENEW_BEFORE_S // contract.METRICS_TOKEN_CHECK_S
    assert renewals >= 24 * 7  # a week of hourly tries before the old token ends
    assert contract.METRICS_TOKEN_LIFESPAN_S > 2 * contract.METRICS_TOKEN_RENEW_BEFORE_S
