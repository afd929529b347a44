"""terraform/aws/: the AWS layer's generated inputs, taken from the plan.

The Terraform module in terraform/aws is static and committed; only these files are generated:
- terraform.tfvars.json: the module's variable values (keys are exactly terraform/aws/variables.tf).
  `ssh_public_key` is left out on purpose: it is the user's own key, passed at apply time
  (TF_VAR_ssh_public_key), so no machine-specific value lands in generated output. An empty
  `trusted_cidrs` still renders; the module's validation then stops `terraform plan`.
- policies/<site>.json: per local site, the IAM policy its GPU hosts need to pull their secrets
  from SSM (Terraform creates it as aws_iam_policy; attach it to the workstation's role or user).

Secrets live in SSM Parameter Store under one root per cluster, split by who may read them:
  /hpcstack/<cluster>/shared/munge.key       every host
  /hpcstack/<cluster>/sites/<site>/<file>    only that site's hosts (its WireGuard or SSH keys)
  /hpcstack/<cluster>/controller/<file>      nobody but an administrator (hub key, passwords)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from hpcstack.contract import LAB_JUMP_USER
from hpcstack.plan.topology import Plan
from hpcstack.render import Artifact, renderer

TFVARS_PATH = "terraform/aws/terraform.tfvars.json"
POLICY_DIR = "terraform/aws/policies"
SHARED_SECRETS = ("munge.key",)


def secret_root(cluster: str) -> str:
    return f"/hpcstack/{cluster}"


def shared_path(cluster: str) -> str:
    return f"{secret_root(cluster)}/shared"


def site_path(cluster: str, site: str) -> str:
    return f"{secret_root(cluster)}/sites/{site}"


def controller_path(cluster: str) -> str:
    return f"{secret_root(cluster)}/controller"


def kms_alias(cluster: str) -> str:
    """The customer-managed key's alias (terraform/aws/secrets.tf makes it when asked)."""
    return f"alias/hpcstack-{cluster}-secrets"


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def parameter_arn(region: str, name: str) -> str:
    # The account is left open: an identity can only ever read its own account's parameters.
    return f"arn:{partition(region)}:ssm:{region}:*:parameter{name}"


def site_secrets_policy(plan: Plan, site: str) -> dict[str, Any]:
    """IAM policy for one local site's hosts: its own path and the shared munge key, no more.

    GetParametersByPath is authorised on the path's own ARN (a `/*` ARN does not match the
    path itself); DescribeParameters has no resource-level permissions, so it takes "*" (it
    returns names and descriptions, never values).
    """
    region = plan.stack.aws.region
    cluster = plan.cluster
    own = site_path(cluster, site)
    readable = [parameter_arn(region, f"{own}/*")] + [
        parameter_arn(region, f"{shared_path(cluster)}/{name}") for name in SHARED_SECRETS
    ]
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadOwnSitePath",
            "Effect": "Allow",
            "Action": ["ssm:GetParametersByPath"],
            "Resource": [parameter_arn(region, own), parameter_arn(region, f"{own}/*")],
        },
        {
            "Sid": "ReadOwnAndSharedParameters",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter", "ssm:GetParameters"],
            "Resource": readable,
        },
        {
            "Sid": "ListParameterNames",
            "Effect": "Allow",
            "Action": ["ssm:DescribeParameters"],
            "Resource": "*",
        },
    ]
    if plan.stack.aws.secrets_kms_key:
        statements.append(
            {
                "Sid": "DecryptOnlyTheseParametersThroughSsm",
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": f"arn:{partition(region)}:kms:{region}:*:key/*",
                "Condition": {
                    "StringEquals": {"kms:ViaService": f"ssm.{region}.amazonaws.com"},
                    "ForAnyValue:StringEquals": {"kms:ResourceAliases": kms_alias(cluster)},
                    "StringLike": {"kms:EncryptionContext:PARAMETER_ARN": readable},
                },
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def local_site_names(plan: Plan) -> list[str]:
    return [s.name for s in plan.sites if not s.is_controller]


def lab_ssh_keys(plan: Plan) -> list[str]:
    """Each listed key as `TYPE BLOB NAME`: the member's name in place of the key's comment."""
    users = plan.stack.users
    return [" ".join([*key.split()[:2], user.name]) for user in users for key in user.ssh_keys]


def terraform_variables(plan: Plan) -> dict[str, Any]:
    """The module's variable values for this plan."""
    aws = plan.stack.aws
    images = plan.stack.images
    tunnel = plan.stack.tunnel
    ssh = tunnel.mode == "ssh"
    return {
        "availability_zone": aws.availability_zone,
        "bastion_instance_type": aws.bastion_instance_type,
        "budget_email": aws.budget_email,
        "cloud_site": plan.controller.name,
        "cluster_name": plan.cluster,
        "controller_data_gb": aws.controller_data_gb,
        "controller_instance_type": aws.controller_instance_type,
        "controller_volume_gb": aws.controller_volume_gb,
        "data_snapshots_enabled": aws.data_snapshots,
        "images_prefix": images.prefix,
        "images_registry": images.registry,
        "images_tag": images.tag,
        "key_name": aws.key_name,
        # Lab members jump through the bastion to the login service with these keys (only the
        # keys listed in stack.yaml: a key hpcstack generated stays on the machine it was made).
        "lab_jump_user": LAB_JUMP_USER,
        "lab_ssh_keys": lab_ssh_keys(plan),
        "local_site_cidrs": list(aws.local_site_cidrs),
        "local_sites": local_site_names(plan),
        "login_port": plan.stack.login.port if plan.stack.login.enabled else 0,
        "monthly_budget_usd": aws.monthly_budget_usd,
        "nat_gateway_enabled": aws.nat_gateway,
        "private_subnet_cidr": aws.private_subnet_cidr,
        "public_subnet_cidr": aws.public_subnet_cidr,
        "region": aws.region,
        "secrets_kms_key": aws.secrets_kms_key,
        "ssh_user": aws.ssh_user,
        "trusted_cidrs": list(aws.trusted_cidrs),
        # ssh mode: the sites dial the cloud sshd (TCP) instead of the WireGuard hub (UDP).
        "tunnel_port": tunnel.ssh_port if ssh else tunnel.port,
        "tunnel_protocol": "tcp" if ssh else "udp",
        "vpc_cidr": aws.vpc_cidr,
    }


def _json(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


@renderer("terraform")
def render_terraform(plan: Plan) -> Iterable[Artifact]:
    # Only a controller that runs in the cloud has an AWS side to describe.
    if plan.controller.site.role != "cloud":
        return []
    out = [Artifact(TFVARS_PATH, _json(terraform_variables(plan)))]
    for site in local_site_names(plan):
        out.append(Artifact(f"{POLICY_DIR}/{site}.json", _json(site_secrets_policy(plan, site))))
    return out
