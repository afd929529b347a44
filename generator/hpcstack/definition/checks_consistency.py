"""Checks across fields: what each field allows alone but the definition as a whole cannot do."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from pydantic import BaseModel

from hpcstack.definition.grammar import HOST
from hpcstack.definition.model import Stack
from hpcstack.definition.registry import check
from hpcstack.errors import Problem


@check
def max_nodes_holds_every_node(stack: Stack) -> Iterator[Problem]:
    total = sum(len(s.node_names) for s in stack.sites)
    if stack.cluster.max_nodes < total:
        yield Problem(
            "cluster.max_nodes",
            f"max_nodes is {stack.cluster.max_nodes} but the definition has {total} nodes: "
            "slurmctld would refuse the ones past the limit",
            hint=f"set cluster.max_nodes to at least {total}",
        )


def published_ports(stack: Stack) -> list[tuple[str, str, int]]:
    """(path, protocol, port) of every port the controller's host publishes."""
    t, mon = stack.tunnel, stack.monitoring
    tunneled = len(stack.sites) > 1
    out: list[tuple[str, str, int]] = []
    if tunneled and t.mode == "wireguard":
        out.append(("tunnel.port", "udp", t.port))
    if tunneled and t.mode == "ssh":
        out.append(("tunnel.ssh_port", "tcp", t.ssh_port))
    if mon.enabled:
        out.append(("monitoring.prometheus_port", "tcp", mon.prometheus_port))
        if mon.grafana:
            out.append(("monitoring.grafana_port", "tcp", mon.grafana_port))
    return out


@check
def published_ports_distinct(stack: Stack) -> Iterator[Problem]:
    taken: dict[tuple[str, int], str] = {}
    for path, proto, port in published_ports(stack):
        if (proto, port) in taken:
            yield Problem(
                path,
                f"{proto} port {port} is already published by {taken[(proto, port)]}: "
                "two services cannot listen on one host port",
                hint="give each published port its own number",
            )
        taken.setdefault((proto, port), path)


@check
def endpoint_reachable(stack: Stack) -> Iterator[Problem]:
    """An IP endpoint the tunnel itself would carry, or the node's own loopback, never answers."""
    endpoint = stack.tunnel.endpoint
    if HOST.refuse(endpoint):
        return
    try:
        addr = ipaddress.IPv4Address(endpoint)
    except ValueError:
        return
    controller = next((s for s in stack.sites if s.name == stack.controller.site), None)
    routed = [("tunnel.subnet", ipaddress.IPv4Network(stack.tunnel.subnet))]
    if controller is not None:
        routed.append(("the controller site's subnet", controller.network))
    if addr.is_loopback or addr.is_unspecified or addr.is_multicast or addr.is_link_local:
        yield Problem(
            "tunnel.endpoint",
            f"{addr} is not an address a node can dial the cloud site at (each node container "
            "has its own loopback)",
            hint="host.docker.internal for one host, else the cloud host's public address",
        )
        return
    for what, net in routed:
        if addr in net:
            yield Problem(
                "tunnel.endpoint",
                f"{addr} is inside {what} {net}: the tunnel would have to carry its own packets",
                hint="the cloud host's address as the local sites see it",
            )


@check
def aws_ranges_not_open_to_all(stack: Stack) -> Iterator[Problem]:
    why = {
        "trusted_cidrs": "anyone on the internet may try SSH logins on the bastion",
        "local_site_cidrs": "anyone on the internet may reach the tunnel port",
    }
    for name, reason in why.items():
        for i, cidr in enumerate(getattr(stack.aws, name)):
            try:
                net = ipaddress.IPv4Network(cidr, strict=True)
            except ValueError:
                continue  # reported by checks_grammar
            if net.prefixlen == 0:
                yield Problem(
                    f"aws.{name}[{i}]",
                    f"{cidr} opens the security group to every address: {reason}",
                    hint="list the addresses you connect from, e.g. 203.0.113.7/32",
                    level="warning",
                )


def _changed(model: BaseModel, name: str) -> bool:
    """Set to something other than its default (a re-read stack.json sets every field)."""
    return bool(getattr(model, name) != type(model).model_fields[name].default)


@check
def settings_that_do_nothing(stack: Stack) -> Iterator[Problem]:
    """A setting changed for a mode that is not on is probably a mistake: say it is ignored."""
    t, mon = stack.tunnel, stack.monitoring
    if t.mode == "wireguard":
        for name in ("ssh_port", "ssh_jump"):
            if _changed(t, name):
                yield Problem(
                    f"tunnel.{name}",
                    f"ignored: tunnel.mode is wireguard ({name} is for ssh mode)",
                    level="warning",
                )
    if not mon.enabled:
        for name in ("grafana", "dcgm", "prometheus_port", "grafana_port"):
            if _changed(mon, name):
                yield Problem(
                    f"monitoring.{name}",
                    "ignored: monitoring.enabled is false",
                    level="warning",
                )
