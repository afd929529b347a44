"""The check registry: `@check` adds a function to CHECKS. A leaf of the definition layer, so
check modules (checks_grammar, checks_addresses, checks_consistency, checks_aws, ...) import
the decorator from here and checks.py imports them without an import cycle."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from hpcstack.definition.model import Stack
from hpcstack.errors import Problem

Check = Callable[[Stack], Iterator[Problem]]
CHECKS: list[Check] = []


def check(fn: Check) -> Check:
    CHECKS.append(fn)
    return fn
