"""The package's data tables (definition/grammars.toml, render/dashboards.toml): read at import
and checked, so a malformed table fails loudly (TableError) before anything uses it.

A table's text may name a fragment as <NAME> (upper case); `fill` puts the fragment in. Not
str.format: regexes and PromQL are full of braces.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Any

_REF = re.compile(r"<([A-Z][A-Z0-9_]*)>")


class TableError(ValueError):
    """A data table of the package is malformed: a bug in hpcstack, not in the user's input."""


def load(package: str, name: str) -> dict[str, Any]:
    """The TOML file `name` shipped in `package` (see [tool.setuptools.package-data])."""
    text = resources.files(package).joinpath(name).read_text("utf-8")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TableError(f"{name}: {exc}") from exc


def entry(
    where: str, value: object, keys: Mapping[str, type], required: set[str]
) -> dict[str, Any]:
    """`value` as a table holding only `keys`, each of its type, and every `required` one."""
    if not isinstance(value, dict):
        raise TableError(f"{where}: not a table")
    for key, item in value.items():
        want = keys.get(key)
        if want is None or type(item) is not want:
            raise TableError(f"{where}: {key} = {item!r} is not allowed here")
    missing = required - value.keys()
    if missing:
        raise TableError(f"{where}: missing {', '.join(sorted(missing))}")
    return value


def fill(where: str, text: str, fragments: dict[str, str]) -> str:
    """`text` with every <NAME> replaced by fragments[NAME]; an unknown NAME is an error."""

    def sub(match: re.Match[str]) -> str:
        if match[1] not in fragments:
            raise TableError(f"{where}: no fragment <{match[1]}>")
        return fragments[match[1]]

    return _REF.sub(sub, text)
