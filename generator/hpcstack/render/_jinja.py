"""The one Jinja2 environment: StrictUndefined, trailing newlines kept, filters registered once."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from hpcstack.render._yaml import to_yaml


def _to_yaml(value: Any, indent: int = 0) -> str:
    return to_yaml(value, width=1000, indent=indent).rstrip()


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


def template_names(prefix: str) -> list[str]:
    """Every template under `prefix/`, sorted."""
    return sorted(n for n in environment().list_templates() if n.startswith(prefix + "/"))
