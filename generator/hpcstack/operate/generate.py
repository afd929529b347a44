"""The generate pipeline: definition -> plan -> artifacts -> files + secrets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hpcstack.definition.load import load_definition
from hpcstack.definition.model import Stack
from hpcstack.errors import Problem
from hpcstack.output.secrets import SecretFile, ensure_secrets
from hpcstack.output.state import STACK_JSON, stack_json
from hpcstack.output.writer import Change, manifest_artifact, plan_changes, write_tree
from hpcstack.plan.gpu import resolve_auto_gpus, uses_auto
from hpcstack.plan.topology import Plan, make_plan
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


def generate(
    config: Path, out_dir: Path, dry_run: bool = False, force: bool = False, strict: bool = False
) -> GenerateResult:
    loaded = load_definition(config, strict=strict)
    stack = resolve(loaded.stack)
    plan = make_plan(stack)
    artifacts = [*render_all(plan), Artifact(STACK_JSON, stack_json(plan))]
    artifacts.sort(key=lambda a: a.path)
    artifacts.append(manifest_artifact(artifacts))
    changes = plan_changes(out_dir, artifacts, force=force)
    if dry_run:
        secrets = ensure_secrets(out_dir, plan, dry_run=True)
        return GenerateResult(plan, changes, secrets, loaded.warnings)
    ensure_secrets(out_dir, plan, dry_run=True)  # refuses a bad secrets/ before any write
    write_tree(out_dir, artifacts, changes)
    return GenerateResult(plan, changes, ensure_secrets(out_dir, plan), loaded.warnings)
