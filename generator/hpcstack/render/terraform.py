"""terraform/aws/terraform.tfvars.json: the AWS layer's inputs, taken from stack.yaml.

The Terraform module in terraform/aws is static and committed; only its variable values are
generated. Keys are exactly the module's variable names (terraform/aws/variables.tf).
`ssh_public_key` is left out on purpose: it is the user's own key, passed at apply time
(TF_VAR_ssh_public_key), so no machine-specific value lands in generated output.
An empty `trusted_cidrs` still renders; the module's validation then stops `terraform plan`
with a message saying to set aws.trusted_cidrs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from hpcstack.plan.topology import Plan
from hpcstack.render import Artifact, renderer

TFVARS_PATH = "terraform/aws/terraform.tfvars.json"


def terraform_variables(plan: Plan) -> dict[str, Any]:
    """The module's variable values for this plan."""
    aws = plan.stack.aws
    images = plan.stack.images
    return {
        "availability_zone": aws.availability_zone,
        "bastion_instance_type": aws.bastion_instance_type,
        "cloud_site": plan.controller.name,
        "cluster_name": plan.cluster,
        "controller_instance_type": aws.controller_instance_type,
        "controller_volume_gb": aws.controller_volume_gb,
        "images_prefix": images.prefix,
        "images_registry": images.registry,
        "images_tag": images.tag,
        "key_name": aws.key_name,
        "local_site_cidrs": list(aws.local_site_cidrs),
        "private_subnet_cidr": aws.private_subnet_cidr,
        "public_subnet_cidr": aws.public_subnet_cidr,
        "region": aws.region,
        "ssh_user": aws.ssh_user,
        "trusted_cidrs": list(aws.trusted_cidrs),
        "tunnel_port": plan.stack.tunnel.port,
        "vpc_cidr": aws.vpc_cidr,
    }


@renderer("terraform")
def render_terraform(plan: Plan) -> Iterable[Artifact]:
    # Only a controller that runs in the cloud has an AWS side to describe.
    if plan.controller.site.role != "cloud":
        return []
    text = json.dumps(terraform_variables(plan), indent=2, sort_keys=True) + "\n"
    return [Artifact(TFVARS_PATH, text)]
