"""Checks of the `aws:` section: instance types EC2 accepts, and a tunnel endpoint that is set.

definition/checks.py adds AWS_CHECKS to its registry (its last lines), so these run with every
other check; this module does not import checks.py (no import cycle).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator

from hpcstack.definition.model import Stack
from hpcstack.errors import Problem

AwsCheck = Callable[[Stack], Iterator[Problem]]
AWS_CHECKS: list[AwsCheck] = []


def check(fn: AwsCheck) -> AwsCheck:
    """The same registration as definition/checks.py's @check, into AWS_CHECKS."""
    AWS_CHECKS.append(fn)
    return fn


# EBS optimisation by instance family, from the EC2 user guide ("EBS-optimized instances"):
# "default" families are always EBS-optimised (Nitro and most current generation), "optional"
# ones accept ebs_optimized = true at extra cost, "unsupported" ones are rejected by EC2 when
# it is set. terraform/aws/instances.tf sets ebs_optimized only where it is supported.
# fmt: off
_ALWAYS_OPTIMISED = (
    "a1", "c4", "c5", "c5a", "c5ad", "c5d", "c5n", "c6a", "c6g", "c6gd", "c6gn", "c6i",
    "c6id", "c6in", "c7a", "c7g", "c7gd", "c7gn", "c7i", "c8g", "d2", "d3", "d3en", "g4ad",
    "g4dn", "g5", "g5g", "g6", "g6e", "gr6", "i3", "i3en", "i4g", "i4i", "im4gn", "inf1",
    "inf2", "is4gen", "m4", "m5", "m5a", "m5ad", "m5d", "m5dn", "m5n", "m5zn", "m6a",
    "m6g", "m6gd", "m6i", "m6id", "m6idn", "m6in", "m7a", "m7g", "m7gd", "m7i", "m7i-flex",
    "m8g", "p3", "p3dn", "p4d", "p4de", "p5", "p5e", "r4", "r5", "r5a", "r5ad", "r5b",
    "r5d", "r5dn", "r5n", "r6a", "r6g", "r6gd", "r6i", "r6id", "r6idn", "r6in", "r7a",
    "r7g", "r7gd", "r7i", "r7iz", "r8g", "t3", "t3a", "t4g", "trn1", "u-3tb1", "x1", "x1e",
    "x2gd", "x2idn", "x2iedn", "x2iezn", "x8g", "z1d",
)
# fmt: on
EBS_OPTIMIZATION: dict[str, str] = {
    **dict.fromkeys(("t1", "t2"), "unsupported"),
    **dict.fromkeys(("c1", "c3", "g2", "i2", "m1", "m2", "m3", "r3"), "optional"),
    **dict.fromkeys(_ALWAYS_OPTIMISED, "default"),
}
# Burstable families: terraform/aws sets their CPU credits to "standard" (no surprise bills).
BURSTABLE = frozenset({"t2", "t3", "t3a", "t4g"})
INSTANCE_TYPE_RE = re.compile(r"^([a-z][a-z0-9-]*)\.([0-9]*[a-z0-9]+)$")
ONE_HOST_ENDPOINT = "host.docker.internal"


def instance_family(instance_type: str) -> str | None:
    m = INSTANCE_TYPE_RE.match(instance_type)
    return m.group(1) if m else None


def _aws_in_use(stack: Stack) -> bool:
    """The user means to deploy to AWS: `aws:` written with the addresses Terraform requires."""
    return "aws" in stack.model_fields_set and bool(stack.aws.trusted_cidrs)


@check
def aws_instance_types_known(stack: Stack) -> Iterator[Problem]:
    for field in ("bastion_instance_type", "controller_instance_type"):
        value = getattr(stack.aws, field)
        family = instance_family(value)
        if family is None:
            yield Problem(f"aws.{field}", f"{value!r} is not an EC2 instance type like t3.micro")
        elif family not in EBS_OPTIMIZATION:
            close = difflib.get_close_matches(family, list(EBS_OPTIMIZATION), n=1)
            yield Problem(
                f"aws.{field}",
                f"unknown EC2 instance family {family!r} in {value!r}",
                hint=f"did you mean {close[0]!r}?" if close else "e.g. t3.micro, t3.medium",
            )


def aws_warnings(stack: Stack) -> list[Problem]:
    """Warnings only (nothing stops); also printed by every `hpcstack aws` command."""
    return list(tunnel_endpoint_set_for_aws(stack)) + list(previous_generation_types(stack))


@check
def tunnel_endpoint_set_for_aws(stack: Stack) -> Iterator[Problem]:
    if _aws_in_use(stack) and stack.tunnel.endpoint == ONE_HOST_ENDPOINT:
        yield Problem(
            "tunnel.endpoint",
            f"still the one-host default {ONE_HOST_ENDPOINT!r} while aws: is set: local sites "
            "cannot reach the bastion",
            hint="after `terraform apply`, set it to `terraform output -raw bastion_public_ip` "
            "or what `hpcstack aws endpoint` prints, then `hpcstack generate`",
            level="warning",
        )


@check
def previous_generation_types(stack: Stack) -> Iterator[Problem]:
    for field in ("bastion_instance_type", "controller_instance_type"):
        value = getattr(stack.aws, field)
        if EBS_OPTIMIZATION.get(instance_family(value) or "") == "unsupported":
            yield Problem(
                f"aws.{field}",
                f"{value} is a previous-generation type without EBS optimisation",
                hint="t3.micro / t3.medium cost less for the same size",
                level="warning",
            )
