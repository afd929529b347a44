"""The AWS adapter and `hpcstack aws ...` against moto, in a fixed region, errors included."""

from __future__ import annotations

import base64
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from click.testing import CliRunner
from moto import mock_aws

from hpcstack.cli import aws as cli_aws
from hpcstack.cli.main import cli
from hpcstack.definition.load import load_stack
from hpcstack.errors import OutputError, StateError
from hpcstack.plan.topology import Plan, make_plan
from hpcstack.run.aws import (
    Aws,
    AwsCredentialsError,
    AwsError,
    AwsNotFoundError,
    AwsPermissionError,
    AwsRegionError,
    AwsThrottledError,
    caller_cidr,
    normalise_cidr,
)

pytestmark = pytest.mark.aws

REGION = "eu-west-1"
REPO = Path(__file__).resolve().parents[1]
STACK = REPO / "stack.yaml"


@pytest.fixture(autouse=True)
def isolated_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real AWS config, no metadata service: nothing leaves this machine."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    empty = tmp_path / "aws-empty-config"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def plan() -> Plan:
    return make_plan(load_stack(STACK))


@pytest.fixture
def mocked() -> Iterator[None]:
    with mock_aws():
        yield


def _ami(ec2: Any) -> str:
    return str(ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"])


def _tags(cluster: str, role: str) -> list[dict[str, Any]]:
    return [
        {
            "ResourceType": "instance",
            "Tags": [
                {"Key": "hpcstack:cluster", "Value": cluster},
                {"Key": "hpcstack:role", "Value": role},
                {"Key": "Name", "Value": f"{cluster}-{role}"},
            ],
        }
    ]


def make_cluster(cluster: str = "hpcstack", region: str = REGION) -> dict[str, str]:
    """What terraform/aws makes, in miniature: tagged groups and instances."""
    ec2 = boto3.client("ec2", region_name=region)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24")["Subnet"]["SubnetId"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    groups = {}
    for role in ("bastion", "controller"):
        gid = ec2.create_security_group(GroupName=f"{cluster}-{role}", Description=role, VpcId=vpc)[
            "GroupId"
        ]
        ec2.create_tags(
            Resources=[gid],
            Tags=[
                {"Key": "hpcstack:cluster", "Value": cluster},
                {"Key": "hpcstack:role", "Value": role},
            ],
        )
        groups[role] = gid
    ami = _ami(ec2)
    bastion = ec2.run_instances(
        ImageId=ami,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        NetworkInterfaces=[
            {
                "DeviceIndex": 0,
                "SubnetId": public,
                "AssociatePublicIpAddress": True,
                "Groups": [groups["bastion"]],
            }
        ],
        TagSpecifications=_tags(cluster, "bastion"),
    )["Instances"][0]
    controller = ec2.run_instances(
        ImageId=ami,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.medium",
        SubnetId=private,
        PrivateIpAddress="10.0.1.10",
        SecurityGroupIds=[groups["controller"]],
        TagSpecifications=_tags(cluster, "controller"),
    )["Instances"][0]
    return {
        "bastion": bastion["InstanceId"],
        "controller": controller["InstanceId"],
        "bastion_sg": groups["bastion"],
        "controller_sg": groups["controller"],
    }


class _Raw:
    """Enough of a urllib3 response for botocore to parse an injected error."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def ec2_error(code: str, status: int) -> AWSResponse:
    body = (
        f"<Response><Errors><Error><Code>{code}</Code><Message>injected {code}</Message>"
        "</Error></Errors><RequestID>req-1</RequestID></Response>"
    ).encode()
    return AWSResponse("https://ec2.eu-west-1.amazonaws.com/", status, {}, _Raw(body))


def inject(aws: Aws, event: str, responses: list[Any]) -> list[int]:
    """Answer the next calls of `event` with `responses` (then let moto answer); counts calls."""
    calls: list[int] = []

    def handler(**_: Any) -> Any:
        calls.append(1)
        if responses:
            item = responses.pop(0)
            if isinstance(item, Exception):
                raise item
            return item
        return None

    aws.client("ec2").meta.events.register_first(f"before-send.ec2.{event}", handler)
    return calls


# --- finding instances -------------------------------------------------------------------


def test_instances_found_by_tags_other_clusters_ignored(mocked: None) -> None:
    ids = make_cluster()
    make_cluster(cluster="other")
    found = Aws(REGION).instances("hpcstack")
    assert [(i.role, i.instance_id) for i in found] == [
        ("bastion", ids["bastion"]),
        ("controller", ids["controller"]),
    ]
    controller = Aws(REGION).instance("hpcstack", "controller")
    assert controller.private_ip == "10.0.1.10"
    assert controller.public_ip == ""
    assert controller.state == "running"
    assert Aws(REGION).instance("hpcstack", "bastion").public_ip


def test_instance_not_found_says_what_to_do(mocked: None) -> None:
    with pytest.raises(AwsNotFoundError) as exc:
        Aws(REGION).instance("hpcstack", "controller")
    assert "terraform apply" in str(exc.value)
    assert REGION in str(exc.value)


def test_wrong_region_finds_nothing_and_names_the_region(mocked: None) -> None:
    make_cluster(region=REGION)
    with pytest.raises(AwsNotFoundError) as exc:
        Aws("us-east-1").instance("hpcstack", "bastion")
    assert "us-east-1" in str(exc.value)
    assert "--region" in str(exc.value)


def test_unknown_region_is_refused_before_any_call() -> None:
    with pytest.raises(AwsRegionError, match="unknown AWS region 'eu-west-9'"):
        Aws("eu-west-9")


def test_no_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    with (
        mock_aws(config={"core": {"mock_credentials": False}}),
        pytest.raises(AwsCredentialsError) as exc,
    ):
        Aws(REGION).instances("hpcstack")
    assert "aws configure" in str(exc.value)
    assert exc.value.command == ["ec2", "DescribeInstances"]


def test_unknown_profile_is_a_credentials_error() -> None:
    with pytest.raises(AwsCredentialsError, match="profile 'nope' not found"):
        Aws(REGION, profile="nope")


def test_throttling_is_retried_then_succeeds(mocked: None) -> None:
    make_cluster()
    aws = Aws(REGION, max_attempts=4)
    calls = inject(
        aws,
        "DescribeInstances",
        [ec2_error("RequestLimitExceeded", 503), ec2_error("RequestLimitExceeded", 503)],
    )
    assert len(aws.instances("hpcstack")) == 2
    assert len(calls) == 3  # two throttled attempts, then moto answered


def test_throttling_that_never_stops_is_reported(mocked: None) -> None:
    aws = Aws(REGION, max_attempts=2)
    calls = inject(aws, "DescribeInstances", [ec2_error("Throttling", 400)] * 5)
    with pytest.raises(AwsThrottledError) as exc:
        aws.instances("hpcstack")
    assert len(calls) == 2
    assert "throttling" in str(exc.value)
    assert "Throttling" in exc.value.stderr  # the raw code is kept


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("UnauthorizedOperation", AwsPermissionError),
        ("AuthFailure", AwsCredentialsError),
        ("SomethingNew", AwsError),
    ],
)
def test_client_errors_are_mapped(mocked: None, code: str, kind: type[AwsError]) -> None:
    aws = Aws(REGION, max_attempts=1)
    inject(aws, "DescribeInstances", [ec2_error(code, 403)])
    with pytest.raises(kind) as exc:
        aws.instances("hpcstack")
    assert code in exc.value.stderr


def test_unreachable_endpoint_is_a_region_error(mocked: None) -> None:
    aws = Aws(REGION, max_attempts=1)
    failure = EndpointConnectionError(endpoint_url="https://ec2.eu-west-1.amazonaws.com/")
    inject(aws, "DescribeInstances", [failure])
    with pytest.raises(AwsRegionError, match="cannot reach AWS in region 'eu-west-1'"):
        aws.instances("hpcstack")


# --- allow-ip ----------------------------------------------------------------------------


def _bastion_ingress(group_id: str) -> set[tuple[str, int, str]]:
    ec2 = boto3.client("ec2", region_name=REGION)
    perms = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return {
        (p["IpProtocol"], p["FromPort"], r["CidrIp"])
        for p in perms["IpPermissions"]
        for r in p.get("IpRanges", [])
    }


def test_allow_ip_is_idempotent_and_revocable(mocked: None, plan: Plan) -> None:
    ids = make_cluster()
    aws = Aws(REGION)
    first = cli_aws.allow_ip(aws, plan, "198.51.100.7")
    assert [changed for _, changed in first] == [True, True]
    expected = {("tcp", 22, "198.51.100.7/32"), ("udp", 51820, "198.51.100.7/32")}
    assert _bastion_ingress(ids["bastion_sg"]) == expected
    again = cli_aws.allow_ip(aws, plan, "198.51.100.7/32")
    assert [changed for _, changed in again] == [False, False]
    assert _bastion_ingress(ids["bastion_sg"]) == expected
    assert _bastion_ingress(ids["controller_sg"]) == set()  # the controller is never opened
    gone = cli_aws.allow_ip(aws, plan, "198.51.100.7/32", revoke=True)
    assert [changed for _, changed in gone] == [True, True]
    assert _bastion_ingress(ids["bastion_sg"]) == set()
    assert [c for _, c in cli_aws.allow_ip(aws, plan, "198.51.100.7", revoke=True)] == [
        False,
        False,
    ]


def test_allow_ip_defaults_to_the_callers_address(mocked: None, plan: Plan) -> None:
    ids = make_cluster()
    cli_aws.allow_ip(Aws(REGION), plan, None, lookup=lambda: "203.0.113.9\n".strip())
    assert ("tcp", 22, "203.0.113.9/32") in _bastion_ingress(ids["bastion_sg"])


def test_allow_ip_without_a_bastion_group(mocked: None, plan: Plan) -> None:
    with pytest.raises(AwsNotFoundError, match="no bastion security group"):
        cli_aws.allow_ip(Aws(REGION), plan, "198.51.100.7")


def test_cidr_checks() -> None:
    assert normalise_cidr("198.51.100.7") == "198.51.100.7/32"
    with pytest.raises(AwsError, match="whole internet"):
        normalise_cidr("0.0.0.0/0")
    with pytest.raises(AwsError, match="not an IPv4"):
        normalise_cidr("example")
    with pytest.raises(AwsError, match="not a public address"):
        caller_cidr(lambda: "10.1.2.3")
    with pytest.raises(AwsError, match="not an IPv4 address"):
        caller_cidr(lambda: "<html>")


def test_allow_ip_cli(mocked: None) -> None:
    ids = make_cluster()
    runner = CliRunner()
    args = ["aws", "allow-ip", "198.51.100.8/32", "-c", str(STACK), "--region", REGION]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "allowed: tcp/22" in result.output
    result = runner.invoke(cli, args)
    assert "unchanged: udp/51820" in result.output
    assert ("udp", 51820, "198.51.100.8/32") in _bastion_ingress(ids["bastion_sg"])


# --- status and ssh-config ---------------------------------------------------------------


def test_status_cli_lists_instances(mocked: None) -> None:
    ids = make_cluster()
    result = CliRunner().invoke(cli, ["aws", "status", "-c", str(STACK), "--region", REGION])
    assert result.exit_code == 0, result.output
    assert ids["controller"] in result.output
    assert "10.0.1.10" in result.output
    assert "tunnel endpoint:" in result.output


def test_status_cli_without_instances_fails_clearly(mocked: None) -> None:
    result = CliRunner().invoke(cli, ["aws", "status", "-c", str(STACK), "--region", REGION])
    assert result.exit_code == 1
    assert "terraform apply" in result.output


def test_ssh_config_uses_proxyjump(mocked: None, tmp_path: Path) -> None:
    make_cluster()
    bastion_ip = Aws(REGION).instance("hpcstack", "bastion").public_ip
    target = tmp_path / "ssh_config"
    args = ["ssh-config", "-c", str(STACK), "--region", REGION, "-o", str(target)]
    result = CliRunner().invoke(cli, [*args, "--identity", "~/.ssh/id_ed25519"])
    assert result.exit_code == 0, result.output
    text = target.read_text()
    assert f"Host hpcstack-bastion\n  HostName {bastion_ip}\n" in text
    assert "Host hpcstack-controller\n  HostName 10.0.1.10\n  Port 22\n" in text
    assert "  ProxyJump hpcstack-bastion\n" in text
    assert "StrictHostKeyChecking yes" in text
    assert "PasswordAuthentication no" in text


# --- secrets through SSM -----------------------------------------------------------------


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_bytes(data)
    path.chmod(mode)


def test_push_then_pull_round_trips_bytes_and_modes(mocked: None, tmp_path: Path) -> None:
    src = tmp_path / "a" / "secrets"
    munge = bytes(range(256)) * 4  # binary, 1 KiB like a real munge key
    _write(src / "munge.key", munge, 0o400)
    _write(src / "wireguard" / "local.key", b"wg-private-key\n", 0o600)
    aws = Aws(REGION)
    assert cli_aws.push_secrets(aws, "hpcstack", src) == ["munge.key", "wireguard/local.key"]

    ssm = boto3.client("ssm", region_name=REGION)
    param = ssm.get_parameter(Name="/hpcstack/hpcstack/munge.key")["Parameter"]
    assert param["Type"] == "SecureString"
    raw = ssm.get_parameter(Name="/hpcstack/hpcstack/munge.key", WithDecryption=True)
    assert base64.b64decode(raw["Parameter"]["Value"]) == munge

    dst = tmp_path / "b" / "secrets"
    result = cli_aws.pull_secrets(aws, "hpcstack", dst)
    assert result == [("munge.key", "created"), ("wireguard/local.key", "created")]
    assert (dst / "munge.key").read_bytes() == munge
    assert stat.S_IMODE((dst / "munge.key").stat().st_mode) == 0o400
    assert stat.S_IMODE((dst / "wireguard" / "local.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(dst.stat().st_mode) == 0o700
    assert stat.S_IMODE((dst / "wireguard").stat().st_mode) == 0o700
    again = cli_aws.pull_secrets(aws, "hpcstack", dst)
    assert [verb for _, verb in again] == ["unchanged", "unchanged"]


def test_pull_never_overwrites_a_different_secret_without_force(
    mocked: None, tmp_path: Path
) -> None:
    src = tmp_path / "a" / "secrets"
    _write(src / "munge.key", b"from-aws", 0o400)
    aws = Aws(REGION)
    cli_aws.push_secrets(aws, "hpcstack", src)
    dst = tmp_path / "b" / "secrets"
    _write(dst / "munge.key", b"local-and-different", 0o600)
    with pytest.raises(OutputError, match=r"munge\.key"):
        cli_aws.pull_secrets(aws, "hpcstack", dst)
    assert (dst / "munge.key").read_bytes() == b"local-and-different"
    assert cli_aws.pull_secrets(aws, "hpcstack", dst, force=True) == [("munge.key", "updated")]
    assert (dst / "munge.key").read_bytes() == b"from-aws"


def test_pull_only_selected_paths(mocked: None, tmp_path: Path) -> None:
    src = tmp_path / "a" / "secrets"
    _write(src / "munge.key", b"m", 0o400)
    _write(src / "wireguard" / "local.key", b"l", 0o600)
    _write(src / "wireguard" / "cloud.key", b"c", 0o600)
    aws = Aws(REGION)
    cli_aws.push_secrets(aws, "hpcstack", src)
    dst = tmp_path / "gpu" / "secrets"
    got = cli_aws.pull_secrets(aws, "hpcstack", dst, only=["munge.key", "wireguard/local*"])
    assert [rel for rel, _ in got] == ["munge.key", "wireguard/local.key"]
    assert not (dst / "wireguard" / "cloud.key").exists()


def test_pull_with_nothing_pushed(mocked: None, tmp_path: Path) -> None:
    with pytest.raises(StateError, match="push-secrets"):
        cli_aws.pull_secrets(Aws(REGION), "hpcstack", tmp_path / "secrets")


def test_push_without_secrets_dir(mocked: None, tmp_path: Path) -> None:
    with pytest.raises(StateError, match="hpcstack generate"):
        cli_aws.push_secrets(Aws(REGION), "hpcstack", tmp_path / "secrets")


def test_secret_commands_cli(mocked: None, tmp_path: Path) -> None:
    here = tmp_path / "here"
    _write(here / "secrets" / "munge.key", b"k" * 1024, 0o400)
    runner = CliRunner()
    common = ["-c", str(STACK), "--region", REGION]
    result = runner.invoke(cli, ["aws", "push-secrets", *common, "-o", str(here)])
    assert result.exit_code == 0, result.output
    assert "pushed: /hpcstack/hpcstack/munge.key" in result.output
    there = tmp_path / "there"
    result = runner.invoke(cli, ["aws", "pull-secrets", *common, "-o", str(there)])
    assert result.exit_code == 0, result.output
    assert "created: secrets/munge.key" in result.output
    assert (there / "secrets" / "munge.key").read_bytes() == b"k" * 1024
