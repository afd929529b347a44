"""What every string of the definition may contain, by the place it lands: one table,
grammars.toml in this package (its grammars, their regex fragments and every field's grammar),
read and checked here at import; a malformed table raises tables.TableError.

A value from stack.yaml ends up inside WireGuard, Slurm, compose, sshd, ssh_config, Prometheus,
Dockerfile or Terraform files. Each of those has its own syntax, and a newline or a `#`, `=`,
`$`, `[` in the wrong field would add a directive there (a `PostUp` line in a WireGuard config
runs a command as root). So every string field is checked against the grammar of its target
before anything is rendered; a field not named in FIELDS gets TEXT, which allows no control
character, quote, backslash, `$` or backtick, so a new field is safe before anyone adds it here.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pydantic import BaseModel

from hpcstack import tables

_IPV4_SHAPE = re.compile(r"[0-9.]+")


@dataclass(frozen=True)
class Grammar:
    """A named grammar: a full-match pattern, a length limit and an optional extra test."""

    name: str  # what the value must be, e.g. "a DNS name or IPv4 address"
    example: str  # shown as the hint
    pattern: re.Pattern[str]
    max_len: int = 253
    empty_ok: bool = False
    extra: Callable[[str], str | None] | None = None  # a reason the value is refused, or None

    def refuse(self, value: str) -> str | None:
        """Why `value` is not in this grammar, or None when it is."""
        if len(value) > self.max_len:  # first: a 10 MB value is refused without a scan
            return f"is {len(value)} characters long; at most {self.max_len}"
        bad = first_unsafe_char(value)
        if bad is not None:
            return bad
        if value == "" and self.empty_ok:
            return None
        if not self.pattern.fullmatch(value):
            return "does not match"
        return self.extra(value) if self.extra else None


def first_unsafe_char(value: str) -> str | None:
    """A control, format or separator character would start a new line or hide text."""
    for i, ch in enumerate(value):
        if ch != " " and not ch.isprintable():
            name = unicodedata.name(ch, "") or "a control character"
            return f"contains {name.lower()} (U+{ord(ch):04X}) at character {i + 1}"
    return None


def _host_extra(value: str) -> str | None:
    if _IPV4_SHAPE.fullmatch(value):
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            return "looks like an IPv4 address but is not one"
    elif value.rsplit(".", 1)[-1].isdigit():
        return "the last label of a DNS name cannot be all digits"
    return None


def _ipv4_extra(value: str) -> str | None:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return "looks like an IPv4 address but is not one"
    return None


def _cidr_extra(value: str) -> str | None:
    try:
        ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        return f"is not an IPv4 network in CIDR form ({exc})"
    return None


def _jump_extra(value: str) -> str | None:
    host = value.rsplit("@", 1)[-1]
    host, _, port = host.partition(":")
    if port and not 1 <= int(port) <= 65535:
        return f"port {port} is not between 1 and 65535"
    return _host_extra(host)


# The further tests a grammar may name (`extra = "host"` in grammars.toml).
EXTRAS: dict[str, Callable[[str], str | None]] = {
    "host": _host_extra,
    "cidr": _cidr_extra,
    "ipv4": _ipv4_extra,
    "jump": _jump_extra,
}
_TABLE = "grammars.toml"
_KEYS = {
    "name": str,
    "example": str,
    "pattern": str,
    "max_len": int,
    "empty_ok": bool,
    "extra": str,
}


def _grammar(key: str, entry: object, fragments: dict[str, str]) -> Grammar:
    where = f"{_TABLE} [grammar.{key}]"
    g = tables.entry(where, entry, _KEYS, {"name", "example", "pattern"})
    extra = g.get("extra")
    if extra is not None and extra not in EXTRAS:
        raise tables.TableError(f"{where}: no extra test {extra!r} in grammar.EXTRAS")
    return Grammar(
        g["name"],
        g["example"],
        re.compile(tables.fill(where, g["pattern"], fragments)),
        max_len=g.get("max_len", 253),
        empty_ok=g.get("empty_ok", False),
        extra=EXTRAS[extra] if extra is not None else None,
    )


def _load() -> tuple[dict[str, Grammar], dict[str, tuple[Grammar, str]]]:
    table = tables.load(__package__, _TABLE)
    fragments: dict[str, str] = {}
    for name, fragment in table.get("fragments", {}).items():  # in order: a later one uses earlier
        fragments[name] = tables.fill(f"{_TABLE} [fragments] {name}", str(fragment), fragments)
    grammars = {key: _grammar(key, entry, fragments) for key, entry in table["grammar"].items()}
    fields: dict[str, tuple[Grammar, str]] = {}
    for path, entry in table["fields"].items():
        if not (isinstance(entry, list) and len(entry) == 2 and entry[0] in grammars):
            raise tables.TableError(f"{_TABLE} [fields] {path!r}: want [GRAMMAR, where it lands]")
        fields[path] = (grammars[entry[0]], str(entry[1]))
    return grammars, fields


# Every grammar by its name in grammars.toml, and field path ([*] for any list index) -> its
# grammar and where the value lands.
GRAMMARS, FIELDS = _load()
HOST = GRAMMARS["HOST"]
HOSTNAME_PREFIX = GRAMMARS["HOSTNAME_PREFIX"]
IMAGE_REF = GRAMMARS["IMAGE_REF"]
LAB_NAME = GRAMMARS["LAB_NAME"]
SITE_NAME = GRAMMARS["SITE_NAME"]
SLURM_HOSTNAME = GRAMMARS["SLURM_HOSTNAME"]
SSH_PUBLIC_KEY = GRAMMARS["SSH_PUBLIC_KEY"]
TEXT = GRAMMARS["TEXT"]
_INDEX_RE = re.compile(r"\[\d+\]")


def grammar_for(path: str) -> tuple[Grammar, str]:
    """The grammar of a dotted path such as `sites[2].nodes[0].name` (TEXT when not listed)."""
    return FIELDS.get(_INDEX_RE.sub("[*]", path), (TEXT, "generated files"))


def string_fields(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every string value of a model, with its dotted path."""
    for name in type(model).model_fields:
        path = f"{prefix}.{name}" if prefix else name
        yield from _strings(getattr(model, name), path)


def _strings(value: object, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, BaseModel):
        yield from string_fields(value, path)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value
