"""Secrets through SSM, per site, against moto; the IAM policies a GPU host gets, evaluated.

moto does not evaluate resource ARNs for SSM (every request is checked against "*"), so the
policies are evaluated with moto's own IAM statement matcher against the ARN AWS authorises
each call on (Service Authorization Reference, "Actions defined by AWS Systems Manager"):
GetParametersByPath -> the path's own ARN, GetParameter(s) -> each parameter's ARN,
DescribeParameters -> "*" (no resource-level permissions). A botocore hook applies that check
to every SSM call the code makes, so `pull-secrets` runs as the GPU host's identity would.
"""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner
from moto import mock_aws
from moto.iam.access_control import IAMPolicy, PermissionResult

from aws_cluster import isolated_aws_env
from hpcstack.cli.main import cli
from hpcstack.errors import OutputError, StateError
from hpcstack.operate import aws_secrets
from hpcstack.operate.generate import generate
from hpcstack.output.state import load_generated
from hpcstack.plan.topology import Plan
from hpcstack.render.terraform import site_secrets_policy
from hpcstack.run.aws import Aws, AwsPermissionError

pytestmark = pytest.mark.aws
assert isolated_aws_env  # autouse: every test here runs with no real AWS config

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's account
REPO = Path(__file__).resolve().parents[1]
STACK = REPO / "stack.yaml"


@pytest.fixture
def mocked() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    out = tmp_path / "laptop"
    generate(STACK, out)
    return out


def _arn(name: str) -> str:
    return f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{name}"


def resources_of(operation: str, params: dict[str, Any]) -> list[str]:
    """The ARNs AWS authorises this SSM call on."""
    if operation == "GetParametersByPath":
        return [_arn(params["Path"].rstrip("/"))]
    if operation == "GetParameter":
        return [_arn(params["Name"])]
    if operation == "GetParameters":
        return [_arn(n) for n in params["Names"]]
    if operation == "DescribeParameters":
        return ["*"]
    raise AssertionError(f"unexpected SSM call {operation}")


def permitted(policy: dict[str, Any], action: str, resource: str) -> bool:
    result = IAMPolicy(json.dumps(policy)).is_action_permitted(action, resource)
    return bool(result == PermissionResult.PERMITTED)


def act_as(aws: Aws, policy: dict[str, Any]) -> list[str]:
    """Make every SSM call of `aws` pass `policy` first, as IAM would; returns calls seen."""
    seen: list[str] = []

    def check(params: dict[str, Any], model: Any, **_: Any) -> None:
        for resource in resources_of(model.name, params):
            seen.append(f"{model.name} {resource}")
            if not permitted(policy, f"ssm:{model.name}", resource):
                raise ClientError(
                    {"Error": {"Code": "AccessDeniedException", "Message": resource}}, model.name
                )

    aws.client("ssm").meta.events.register("provide-client-params.ssm.*", check)
    return seen


# --- the policy document ----------------------------------------------------------------


def _plan(generated: Path) -> Plan:
    return load_generated(generated)


def test_gpu_host_policy_allows_its_path_itself_and_describe_on_star(generated: Path) -> None:
    """The findings: GetParametersByPath authorised only on `<path>/*` (which does not match the
    path) and DescribeParameters on a path ARN (it takes "*"): the GPU host got AccessDenied."""
    policy = site_secrets_policy(_plan(generated), "local")
    own = "/hpcstack/hpcstack/sites/local"
    assert permitted(policy, "ssm:GetParametersByPath", _arn(own))
    assert permitted(policy, "ssm:DescribeParameters", "*")
    assert permitted(policy, "ssm:GetParameter", _arn("/hpcstack/hpcstack/shared/munge.key"))
    assert permitted(policy, "ssm:GetParameter", _arn(f"{own}/wireguard/node1.key"))
    # and never what the hub or another site holds
    for name in (
        "/hpcstack/hpcstack/controller/wireguard/hub.key",
        "/hpcstack/hpcstack/controller/db_password",
        "/hpcstack/hpcstack/controller/grafana_admin_password",
        "/hpcstack/hpcstack/sites/other/wireguard/node9.key",
        "/hpcstack/hpcstack/sites/local-evil/x",
    ):
        assert not permitted(policy, "ssm:GetParameter", _arn(name)), name
    assert not permitted(policy, "ssm:GetParametersByPath", _arn("/hpcstack/hpcstack"))
    assert not permitted(policy, "ssm:GetParametersByPath", _arn("/hpcstack/hpcstack/controller"))
    assert not permitted(policy, "ssm:PutParameter", _arn(f"{own}/x"))


def test_old_policy_shape_was_denied() -> None:
    """What docs/aws.md used to grant, for the record: the path ARN with `/*` only."""
    old = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["ssm:GetParametersByPath", "ssm:DescribeParameters"],
                "Resource": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/hpcstack/hpcstack/*",
            }
        ],
    }
    assert not permitted(old, "ssm:GetParametersByPath", _arn("/hpcstack/hpcstack"))
    assert not permitted(old, "ssm:DescribeParameters", "*")


def test_policy_with_customer_managed_key_scopes_decrypt(tmp_path: Path) -> None:
    text = STACK.read_text().replace('  key_name: ""', '  key_name: ""\n  secrets_kms_key: true')
    (tmp_path / "stack.yaml").write_text(text)
    generate(tmp_path / "stack.yaml", tmp_path / "out")
    policy = site_secrets_policy(load_generated(tmp_path / "out"), "local")
    [kms] = [s for s in policy["Statement"] if s["Action"] == ["kms:Decrypt"]]
    cond = kms["Condition"]
    assert cond["StringEquals"]["kms:ViaService"] == f"ssm.{REGION}.amazonaws.com"
    assert cond["ForAnyValue:StringEquals"]["kms:ResourceAliases"] == (
        "alias/hpcstack-hpcstack-secrets"
    )
    contexts = cond["StringLike"]["kms:EncryptionContext:PARAMETER_ARN"]
    assert all("/controller" not in c for c in contexts)
    assert any(c.endswith("/sites/local/*") for c in contexts)
    # the rendered file Terraform reads is this same document
    rendered = json.loads((tmp_path / "out/terraform/aws/policies/local.json").read_text())
    assert rendered == policy


# --- push and pull ----------------------------------------------------------------------


def _names() -> dict[str, str]:
    ssm = boto3.client("ssm", region_name=REGION)
    pages = ssm.get_paginator("describe_parameters").paginate()
    return {p["Name"]: p.get("Description", "") for page in pages for p in page["Parameters"]}


def test_push_puts_each_secret_under_who_needs_it(mocked: None, generated: Path) -> None:
    pushed = aws_secrets.push_secrets(Aws(REGION), _plan(generated), generated)
    names = _names()
    assert {p.name for p in pushed} == set(names)
    root = "/hpcstack/hpcstack"
    assert f"{root}/shared/munge.key" in names
    assert f"{root}/sites/local/wireguard/node1.key" in names
    assert f"{root}/sites/local/wireguard/pub/hub.pub" in names
    assert f"{root}/controller/wireguard/hub.key" in names
    assert f"{root}/controller/db_password" in names
    local = [n for n in names if n.startswith(f"{root}/sites/local/")]
    assert not any(n.endswith(("hub.key", "db_password", "grafana_admin_password")) for n in local)
    raw = boto3.client("ssm", region_name=REGION).get_parameter(
        Name=f"{root}/shared/munge.key", WithDecryption=True
    )
    munge = (generated / "secrets" / "munge.key").read_bytes()
    assert base64.b64decode(raw["Parameter"]["Value"]) == munge
    assert names[f"{root}/shared/munge.key"] == "hpcstack mode=400"


def test_gpu_host_pulls_its_own_secrets_under_its_policy(
    mocked: None, generated: Path, tmp_path: Path
) -> None:
    plan = _plan(generated)
    aws_secrets.push_secrets(Aws(REGION), plan, generated)
    gpu_host = Aws(REGION)
    seen = act_as(gpu_host, site_secrets_policy(plan, "local"))
    there = tmp_path / "gpu-host"
    result = aws_secrets.pull_secrets(gpu_host, plan, there, "local")
    got = {rel for rel, _ in result}
    assert {"munge.key", "wireguard/node1.key", "wireguard/node2.key"} <= got
    assert "wireguard/hub.key" not in got and "db_password" not in got
    assert any(s.startswith("GetParametersByPath ") for s in seen)
    secrets = there / "secrets"
    assert (secrets / "munge.key").read_bytes() == (generated / "secrets/munge.key").read_bytes()
    assert stat.S_IMODE((secrets / "munge.key").stat().st_mode) == 0o400
    assert stat.S_IMODE((secrets / "wireguard/node1.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    assert stat.S_IMODE((secrets / "wireguard").stat().st_mode) == 0o700
    again = aws_secrets.pull_secrets(gpu_host, plan, there, "local")
    assert {verb for _, verb in again} == {"unchanged"}
    # The same identity asking for the controller's secrets is refused by IAM.
    with pytest.raises(AwsPermissionError):
        aws_secrets.pull_secrets(gpu_host, plan, tmp_path / "greedy", "cloud")
    with pytest.raises(AwsPermissionError):
        gpu_host.secret("/hpcstack/hpcstack/controller/db_password")


def test_push_uses_the_customer_managed_key_when_asked(tmp_path: Path, mocked: None) -> None:
    text = STACK.read_text().replace('  key_name: ""', '  key_name: ""\n  secrets_kms_key: true')
    (tmp_path / "stack.yaml").write_text(text)
    out = tmp_path / "out"
    generate(tmp_path / "stack.yaml", out)
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/hpcstack-hpcstack-secrets", TargetKeyId=key)
    aws_secrets.push_secrets(Aws(REGION), load_generated(out), out)
    ssm = boto3.client("ssm", region_name=REGION)
    found = ssm.describe_parameters()["Parameters"]
    assert found and {p["KeyId"] for p in found} == {"alias/hpcstack-hpcstack-secrets"}


def test_pull_never_overwrites_a_different_secret_without_force(
    mocked: None, generated: Path, tmp_path: Path
) -> None:
    plan = _plan(generated)
    aws_secrets.push_secrets(Aws(REGION), plan, generated)
    there = tmp_path / "gpu"
    (there / "secrets").mkdir(parents=True, mode=0o700)
    (there / "secrets" / "munge.key").write_bytes(b"local-and-different")
    with pytest.raises(OutputError, match=r"munge\.key"):
        aws_secrets.pull_secrets(Aws(REGION), plan, there, "local")
    assert (there / "secrets" / "munge.key").read_bytes() == b"local-and-different"
    forced = dict(aws_secrets.pull_secrets(Aws(REGION), plan, there, "local", force=True))
    assert forced["munge.key"] == "updated"
    munge = (generated / "secrets" / "munge.key").read_bytes()
    assert (there / "secrets" / "munge.key").read_bytes() == munge


def test_pull_only_selected_paths(mocked: None, generated: Path, tmp_path: Path) -> None:
    plan = _plan(generated)
    aws_secrets.push_secrets(Aws(REGION), plan, generated)
    got = aws_secrets.pull_secrets(Aws(REGION), plan, tmp_path / "g", "local", only=["munge.key"])
    assert [rel for rel, _ in got] == ["munge.key"]


def test_pull_with_nothing_pushed(mocked: None, generated: Path, tmp_path: Path) -> None:
    with pytest.raises(StateError, match="push-secrets"):
        aws_secrets.pull_secrets(Aws(REGION), _plan(generated), tmp_path, "local")


def test_pull_for_an_unknown_site(mocked: None, generated: Path, tmp_path: Path) -> None:
    with pytest.raises(StateError, match="no site named 'nope'"):
        aws_secrets.pull_secrets(Aws(REGION), _plan(generated), tmp_path, "nope")


def test_push_without_secrets_dir(mocked: None, generated: Path, tmp_path: Path) -> None:
    with pytest.raises(StateError, match="hpcstack generate"):
        aws_secrets.push_secrets(Aws(REGION), _plan(generated), tmp_path)


def test_secret_commands_cli(mocked: None, generated: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["aws", "push-secrets", "-d", str(generated), "--region", REGION])
    assert result.exit_code == 0, result.output
    assert "pushed: /hpcstack/hpcstack/shared/munge.key" in result.output
    # A GPU host: the same generated tree, no secrets yet.
    there = tmp_path / "there"
    generate(STACK, there)
    for p in sorted((there / "secrets").rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    args = ["aws", "pull-secrets", "-d", str(there), "--region", REGION]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "created: secrets/munge.key" in result.output
    assert "hub.key" not in result.output
