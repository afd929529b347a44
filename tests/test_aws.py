"""The AWS adapter and `hpcstack aws status/endpoint/allow-ip/stop/start/ssh-config` against
moto, in a fixed region, errors included. Secrets: tests/test_aws_secrets.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.exceptions import EndpointConnectionError
from click.testing import CliRunner
from moto import mock_aws

from aws_cluster import REGION, ec2_error, inject, isolated_aws_env, make_cluster
from hpcstack.cli.main import cli
from hpcstack.definition.load import load_stack
from hpcstack.operate import aws_access
from hpcstack.operate.generate import generate
from hpcstack.plan.topology import Plan, make_plan
from hpcstack.run.aws import (
    Aws,
    AwsCredentialsError,
    AwsError,
    AwsNotFoundError,
    AwsPermissionError,
    AwsRegionError,
    AwsThrottledError,
)
from hpcstack.run.public_address import caller_cidr, normalise_cidr

pytestmark = pytest.mark.aws
assert isolated_aws_env  # autouse: every test here runs with no real AWS config

REPO = Path(__file__).resolve().parents[1]
STACK = REPO / "stack.yaml"


@pytest.fixture
def plan() -> Plan:
    return make_plan(load_stack(STACK))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory `hpcstack generate` wrote from the default stack.yaml: what commands read."""
    out = tmp_path_factory.mktemp("generated")
    generate(STACK, out)
    return out


@pytest.fixture
def mocked() -> Iterator[None]:
    with mock_aws():
        yield


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
    first = aws_access.allow_ip(aws, plan, "198.51.100.7", ssh=True, tunnel=True)
    assert [changed for _, changed in first] == [True, True]
    expected = {("tcp", 22, "198.51.100.7/32"), ("udp", 51820, "198.51.100.7/32")}
    assert _bastion_ingress(ids["allow_ip_sg"]) == expected
    again = aws_access.allow_ip(aws, plan, "198.51.100.7/32", ssh=True, tunnel=True)
    assert [changed for _, changed in again] == [False, False]
    assert _bastion_ingress(ids["allow_ip_sg"]) == expected
    assert _bastion_ingress(ids["controller_sg"]) == set()  # the controller is never opened
    assert _bastion_ingress(ids["bastion_sg"]) == set()  # Terraform's group is never edited
    gone = aws_access.allow_ip(aws, plan, "198.51.100.7/32", ssh=True, tunnel=True, revoke=True)
    assert [changed for _, changed in gone] == [True, True]
    assert _bastion_ingress(ids["allow_ip_sg"]) == set()
    undone = aws_access.allow_ip(aws, plan, "198.51.100.7", ssh=True, tunnel=True, revoke=True)
    assert [c for _, c in undone] == [False, False]


def test_allow_ip_opens_only_the_tunnel_by_default(mocked: None, plan: Plan) -> None:
    ids = make_cluster()
    aws_access.allow_ip(Aws(REGION), plan, "198.51.100.9")
    assert _bastion_ingress(ids["allow_ip_sg"]) == {("udp", 51820, "198.51.100.9/32")}
    aws_access.allow_ip(Aws(REGION), plan, "198.51.100.10", ssh=True)
    assert ("tcp", 22, "198.51.100.10/32") in _bastion_ingress(ids["allow_ip_sg"])
    assert ("udp", 51820, "198.51.100.10/32") not in _bastion_ingress(ids["allow_ip_sg"])


def test_allow_ip_then_terraform_adds_the_same_address_no_duplicate(
    mocked: None, plan: Plan
) -> None:
    """The finding: allow-ip wrote into Terraform's group, so the next `terraform apply` with the
    same address in stack.yaml failed with InvalidPermission.Duplicate. Now they never share."""
    ids = make_cluster()
    aws_access.allow_ip(Aws(REGION), plan, "198.51.100.7", ssh=True, tunnel=True)
    ec2 = boto3.client("ec2", region_name=REGION)
    # What terraform/aws/security.tf's bastion_ssh / bastion_tunnel rules then create.
    for proto, port in (("tcp", 22), ("udp", 51820)):
        ec2.authorize_security_group_ingress(
            GroupId=ids["bastion_sg"],
            IpPermissions=[
                {
                    "IpProtocol": proto,
                    "FromPort": port,
                    "ToPort": port,
                    "IpRanges": [{"CidrIp": "198.51.100.7/32"}],
                }
            ],
        )
    assert ("tcp", 22, "198.51.100.7/32") in _bastion_ingress(ids["bastion_sg"])


def test_allow_ip_in_ssh_mode_opens_the_sshd_port_over_tcp(tmp_path: Path) -> None:
    data = yaml.safe_load(STACK.read_text())
    data["tunnel"]["mode"] = "ssh"
    (tmp_path / "stack.yaml").write_text(yaml.safe_dump(data))
    plan = make_plan(load_stack(tmp_path / "stack.yaml"))
    rules = aws_access.allow_ip_rules(plan, ssh=False, tunnel=False)
    assert [(r.protocol, r.port) for r in rules] == [("tcp", plan.stack.tunnel.ssh_port)]


def test_allow_ip_defaults_to_the_callers_address(mocked: None, plan: Plan) -> None:
    ids = make_cluster()
    aws_access.allow_ip(Aws(REGION), plan, None, ssh=True, lookup=lambda: "203.0.113.9")
    assert ("tcp", 22, "203.0.113.9/32") in _bastion_ingress(ids["allow_ip_sg"])


def test_allow_ip_without_its_group(mocked: None, plan: Plan) -> None:
    with pytest.raises(AwsNotFoundError, match="no bastion-allow-ip security group"):
        aws_access.allow_ip(Aws(REGION), plan, "198.51.100.7")


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


def test_allow_ip_cli(mocked: None, generated: Path) -> None:
    ids = make_cluster()
    runner = CliRunner()
    args = ["aws", "allow-ip", "198.51.100.8/32", "-d", str(generated), "--region", REGION]
    result = runner.invoke(cli, [*args, "--ssh", "--tunnel"])
    assert result.exit_code == 0, result.output
    assert "allowed: tcp/22" in result.output
    result = runner.invoke(cli, args)
    assert "unchanged: udp/51820" in result.output
    assert ("udp", 51820, "198.51.100.8/32") in _bastion_ingress(ids["allow_ip_sg"])


def test_commands_read_the_generated_plan_not_stack_yaml(mocked: None, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["aws", "status", "-d", str(tmp_path), "--region", REGION])
    assert result.exit_code == 1
    assert "hpcstack generate" in result.output


# --- status, endpoint, stop/start and ssh-config -------------------------------------------


def test_status_cli_lists_instances(mocked: None, generated: Path) -> None:
    ids = make_cluster()
    args = ["aws", "status", "-d", str(generated), "--region", REGION]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert ids["controller"] in result.output
    assert "10.0.1.10" in result.output
    assert "tunnel endpoint:" in result.output
    assert "/udp" in result.output


def test_status_cli_without_instances_fails_clearly(mocked: None, generated: Path) -> None:
    args = ["aws", "status", "-d", str(generated), "--region", REGION]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "terraform apply" in result.output


def test_endpoint_prints_the_bastion_address_and_says_to_set_it(
    mocked: None, generated: Path
) -> None:
    make_cluster()
    bastion_ip = Aws(REGION).instance("hpcstack", "bastion").public_ip
    args = ["aws", "endpoint", "-d", str(generated), "--region", REGION]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert bastion_ip in result.output.splitlines()
    assert "tunnel.endpoint" in result.output  # still host.docker.internal: the note says so


def _states(ids: dict[str, str]) -> dict[str, str]:
    ec2 = boto3.client("ec2", region_name=REGION)
    found = ec2.describe_instances(InstanceIds=[ids["bastion"], ids["controller"]])
    return {
        i["InstanceId"]: i["State"]["Name"] for r in found["Reservations"] for i in r["Instances"]
    }


def test_stop_then_start(mocked: None, generated: Path) -> None:
    ids = make_cluster()
    runner = CliRunner()
    common = ["-d", str(generated), "--region", REGION]
    result = runner.invoke(cli, ["aws", "stop", *common])
    assert result.exit_code == 0, result.output
    assert set(_states(ids).values()) == {"stopped"}
    assert "nat_gateway: false" in result.output  # how to stop paying for the NAT gateway too
    order = [line.split()[1] for line in result.output.splitlines() if "stopping:" in line]
    assert order == ["controller", "bastion"]
    again = runner.invoke(cli, ["aws", "stop", *common])
    assert "unchanged: controller" in again.output
    result = runner.invoke(cli, ["aws", "start", *common])
    assert result.exit_code == 0, result.output
    assert set(_states(ids).values()) == {"running"}


def test_ssh_config_uses_proxyjump(mocked: None, generated: Path, tmp_path: Path) -> None:
    make_cluster()
    bastion_ip = Aws(REGION).instance("hpcstack", "bastion").public_ip
    target = tmp_path / "ssh_config"
    args = ["ssh-config", "-d", str(generated), "--region", REGION, "-o", str(target)]
    result = CliRunner().invoke(cli, [*args, "--identity", "~/.ssh/id_ed25519"])
    assert result.exit_code == 0, result.output
    text = target.read_text()
    assert f"Host hpcstack-bastion\n  HostName {bastion_ip}\n" in text
    assert "Host hpcstack-controller\n  HostName 10.0.1.10\n  Port 22\n" in text
    assert "  ProxyJump hpcstack-bastion\n" in text
    assert "StrictHostKeyChecking yes" in text
    assert "PasswordAuthentication no" in text


def test_ssh_config_lab_members_jump_as_the_forward_only_account(
    mocked: None, generated: Path, tmp_path: Path
) -> None:
    """Each lab member reaches the login service (controller's private address, login.port)
    through the bastion as its forward-only account, with their own key; a member without a
    key in stack.yaml is warned about (the bastion knows only listed keys)."""
    make_cluster()
    bastion_ip = Aws(REGION).instance("hpcstack", "bastion").public_ip
    args = ["ssh-config", "-d", str(generated), "--region", REGION]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    jump = result.stdout.split("Host hpcstack-hpc-jump\n")[1].split("\n\n")[0]
    assert f"  HostName {bastion_ip}\n  Port 22\n  User hpcstack-lab\n" in jump + "\n"
    member = result.stdout.split("Host hpcstack-hpc\n")[1].split("\n\n")[0]
    assert "  HostName 10.0.1.10\n  Port 2022\n  User hpc\n" in member
    assert "  ProxyJump hpcstack-hpc-jump" in member
    assert "hpc has no ssh_keys in stack.yaml" in result.stderr
