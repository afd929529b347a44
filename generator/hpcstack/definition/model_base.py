"""The base of every definition model: strict (no extra keys, frozen) and a number type that
refuses YAML's booleans."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict


def _not_a_boolean(value: object) -> object:
    # YAML reads `true`/`yes`/`on` as booleans and pydantic would take them as 1: refuse.
    if isinstance(value, bool):
        raise ValueError(f"{str(value).lower()} is a boolean, not a number: write a number")
    return value


# An integer that refuses booleans (counts, CPUs, memory, ports, timeouts).
Number = Annotated[int, BeforeValidator(_not_a_boolean)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
