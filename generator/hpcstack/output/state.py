"""`.hpcstack/`: the resolved definition saved beside the output, and reading it back.

`hpcstack up/down/status/...` act on this saved plan, not on stack.yaml, so they act on what
was generated.
"""

from __future__ import annotations

import json
from pathlib import Path

from hpcstack.definition.model import Stack
from hpcstack.errors import StateError
from hpcstack.plan.topology import Plan, make_plan

STATE_DIR = ".hpcstack"
STACK_JSON = f"{STATE_DIR}/stack.json"
MANIFEST = f"{STATE_DIR}/manifest.json"


def stack_json(plan: Plan) -> str:
    return json.dumps(plan.stack.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


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
