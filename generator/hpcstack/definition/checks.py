"""Phase two of validation: meaning. Small named checks over a structurally valid Stack.

Each check returns problems (path + message); the loader adds file positions. All checks run,
so the user sees every problem at once.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator

from hpcstack.contract import NODE_PORT_BASE
from hpcstack.definition.grammar import HOSTNAME_PREFIX, SITE_NAME, SLURM_HOSTNAME
from hpcstack.definition.model import HOSTNAME_RE, Stack
from hpcstack.definition.registry import CHECKS, Check, check

__all__ = ["CHECKS", "Check", "check", "check_stack"]
from hpcstack.errors import Problem

# Names the generated compose files use for services; a node may not take one.
RESERVED_NAMES = frozenset(
    {
        "slurmctld",
        "slurmdbd",
        "db",
        "prometheus",
        "grafana",
        "node-exporter",
        "dcgm-exporter",
        "tunnel",
        "sshd",
        "ssh-tunnel",
        "localhost",
        "controller",
        "slurm-exporter",
    }
)
COMPOSE_PROJECT_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")


def check_stack(stack: Stack) -> list[Problem]:
    """Every problem of every check, errors and warnings (Problem.level) alike."""
    problems: list[Problem] = []
    for fn in CHECKS:
        problems.extend(fn(stack))
    return problems


@check
def exactly_one_controller_site(stack: Stack) -> Iterator[Problem]:
    names = [s.name for s in stack.sites]
    if stack.controller.site not in names:
        close = difflib.get_close_matches(stack.controller.site, names, n=1)
        yield Problem(
            "controller.site",
            f"no site named {stack.controller.site!r}",
            hint=f"did you mean {close[0]!r}?" if close else f"sites: {', '.join(names)}",
        )
    cloud = [i for i, s in enumerate(stack.sites) if s.role == "cloud"]
    if len(cloud) != 1:
        yield Problem(
            "sites",
            "exactly one site must have role 'cloud' (it hosts the controller); "
            f"found {len(cloud)}",
        )
    elif stack.controller.site in names and stack.sites[cloud[0]].name != stack.controller.site:
        yield Problem(
            "controller.site",
            f"the controller must be on the cloud site {stack.sites[cloud[0]].name!r}",
        )


@check
def site_names_usable(stack: Stack) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for i, site in enumerate(stack.sites):
        # The name's grammar is checked in checks_grammar; here, what it must not clash with.
        if SITE_NAME.refuse(site.name):
            continue
        if not COMPOSE_PROJECT_RE.fullmatch(f"{stack.cluster.name}-{site.name}"):
            yield Problem(f"sites[{i}].name", "not usable in a compose project name")
        if site.name in seen:
            yield Problem(
                f"sites[{i}].name",
                f"site name {site.name!r} is already used by sites[{seen[site.name]}]",
            )
        seen.setdefault(site.name, i)


@check
def node_names_unique_and_valid(stack: Stack) -> Iterator[Problem]:
    seen: dict[str, str] = {}
    for i, site in enumerate(stack.sites):
        for j, group in enumerate(site.nodes):
            key = "name" if group.name is not None else "prefix"
            path = f"sites[{i}].nodes[{j}].{key}"
            if (SLURM_HOSTNAME if group.name is not None else HOSTNAME_PREFIX).refuse(
                group.name or group.prefix or ""
            ):
                continue  # reported by checks_grammar
            for node in group.node_names:
                if not HOSTNAME_RE.fullmatch(node):
                    yield Problem(
                        path,
                        f"node name {node!r} is not a valid Slurm hostname "
                        "(lower-case letters, digits and '-', starting with a letter)",
                    )
                    break
                if node in RESERVED_NAMES:
                    yield Problem(path, f"node name {node!r} is reserved for a service")
                    break
                if node in seen:
                    yield Problem(path, f"node name {node!r} is already used at {seen[node]}")
                    break
                seen[node] = path


@check
def local_sites_have_nodes(stack: Stack) -> Iterator[Problem]:
    for i, site in enumerate(stack.sites):
        if site.role == "local" and not site.nodes:
            yield Problem(f"sites[{i}].nodes", f"local site {site.name!r} has no compute nodes")
    if not any(site.nodes for site in stack.sites):
        yield Problem("sites", "no compute nodes defined in any site")


@check
def gpus_not_shared(stack: Stack) -> Iterator[Problem]:
    """Two compute containers on one host never share a GPU."""
    for i, site in enumerate(stack.sites):
        owner: dict[int, str] = {}
        for j, group in enumerate(site.nodes):
            if not isinstance(group.gpus, list):
                continue
            if group.count > 1:
                yield Problem(
                    f"sites[{i}].nodes[{j}].gpus",
                    "an explicit GPU index list is for one node; with 'count' give a number",
                )
                continue
            for idx in group.gpus:
                if idx in owner:
                    yield Problem(
                        f"sites[{i}].nodes[{j}].gpus",
                        f"GPU {idx} on site {site.name!r} is already given to {owner[idx]}",
                    )
                owner[idx] = group.node_names[0]
        if any(g.gpus == "auto" for g in site.nodes) and sum(1 for g in site.nodes if g.gpus) > 1:
            yield Problem(
                f"sites[{i}].nodes",
                "'gpus: auto' takes every GPU of the host: use it on one node of the site only",
            )


@check
def ssh_node_ports_fit(stack: Stack) -> Iterator[Problem]:
    """ssh mode gives every tunneled node its own port on the sshd; they must all exist."""
    if stack.tunnel.mode != "ssh":
        return
    tunneled = sum(len(s.node_names) for s in stack.sites if s.name != stack.controller.site)
    if NODE_PORT_BASE + tunneled - 1 > 65535:
        yield Problem(
            "tunnel.mode",
            f"ssh mode needs one port per tunneled node from {NODE_PORT_BASE}: "
            f"{tunneled} nodes do not fit; use WireGuard",
        )


from hpcstack.definition.checks_aws import AWS_CHECKS  # noqa: E402  (the aws: checks)

CHECKS.extend(AWS_CHECKS)

# Checks in their own modules register themselves with @check (from definition.registry) when
# imported here (one line each).
from hpcstack.definition import checks_grammar, checks_addresses, checks_consistency  # noqa: E402,F401,I001
from hpcstack.definition import checks_mounts, checks_users  # noqa: E402,F401
