"""`hpcstack aws status / endpoint / allow-ip / stop / start`: the instances Terraform made.

Everything is found by the tags terraform/aws sets. `allow-ip` edits only the security group
Terraform leaves empty for it (role `bastion-allow-ip`), never a group whose rules Terraform
manages, so a later `terraform apply` with the same address in stack.yaml cannot collide with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hpcstack.errors import StateError
from hpcstack.plan.topology import Plan
from hpcstack.run.aws import Aws, IngressRule, Instance
from hpcstack.run.public_address import caller_cidr, lookup_public_address, normalise_cidr

ALLOW_IP_ROLE = "bastion-allow-ip"
SSH_PORT = 22
STATUS_HEADER = ("ROLE", "INSTANCE", "STATE", "TYPE", "PRIVATE IP", "PUBLIC IP", "ZONE")
# Stop the controller before the bastion, start the bastion first: the way in stays up longest.
STOP_ORDER = ("controller", "bastion")


def tunnel_protocol(plan: Plan) -> tuple[str, int]:
    """What local sites dial on the bastion: WireGuard UDP, or the sshd's TCP in ssh mode."""
    tunnel = plan.stack.tunnel
    return ("tcp", tunnel.ssh_port) if tunnel.mode == "ssh" else ("udp", tunnel.port)


def instances(aws: Aws, plan: Plan) -> list[Instance]:
    found = aws.instances(plan.cluster)
    if not found:
        raise StateError(
            f"no instances tagged hpcstack:cluster={plan.cluster} in {aws.region}: run "
            "`terraform apply` in terraform/aws (docs/aws.md), or pass --region"
        )
    return found


def status_rows(found: list[Instance]) -> list[tuple[str, ...]]:
    return [
        (
            i.role or "?",
            i.instance_id,
            i.state,
            i.instance_type,
            i.private_ip or "-",
            i.public_ip or "-",
            i.availability_zone,
        )
        for i in found
    ]


def endpoint(aws: Aws, plan: Plan) -> str:
    """The bastion's public address: what tunnel.endpoint must say."""
    bastion = aws.instance(plan.cluster, "bastion")
    if not bastion.public_ip:
        raise StateError(
            f"the bastion {bastion.instance_id} has no public address ({bastion.state}): "
            "`hpcstack aws start`, or `terraform apply`"
        )
    return bastion.public_ip


def endpoint_note(plan: Plan, address: str) -> str | None:
    """A line telling the user to update tunnel.endpoint, or None when it already matches."""
    if plan.stack.tunnel.endpoint == address:
        return None
    return (
        f"tunnel.endpoint is {plan.stack.tunnel.endpoint!r}: set it to {address} in stack.yaml "
        "and run `hpcstack generate`, so local sites dial the bastion"
    )


def allow_ip_rules(plan: Plan, ssh: bool, tunnel: bool) -> list[IngressRule]:
    """The rules for one address. Neither flag: the tunnel port (a workstation's address)."""
    if not ssh and not tunnel:
        tunnel = True
    rules = []
    if ssh:
        rules.append(IngressRule("tcp", SSH_PORT, "SSH"))
    if tunnel:
        protocol, port = tunnel_protocol(plan)
        label = "ssh tunnel" if protocol == "tcp" else "WireGuard tunnel"
        rules.append(IngressRule(protocol, port, label))
    return rules


def allow_ip(
    aws: Aws,
    plan: Plan,
    cidr: str | None,
    *,
    ssh: bool = False,
    tunnel: bool = False,
    revoke: bool = False,
    lookup: Callable[[], str] = lookup_public_address,
) -> list[tuple[IngressRule, bool]]:
    """Add (or revoke) rules for `cidr` (default: the caller's public address)."""
    target = normalise_cidr(cidr) if cidr else caller_cidr(lookup)
    group = aws.security_group(plan.cluster, ALLOW_IP_ROLE)
    rules = allow_ip_rules(plan, ssh, tunnel)
    change = aws.revoke_ingress if revoke else aws.allow_ingress
    return list(zip(rules, change(group, target, rules), strict=True))


@dataclass(frozen=True)
class PowerChange:
    instance: Instance
    changed: bool


def set_power(aws: Aws, plan: Plan, running: bool) -> list[PowerChange]:
    """Start or stop the cluster's instances; already-there ones are left alone."""
    found = instances(aws, plan)
    order = list(reversed(STOP_ORDER)) if running else list(STOP_ORDER)
    found.sort(key=lambda i: order.index(i.role) if i.role in order else len(order))
    wanted = ("running", "pending") if running else ("stopped", "stopping")
    result = []
    for inst in found:
        change = inst.state not in wanted
        if change:
            aws.set_running([inst.instance_id], running)
        result.append(PowerChange(inst, change))
    return result
