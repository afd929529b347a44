"""`.hpcstack/stack.json`: the fully resolved definition beside the output.

`hpcstack up/down/status` read this, not stack.yaml, so they act on what was generated.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from ..topology import Plan
from . import Artifact, renderer

STACK_JSON = ".hpcstack/stack.json"


@renderer("state")
def render_state(plan: Plan) -> Iterable[Artifact]:
    data = plan.stack.model_dump(mode="json")
    yield Artifact(STACK_JSON, json.dumps(data, indent=2, sort_keys=True) + "\n")
