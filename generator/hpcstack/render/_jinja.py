"""The one Jinja2 environment: StrictUndefined, trailing newlines kept, filters registered once."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import yaml
from jinja2 import Environment, PackageLoader, StrictUndefined


def _to_yaml(value: Any, indent: int = 0) -> str:
    text = yaml.safe_dump(value, sort_keys=False, default_flow_style=False, width=1000)
    pad = " " * indent
    return "".join(pad + line if line.strip() else line for line in text.splitlines(True)).rstrip()


def _to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("hpcstack", "templates"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["to_yaml"] = _to_yaml
    env.filters["to_json"] = _to_json
    return env


def render_template(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


def read_static(name: str) -> str:
    """A template file used verbatim (scripts, rules): no Jinja processing."""
    loader = environment().loader
    assert loader is not None
    source, _, _ = loader.get_source(environment(), name)
    return source
