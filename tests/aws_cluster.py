"""What terraform/aws makes, in miniature, inside moto; and injected EC2 errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from hpcstack.run.aws import Aws

REGION = "eu-west-1"


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
    for role in ("bastion", "bastion-allow-ip", "controller"):
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
                "Groups": [groups["bastion"], groups["bastion-allow-ip"]],
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
        "allow_ip_sg": groups["bastion-allow-ip"],
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


@pytest.fixture(autouse=True)
def isolated_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real AWS config, no metadata service: nothing leaves this machine (import it into a
    test module to use it there)."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    empty = tmp_path / "aws-empty-config"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
