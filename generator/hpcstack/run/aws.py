"""The one AWS adapter: boto3 with region and profile passed explicitly, errors made actionable.

Nothing here reads or sets os.environ; the caller says which region and profile. Throttling is
retried by botocore itself (standard retry mode); what is left after the retries, and every other
failure, becomes an AwsError whose message says what to do. Instances and security groups are
found by the tags the Terraform module sets (hpcstack:cluster, hpcstack:role).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from hpcstack.run.aws_errors import (
    AwsCredentialsError,
    AwsError,
    AwsNotFoundError,
    AwsPermissionError,
    AwsRegionError,
    AwsThrottledError,
    client_error,
)

log = logging.getLogger(__name__)

TAG_CLUSTER = "hpcstack:cluster"
TAG_ROLE = "hpcstack:role"
ALLOW_IP_DESCRIPTION = "hpcstack allow-ip"
# SSM standard parameters hold 4 KiB; larger values need the (paid) advanced tier.
SSM_STANDARD_LIMIT = 4096


@dataclass(frozen=True)
class Instance:
    instance_id: str
    role: str
    name: str
    state: str
    instance_type: str
    private_ip: str
    public_ip: str
    availability_zone: str


@dataclass(frozen=True)
class IngressRule:
    """One inbound permission for a single source CIDR."""

    protocol: str  # "tcp" or "udp"
    port: int
    label: str  # what the rule is for, shown to the user


@dataclass(frozen=True)
class SecretParameter:
    name: str
    value: str
    description: str


def known_regions(session: Any) -> set[str]:
    """Every region botocore knows for EC2, across partitions (offline: from its endpoint data)."""
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return regions


class Aws:
    """A boto3 session for one region and profile, with the project's error mapping."""

    def __init__(
        self,
        region: str,
        profile: str | None = None,
        *,
        max_attempts: int = 8,
        check_region: bool = True,
    ) -> None:
        self.region = region
        self.profile = profile
        try:
            self._session = boto3.session.Session(region_name=region, profile_name=profile)
        except ProfileNotFound:
            raise AwsCredentialsError(
                summary=f"AWS profile {profile!r} not found in your AWS config "
                "(list them with `aws configure list-profiles`)"
            ) from None
        if check_region and region not in known_regions(self._session):
            raise AwsRegionError(
                summary=f"unknown AWS region {region!r}: set aws.region in stack.yaml or pass "
                "--region (e.g. eu-west-1)"
            )
        # Standard mode retries throttling and transient errors with backoff.
        self._config = Config(
            region_name=region,
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            connect_timeout=10,
            read_timeout=30,
        )
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            with self.errors(service, "client"):
                self._clients[service] = self._session.client(service, config=self._config)
        return self._clients[service]

    @contextmanager
    def errors(self, service: str, operation: str) -> Iterator[None]:
        """Turn botocore exceptions into AwsError subclasses with a next step."""
        command = [service, operation]
        try:
            yield
        except ClientError as exc:
            raise client_error(exc, command) from None
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise AwsCredentialsError(
                command=command,
                stderr=str(exc),
                summary="no AWS credentials found: run `aws configure` or `aws sso login`, "
                "or pass --profile NAME",
            ) from None
        except NoRegionError as exc:
            raise AwsRegionError(
                command=command,
                stderr=str(exc),
                summary="no AWS region: set aws.region in stack.yaml or pass --region",
            ) from None
        except EndpointConnectionError as exc:
            raise AwsRegionError(
                command=command,
                stderr=str(exc),
                summary=f"cannot reach AWS in region {self.region!r}: check the region name "
                "and your network connection",
            ) from None
        except BotoCoreError as exc:
            raise AwsError(command=command, stderr=str(exc), summary="AWS call failed") from None

    # --- EC2: instances and security groups, found by tags -------------------------------

    def instances(self, cluster: str) -> list[Instance]:
        """Every non-terminated instance tagged for this cluster, sorted by role then id."""
        ec2 = self.client("ec2")
        filters = [
            {"Name": f"tag:{TAG_CLUSTER}", "Values": [cluster]},
            {
                "Name": "instance-state-name",
                "Values": ["pending", "running", "stopping", "stopped"],
            },
        ]
        found: list[Instance] = []
        with self.errors("ec2", "DescribeInstances"):
            for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
                for reservation in page.get("Reservations", []):
                    found.extend(_instance(raw) for raw in reservation.get("Instances", []))
        return sorted(found, key=lambda i: (i.role, i.instance_id))

    def instance(self, cluster: str, role: str) -> Instance:
        """The cluster's one instance with this role; a running one is preferred."""
        matches = [i for i in self.instances(cluster) if i.role == role]
        if not matches:
            raise AwsNotFoundError(
                command=["ec2", "DescribeInstances"],
                summary=f"no {role} instance tagged {TAG_CLUSTER}={cluster} in region "
                f"{self.region}: run `terraform apply` in terraform/aws (docs/aws.md), or pass "
                "--region if the cluster lives in another region",
            )
        matches.sort(key=lambda i: (i.state != "running", i.instance_id))
        return matches[0]

    def set_running(self, instance_ids: list[str], running: bool) -> None:
        """Start or stop instances (EBS volumes and Elastic IPs stay)."""
        if not instance_ids:
            return
        ec2 = self.client("ec2")
        if running:
            with self.errors("ec2", "StartInstances"):
                ec2.start_instances(InstanceIds=instance_ids)
        else:
            with self.errors("ec2", "StopInstances"):
                ec2.stop_instances(InstanceIds=instance_ids)

    def security_group(self, cluster: str, role: str) -> str:
        """Id of the cluster's security group for this role."""
        filters = [
            {"Name": f"tag:{TAG_CLUSTER}", "Values": [cluster]},
            {"Name": f"tag:{TAG_ROLE}", "Values": [role]},
        ]
        with self.errors("ec2", "DescribeSecurityGroups"):
            groups = self.client("ec2").describe_security_groups(Filters=filters)["SecurityGroups"]
        if not groups:
            raise AwsNotFoundError(
                command=["ec2", "DescribeSecurityGroups"],
                summary=f"no {role} security group tagged {TAG_CLUSTER}={cluster} in region "
                f"{self.region}: run `terraform apply` in terraform/aws, or pass --region",
            )
        return str(sorted(g["GroupId"] for g in groups)[0])

    def _ingress_cidrs(self, group_id: str) -> set[tuple[str, int, int, str]]:
        with self.errors("ec2", "DescribeSecurityGroups"):
            groups = self.client("ec2").describe_security_groups(GroupIds=[group_id])
        present: set[tuple[str, int, int, str]] = set()
        for perm in groups["SecurityGroups"][0].get("IpPermissions", []):
            for rng in perm.get("IpRanges", []):
                present.add(
                    (
                        str(perm.get("IpProtocol")),
                        int(perm.get("FromPort", -1)),
                        int(perm.get("ToPort", -1)),
                        str(rng["CidrIp"]),
                    )
                )
        return present

    def allow_ingress(self, group_id: str, cidr: str, rules: list[IngressRule]) -> list[bool]:
        """Add each rule for `cidr` unless already there. Returns, per rule, whether it changed."""
        present = self._ingress_cidrs(group_id)
        changed = []
        for rule in rules:
            if (rule.protocol, rule.port, rule.port, cidr) in present:
                changed.append(False)
                continue
            perm = _permission(rule, cidr, f"{ALLOW_IP_DESCRIPTION}: {rule.label}")
            try:
                with self.errors("ec2", "AuthorizeSecurityGroupIngress"):
                    self.client("ec2").authorize_security_group_ingress(
                        GroupId=group_id, IpPermissions=[perm]
                    )
            except AwsError as exc:
                # Added by someone else between our look and our change: still idempotent.
                if "InvalidPermission.Duplicate" not in exc.stderr:
                    raise
                changed.append(False)
                continue
            changed.append(True)
        return changed

    def revoke_ingress(self, group_id: str, cidr: str, rules: list[IngressRule]) -> list[bool]:
        """Remove each rule for `cidr` if present. Returns, per rule, whether it changed."""
        present = self._ingress_cidrs(group_id)
        changed = []
        for rule in rules:
            if (rule.protocol, rule.port, rule.port, cidr) not in present:
                changed.append(False)
                continue
            with self.errors("ec2", "RevokeSecurityGroupIngress"):
                self.client("ec2").revoke_security_group_ingress(
                    GroupId=group_id, IpPermissions=[_permission(rule, cidr)]
                )
            changed.append(True)
        return changed

    # --- SSM Parameter Store: SecureString secrets -------------------------------------

    def put_secret(
        self, name: str, value: str, description: str, key_id: str | None = None
    ) -> None:
        """Store `value` as a SecureString, with `key_id` (a KMS alias) or the aws/ssm key."""
        tier = "Standard" if len(value.encode()) <= SSM_STANDARD_LIMIT else "Advanced"
        extra = {"KeyId": key_id} if key_id else {}
        with self.errors("ssm", "PutParameter"):
            self.client("ssm").put_parameter(
                Name=name,
                Value=value,
                Description=description,
                Type="SecureString",
                Tier=tier,
                Overwrite=True,
                **extra,
            )

    def secret(self, name: str) -> SecretParameter:
        """One parameter, decrypted, with its description."""
        ssm = self.client("ssm")
        with self.errors("ssm", "GetParameter"):
            value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        with self.errors("ssm", "DescribeParameters"):
            filters = [{"Key": "Name", "Option": "Equals", "Values": [name]}]
            found = ssm.describe_parameters(ParameterFilters=filters).get("Parameters", [])
        return SecretParameter(name, value, found[0].get("Description", "") if found else "")

    def secrets_under(self, path: str) -> list[SecretParameter]:
        """Every parameter under `path` (recursive), decrypted, sorted by name."""
        ssm = self.client("ssm")
        values: dict[str, str] = {}
        descriptions: dict[str, str] = {}
        with self.errors("ssm", "GetParametersByPath"):
            pages = ssm.get_paginator("get_parameters_by_path").paginate(
                Path=path, Recursive=True, WithDecryption=True
            )
            for page in pages:
                for p in page.get("Parameters", []):
                    values[p["Name"]] = p["Value"]
        with self.errors("ssm", "DescribeParameters"):
            filters = [{"Key": "Path", "Option": "Recursive", "Values": [path]}]
            pages = ssm.get_paginator("describe_parameters").paginate(ParameterFilters=filters)
            for page in pages:
                for p in page.get("Parameters", []):
                    descriptions[p["Name"]] = p.get("Description", "")
        return [
            SecretParameter(name, values[name], descriptions.get(name, ""))
            for name in sorted(values)
        ]


def _instance(raw: dict[str, Any]) -> Instance:
    tags = {t["Key"]: t["Value"] for t in raw.get("Tags", [])}
    return Instance(
        instance_id=raw["InstanceId"],
        role=tags.get(TAG_ROLE, ""),
        name=tags.get("Name", ""),
        state=raw.get("State", {}).get("Name", ""),
        instance_type=raw.get("InstanceType", ""),
        private_ip=raw.get("PrivateIpAddress", "") or "",
        public_ip=raw.get("PublicIpAddress", "") or "",
        availability_zone=raw.get("Placement", {}).get("AvailabilityZone", ""),
    )


def _permission(rule: IngressRule, cidr: str, description: str = "") -> dict[str, Any]:
    rng: dict[str, str] = {"CidrIp": cidr}
    if description:
        rng["Description"] = description
    return {
        "IpProtocol": rule.protocol,
        "FromPort": rule.port,
        "ToPort": rule.port,
        "IpRanges": [rng],
    }


__all__ = [
    "ALLOW_IP_DESCRIPTION",
    "Aws",
    "AwsCredentialsError",
    "AwsError",
    "AwsNotFoundError",
    "AwsPermissionError",
    "AwsRegionError",
    "AwsThrottledError",
    "IngressRule",
    "Instance",
    "SecretParameter",
]
