"""The generate pipeline: definition -> plan -> artifacts -> files + secrets."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import StateError
from .loader import load_stack
from .model import Stack
from .render import render_all
from .render.state import STACK_JSON
from .secrets import SecretFile, ensure_secrets
from .topology import Plan, make_plan
from .writer import Change, manifest_artifact, plan_changes, write_tree


@dataclass(frozen=True)
class GenerateResult:
    plan: Plan
    changes: list[Change]
    secrets: list[SecretFile]


def resolve(stack: Stack) -> Stack:
    """Fill in what the definition leaves to the host (`gpus: auto`)."""
    from .gpu import resolve_auto_gpus, uses_auto

    return resolve_auto_gpus(stack) if uses_auto(stack) else stack


def generate(
    config: Path, out_dir: Path, dry_run: bool = False, force: bool = False
) -> GenerateResult:
    stack = resolve(load_stack(config))
    plan = make_plan(stack)
    artifacts = render_all(plan)
    artifacts.append(manifest_artifact(artifacts))
    changes = plan_changes(out_dir, artifacts, force=force)
    if dry_run:
        return GenerateResult(plan, changes, ensure_secrets(out_dir, plan, dry_run=True))
    write_tree(out_dir, artifacts, changes)
    return GenerateResult(plan, changes, ensure_secrets(out_dir, plan))


def load_generated(out_dir: Path) -> Plan:
    """The plan of an already generated directory (what `up` and friends act on)."""
    path = out_dir / STACK_JSON
    if not path.exists():
        raise StateError(
            f"{out_dir} has not been generated ({STACK_JSON} is missing): "
            "run `hpcstack generate` first"
        )
    try:
        stack = Stack.model_validate(json.loads(path.read_text()))
    except ValueError as exc:
        raise StateError(f"{path}: unreadable ({exc}); run `hpcstack generate` again") from None
    return make_plan(stack)
