"""The one AWS adapter: boto3 with region and profile passed explicitly, errors made actionable.

Nothing here reads or sets os.environ; the caller says which region and profile. Throttling is
retried by botocore itself (standard retry mode); what is left after the retries, and every other
failure, becomes an AwsError whose message says what to do. Instances and security groups are
found by the tags the Terraform module sets (hpcstack:cluster, hpcstack:role).
"""

from __future__ import annotations

import ipaddress
import logging
import urllib.request
from collections.abc import Callable, Iterator
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

from hpcstack.errors import ToolError

log = logging.getLogger(__name__)

TAG_CLUSTER = "hpcstack:cluster"
TAG_ROLE = "hpcstack:role"
ALLOW_IP_DESCRIPTION = "hpcstack allow-ip"
# SSM standard parameters hold 4 KiB; larger values need the (paid) advanced tier.
SSM_STANDARD_LIMIT = 4096

_CREDENTIAL_CODES = {
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
}
_PERMISSION_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
_THROTTLE_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
}
_NOT_FOUND_CODES = {"ParameterNotFound", "InvalidGroup.NotFound", "InvalidInstanceID.NotFound"}


class AwsError(ToolError):
    """An AWS call failed. `command` names the service and operation, `stderr` the raw message."""

    def __str__(self) -> str:
        text = f"{self.summary}"
        if self.command:
            text += f" [{' '.join(self.command)}]"
        if self.stderr:
            text += f"\n  {self.stderr.strip()}"
        return text


class AwsCredentialsError(AwsError):
    """No usable credentials (none found, expired, unknown profile)."""


class AwsRegionError(AwsError):
    """The region is unknown or its endpoint cannot be reached."""


class AwsPermissionError(AwsError):
    """The credentials work but may not do this."""


class AwsThrottledError(AwsError):
    """AWS kept throttling after every retry."""


class AwsNotFoundError(AwsError):
    """The instance, group or parameter asked for does not exist (in this region)."""


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
            raise self._client_error(exc, command) from None
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

    def _client_error(self, exc: ClientError, command: list[str]) -> AwsError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "")) or str(exc)
        raw = f"{code}: {message}"
        if code in _CREDENTIAL_CODES:
            return AwsCredentialsError(
                command=command,
                stderr=raw,
                summary="AWS rejected the credentials (expired or wrong account): refresh them "
                "with `aws sso login` or `aws configure`, or pass --profile NAME",
            )
        if code in _PERMISSION_CODES:
            return AwsPermissionError(
                command=command,
                stderr=raw,
                summary="the AWS identity in use may not do this: see the IAM policy in "
                "docs/aws.md",
            )
        if code in _THROTTLE_CODES:
            attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
            return AwsThrottledError(
                command=command,
                stderr=raw,
                summary=f"AWS kept throttling requests ({attempts} retries): wait a minute "
                "and run the command again",
            )
        if code in _NOT_FOUND_CODES:
            return AwsNotFoundError(command=command, stderr=raw, summary="not found in AWS")
        return AwsError(command=command, stderr=raw, summary="AWS call failed")

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

    def put_secret(self, name: str, value: str, description: str) -> None:
        """Store `value` as a SecureString (encrypted with the account's aws/ssm KMS key)."""
        tier = "Standard" if len(value.encode()) <= SSM_STANDARD_LIMIT else "Advanced"
        with self.errors("ssm", "PutParameter"):
            self.client("ssm").put_parameter(
                Name=name,
                Value=value,
                Description=description,
                Type="SecureString",
                Tier=tier,
                Overwrite=True,
            )

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


# --- the caller's public address -----------------------------------------------------------

CHECKIP_URL = "https://checkip.amazonaws.com"

PublicAddressLookup = Callable[[], str]
# Addresses a public-address service can never rightly return (private, shared, local).
_NOT_PUBLIC = [
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
    )
]


def lookup_public_address(timeout: float = 5.0) -> str:
    """The caller's public IPv4 address as AWS sees it (AWS's own checkip service)."""
    try:
        with urllib.request.urlopen(CHECKIP_URL, timeout=timeout) as response:
            text: str = response.read(64).decode("ascii", "replace").strip()
    except OSError as exc:
        raise AwsError(
            command=["GET", CHECKIP_URL],
            stderr=str(exc),
            summary="cannot find your public address: give it explicitly, e.g. "
            "`hpcstack aws allow-ip 203.0.113.7/32`",
        ) from None
    return text


def caller_cidr(lookup: PublicAddressLookup = lookup_public_address) -> str:
    """The caller's public address as a /32, checked to be a public IPv4 address."""
    text = lookup()
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise AwsError(
            summary=f"the public address lookup returned {text[:40]!r}, not an IPv4 address: "
            "give the CIDR explicitly"
        ) from None
    if any(address in net for net in _NOT_PUBLIC) or address.is_multicast:
        raise AwsError(summary=f"{address} is not a public address: give the CIDR explicitly")
    return f"{address}/32"


def normalise_cidr(text: str) -> str:
    """A user-given address or network as a CIDR (`1.2.3.4` -> `1.2.3.4/32`), never a /0."""
    try:
        net = ipaddress.IPv4Network(text.strip(), strict=False)
    except ValueError as exc:
        raise AwsError(summary=f"{text!r} is not an IPv4 address or CIDR: {exc}") from None
    if net.prefixlen == 0:
        raise AwsError(summary="refusing to open the cluster to the whole internet (/0)")
    return str(net)
