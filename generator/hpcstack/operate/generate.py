"""The generate pipeline: definition -> plan -> artifacts -> files + secrets.

Two guards before anything is written:
- re-addressing: a node that keeps its name but would get another overlay address or ssh-mode
  port (sites reordered or inserted) is refused without `force`, naming each node old -> new;
  running nodes would otherwise drop off the tunnel.
- a workstation (`site`, or secrets imported from the controller) makes no cluster-wide secret:
  it checks that the site's files are here and says where they come from when they are not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from hpcstack.definition.load import load_definition
from hpcstack.definition.model import Stack
from hpcstack.errors import OutputError, Problem
from hpcstack.output.secrets import SecretFile, check_site_secrets, ensure_secrets, imported_site
from hpcstack.output.state import STACK_JSON, stack_json
from hpcstack.output.user_secrets import ensure_user_secrets, verify_user_keys
from hpcstack.output.writer import Change, manifest_artifact, plan_changes, write_tree
from hpcstack.plan.gpu import resolve_auto_gpus, uses_auto
from hpcstack.plan.topology import Plan, make_plan
from hpcstack.plan.tunnel import node_ports, ssh_mode
from hpcstack.render import Artifact, render_all


@dataclass(frozen=True)
class GenerateResult:
    plan: Plan
    changes: list[Change]
    secrets: list[SecretFile]
    warnings: list[Problem] = field(default_factory=list)


def resolve(stack: Stack) -> Stack:
    """Fill in what the definition leaves to the host (`gpus: auto`)."""
    return resolve_auto_gpus(stack) if uses_auto(stack) else stack


def node_addresses(plan: Plan) -> dict[str, str]:
    """node -> what its peers know it by across the tunnel: overlay address or ssh-mode port."""
    if ssh_mode(plan):
        return {name: f"port {port}" for name, port in node_ports(plan).items()}
    return {n.name: n.overlay_ip for s in plan.sites for n in s.nodes if n.overlay_ip}


def readdressed(old: Plan, new: Plan) -> list[str]:
    """`node: old -> new` for every node kept by name whose address or port would change."""
    before, after = node_addresses(old), node_addresses(new)
    return [
        f"{name}: {before[name]} -> {after[name]}"
        for name in sorted(before.keys() & after.keys())
        if before[name] != after[name]
    ]


def previous_plan(out_dir: Path) -> Plan | None:
    path = out_dir / STACK_JSON
    if not path.exists():
        return None
    try:
        return make_plan(Stack.model_validate(json.loads(path.read_text())))
    except ValueError:
        return None  # unreadable: nothing to compare with (load_generated reports it elsewhere)


def generate(
    config: Path,
    out_dir: Path,
    dry_run: bool = False,
    force: bool = False,
    site: str | None = None,
    strict: bool = False,
) -> GenerateResult:
    loaded = load_definition(config, strict=strict)
    stack = resolve(loaded.stack)
    plan = make_plan(stack)
    warnings: list[Problem] = list(loaded.warnings)
    # Nodes can only be running where this directory's secrets exist: a fresh clone (the
    # committed default output, no secrets/) may change any address before its first `up`.
    old = previous_plan(out_dir) if (out_dir / "secrets").is_dir() else None
    moved = readdressed(old, plan) if old is not None else []
    if moved:
        what = "; ".join(moved)
        if not force and not dry_run:
            raise OutputError(
                f"this definition re-addresses running nodes ({what}): sites were reordered or "
                "inserted. Add new sites at the end of `sites:` to keep the addresses, or run "
                "`hpcstack generate --force` and restart every site (nodes rejoin with the new "
                "addresses)"
            )
        warnings.append(Problem("sites", f"nodes re-addressed: {what}", level="warning"))
    site = site or imported_site(out_dir)
    artifacts = [*render_all(plan), Artifact(STACK_JSON, stack_json(plan))]
    artifacts.sort(key=lambda a: a.path)
    artifacts.append(manifest_artifact(artifacts))
    changes = plan_changes(out_dir, artifacts, force=force)
    if site is not None:
        # A workstation: check before writing anything, and never make a secret here.
        secrets = check_site_secrets(out_dir, plan, site)
        if not dry_run:
            write_tree(out_dir, artifacts, changes)
        return GenerateResult(plan, changes, secrets, warnings)
    secrets = ensure_secrets(out_dir, plan, dry_run=True)  # refuses a bad secrets/ before any write
    verify_user_keys(out_dir / "secrets", plan)
    if dry_run:
        return GenerateResult(plan, changes, secrets, warnings)
    write_tree(out_dir, artifacts, changes)
    secrets = ensure_secrets(out_dir, plan)
    secrets += [
        SecretFile(path, "created" if created else "kept")
        for path, created in ensure_user_secrets(out_dir / "secrets", plan)
    ]
    return GenerateResult(plan, changes, secrets, warnings)
