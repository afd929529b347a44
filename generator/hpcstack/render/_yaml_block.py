"""A fast path for `to_yaml`: the block YAML PyYAML writes for plain data, without PyYAML's nodes.

A 1,000-node cluster's compose files hold some 100,000 scalars; PyYAML's representer and
resolver (Python even under libyaml's emitter) spent most of a second on them. This writes the
same bytes directly for what generated files hold: dicts and lists (exact types) of str, int,
bool and None, in block style, keys in the order given.

Where the text is not certain it defers to PyYAML (`dump`), so the output never differs:
- a scalar that is not a short, single-line, printable ASCII string, int, bool or None (a line
  break, non-ASCII, a float, a line long enough with spaces that the emitter may fold it) is
  dumped by PyYAML alone at the same column, and its text spliced in: PyYAML's emitter compares
  columns only with the width, so shifting the column and the width together shifts the text;
- anything else (a key that is not a str of 1 to 127 characters, a root scalar, another type, a
  width of 4 or less) makes `block_yaml` return None: the caller dumps the whole value.

The style rules mirrored (libyaml's yaml_emitter_analyze_scalar and select_scalar_style, the same
as PyYAML's Python emitter for this subset): a string is plain unless it is empty, starts or
ends with a space, starts with an indicator or `---`/`...`, holds ': ' or ' #' or ends with
':', or reads as another type (`true`, `1.5`, `~`): then single-quoted. tests/test_yaml_block.py
checks the two writers agree (random documents, both emitters, narrow widths).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import yaml
from yaml.resolver import Resolver

Dump = Callable[[Any, int], str]
"""PyYAML's text for a value at a width: the writer this one must match."""

_STR_TAG = "tag:yaml.org,2002:str"
_RESOLVER = Resolver()
_INDICATORS = frozenset("#,[]{}&*!|>'\"%@`")  # as a first character: never plain
_SPACED_INDICATORS = frozenset("?:-")  # as a first character followed by a space (or alone)
# Keys this long are "complex" (`? key`); libyaml and PyYAML's Python emitter disagree at 128,
# and on the empty key (libyaml: `'': v`, Python: `? ''`): both are left to PyYAML.
_KEY_MAX = 128


class _Unsupported(Exception):
    """The value is outside what this writer is sure of: PyYAML writes the whole of it."""


@lru_cache(maxsize=1 << 16)
def _string(s: str) -> str | None:
    """`s` as the emitter writes it where nothing folds it, or None when not sure."""
    if not s:
        return "''"
    if not (s.isascii() and s.isprintable()):
        return None
    plain = not (
        s[0] == " "
        or s[-1] == " "
        or s.startswith(("---", "..."))
        or s[0] in _INDICATORS
        or (s[0] in _SPACED_INDICATORS and (len(s) == 1 or s[1] == " "))
        or ": " in s
        or s[-1] == ":"
        or " #" in s
    )
    if plain and _plain_reads_as_str(s):
        return s
    return "'" + s.replace("'", "''") + "'"


def _plain_reads_as_str(s: str) -> bool:
    """Not `true`, `1.5`, `~` and the like: PyYAML's resolver, as its serializer asks it."""
    tag = _RESOLVER.resolve(yaml.ScalarNode, s, (True, False))  # type: ignore[no-untyped-call]
    return bool(tag == _STR_TAG)


def _scalar(value: Any) -> str | None:
    """A scalar's text, or None where PyYAML must write it (a float, a string it may quote
    otherwise); raises _Unsupported for a type PyYAML's safe representer may not take."""
    kind = type(value)
    if kind is str:
        return _string(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    if kind is float:
        return None
    raise _Unsupported


@lru_cache(maxsize=1 << 12)
def _key(key: str) -> str:
    """A mapping key's text; raises _Unsupported where PyYAML might write `? key`."""
    text = _string(key) if 0 < len(key) < _KEY_MAX else None
    if text is None:
        raise _Unsupported
    return text


class _Writer:
    def __init__(self, width: int, dump: Dump) -> None:
        self.width = width
        self.dump = dump
        self.parts: list[str] = []

    def mapping(self, doc: dict[Any, Any], pad: str, lead: str) -> None:
        """A block mapping with its keys at column len(pad); the first line starts with `lead`
        (as long as `pad`: the `- ` of a sequence item holding it)."""
        append, width = self.parts.append, self.width
        for key, value in doc.items():
            if type(key) is not str:
                raise _Unsupported
            head = lead + _key(key) + ":"
            lead = pad
            kind = type(value)
            if kind is str or not (kind is dict or kind is list):
                text = _string(value) if kind is str else _scalar(value)
                # A fold needs a space past the width: a line within it, or none, has none.
                if text is not None and (" " not in text or len(head) + len(text) < width):
                    append(f"{head} {text}\n")
                else:
                    self.alone(head, pad, {key: value}, _key(key) + ":")
            elif not value:
                append(head + (" {}\n" if kind is dict else " []\n"))
            else:
                append(head + "\n")
                if kind is dict:
                    self.mapping(value, pad + "  ", pad + "  ")
                else:
                    self.sequence(value, pad, pad)  # a mapping's sequence is not indented

    def sequence(self, items: list[Any], pad: str, lead: str) -> None:
        """A block sequence with its dashes at column len(pad), the first line led by `lead`."""
        append, width = self.parts.append, self.width
        for item in items:
            head = lead + "-"
            lead = pad
            kind = type(item)
            if kind is str or not (kind is dict or kind is list):
                text = _string(item) if kind is str else _scalar(item)
                if text is not None and (" " not in text or len(head) + len(text) < width):
                    append(f"{head} {text}\n")
                else:
                    self.alone(head, pad, [item], "-")
            elif not item:
                append(head + (" {}\n" if kind is dict else " []\n"))
            elif kind is dict:
                self.mapping(item, pad + "  ", head + " ")
            else:
                self.sequence(item, pad + "  ", head + " ")

    def alone(self, head: str, pad: str, alone: Any, alone_head: str) -> None:
        """`head` then a scalar as PyYAML writes it: `alone` holds it at the root (after
        `alone_head`), dumped at the width less the column, the text shifted back."""
        shifted = self.width - len(pad)
        if shifted <= 4:  # PyYAML reads a width this small as 80
            raise _Unsupported
        written = self.dump(alone, shifted)
        if not written.startswith(alone_head) or not written.endswith("\n"):
            raise _Unsupported
        first, _, more = written[len(alone_head) : -1].partition("\n")
        self.parts.append(head + first + "\n")
        if more:
            self.parts.extend((pad + line if line else line) + "\n" for line in more.split("\n"))


def block_yaml(value: Any, width: int, dump: Dump) -> str | None:
    """`value` as `dump(value, width)` writes it, or None where the caller must call dump."""
    kind = type(value)
    if width <= 4 or kind not in (dict, list):
        return None
    if not value:
        return "{}\n" if kind is dict else "[]\n"
    writer = _Writer(width, dump)
    try:
        if kind is dict:
            writer.mapping(value, "", "")
        else:
            writer.sequence(value, "", "")
    except _Unsupported:
        return None
    return "".join(writer.parts)
