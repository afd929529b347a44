"""Plain YAML data, bounded: the definition's reader.

libyaml's parser (the C one when PyYAML has it) yields events; this module builds dicts, lists
and scalars from them itself, so every limit is checked as the document is read and nothing is
built past one: at most MAX_NODES values, MAX_DEPTH levels, MAX_ALIASES aliases reaching at
most MAX_ALIAS_NODES values in all (an alias bomb stops at the first alias over the budget).
Only plain data is accepted: no tags but the core ones, string keys only, no recursive or
undefined aliases, no merge keys, one document. Every refusal names the line and column.

Positions are kept in a tree beside the data (`Positions`) so a problem found later, by
pydantic or by a check, is reported at the line it comes from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from hpcstack.errors import ConfigFileError, DefinitionError, Problem

MAX_NODES = 50_000
MAX_DEPTH = 32
MAX_ALIASES = 100
MAX_ALIAS_NODES = 10_000

_CORE = "tag:yaml.org,2002:"
SCALAR_TAGS = {f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null")}
COLLECTION_TAGS = {f"{_CORE}map", f"{_CORE}seq", "!"}
# What YAML itself forbids in a stream (YAML 1.1 "printable"), found before parsing.
_NOT_YAML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# A plain scalar starting with none of these is a string under YAML 1.1's implicit resolvers
# (bool, float, int, merge, null, timestamp, value): the common case skips the resolver.
_RESOLVED_FIRST = frozenset("yYnNtTfFoO-+0123456789.<~=")
_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9_]*)")

Key = str | int


class Positions:
    """Where one value is written: its key's position, its own, and its children's."""

    __slots__ = ("children", "key", "value")

    def __init__(self, value: tuple[int, int], key: tuple[int, int] | None = None) -> None:
        self.value = value
        self.key = key
        self.children: dict[Key, Positions] | None = None

    def find(self, loc: tuple[Key, ...], prefer_key: bool = False) -> tuple[int, int]:
        """Position of `loc`, or of its nearest written ancestor."""
        node = self
        for part in loc:
            child = node.children.get(part) if node.children is not None else None
            if child is None:
                return node.value
            node = child
        if prefer_key and node.key is not None:
            return node.key
        return node.value


@dataclass
class _Frame:
    container: dict[str, Any] | list[Any]
    pos: Positions
    anchor: str | None
    first_node: int  # the node count when it opened (for the anchor's size)
    key: str | None = None
    key_pos: tuple[int, int] | None = None
    expecting_key: bool = True


@dataclass
class _Anchor:
    value: Any
    size: int
    pos: Positions


@dataclass
class _Reader:
    file: str
    resolver: Any = field(default_factory=lambda: yaml.SafeLoader(""))
    stack: list[_Frame] = field(default_factory=list)
    anchors: dict[str, _Anchor | None] = field(default_factory=dict)  # None: still open
    nodes: int = 0
    aliases: int = 0
    alias_nodes: int = 0
    dupes: list[Problem] = field(default_factory=list)
    root: Any = None
    root_pos: Positions | None = None
    documents: int = 0

    def fail(self, mark: Any, message: str) -> ConfigFileError:
        return ConfigFileError(f"{self.file}:{mark.line + 1}:{mark.column + 1}: {message}")

    def count(self, mark: Any, n: int = 1) -> None:
        self.nodes += n
        if self.nodes > MAX_NODES:
            raise self.fail(
                mark,
                f"the definition holds over {MAX_NODES} values: a cluster definition needs far "
                "fewer (use prefix/count for many nodes)",
            )

    def attach(self, value: Any, pos: Positions, mark: Any) -> None:
        if not self.stack:
            self.root, self.root_pos = value, pos
            return
        frame = self.stack[-1]
        assert frame.pos.children is not None
        if isinstance(frame.container, list):
            frame.pos.children[len(frame.container)] = pos
            frame.container.append(value)
            return
        if frame.expecting_key:
            if not isinstance(value, str):
                raise self.fail(mark, f"a key must be a name, not {_kind(value)} (quote it)")
            frame.key, frame.key_pos, frame.expecting_key = value, pos.value, False
            return
        key = frame.key
        assert key is not None and frame.key_pos is not None
        if key in frame.container:
            self.dupes.append(
                Problem(
                    path=key,  # replaced by the full path in read_yaml
                    message="key given twice (the second would silently win)",
                    file=self.file,
                    line=frame.key_pos[0],
                    col=frame.key_pos[1],
                )
            )
        frame.container[key] = value
        pos.key = frame.key_pos
        frame.pos.children[key] = pos
        frame.expecting_key = True

    def scalar(self, ev: Any) -> None:  # a yaml.ScalarEvent (C or Python parser)
        mark = ev.start_mark
        self.count(mark)
        tag = ev.tag
        text = ev.value
        if tag is None and (not ev.implicit[0] or (text and text[0] not in _RESOLVED_FIRST)):
            value: Any = text  # quoted, or plain text no resolver claims
        elif tag is None and _DECIMAL.fullmatch(text) and "_" not in text:
            value = int(text)
        elif tag == "!":
            value = text
        elif tag is None:
            tag = self.resolver.resolve(yaml.ScalarNode, ev.value, ev.implicit)
            value = self.construct(tag, ev)
        elif tag in SCALAR_TAGS:
            value = self.construct(tag, ev)
        else:
            raise self._bad_tag(ev.tag, mark)
        if (
            tag == f"{_CORE}merge"
            and self.stack
            and isinstance(self.stack[-1].container, dict)
            and self.stack[-1].expecting_key
        ):
            raise self.fail(mark, "merge keys (<<) are not supported: write the keys out")
        self.anchor_scalar(ev.anchor, value, mark)
        self.attach(value, Positions((mark.line + 1, mark.column + 1)), mark)

    def construct(self, tag: str, ev: Any) -> Any:
        if tag in (f"{_CORE}str", f"{_CORE}timestamp", f"{_CORE}merge"):
            return ev.value  # a date written as a value is meant as text here
        node = yaml.ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, style=ev.style)
        try:
            return self.resolver.yaml_constructors[tag](self.resolver, node)
        except (ValueError, KeyError, TypeError, yaml.YAMLError):
            short = tag.replace(_CORE, "!!")
            raise self.fail(ev.start_mark, f"{ev.value!r:.40} cannot be read as {short}") from None

    def anchor_scalar(self, anchor: str | None, value: Any, mark: Any) -> None:
        if anchor is None:
            return
        self._new_anchor(anchor, mark)
        self.anchors[anchor] = _Anchor(value, 1, Positions((mark.line + 1, mark.column + 1)))

    def _new_anchor(self, anchor: str, mark: Any) -> None:
        if anchor in self.anchors:
            raise self.fail(mark, f"anchor &{anchor} is defined twice")

    def _bad_tag(self, tag: str | None, mark: Any) -> ConfigFileError:
        shown = (tag or "").replace(_CORE, "!!")
        return self.fail(
            mark,
            f"tag {shown} is not plain YAML data: a definition holds only mappings, lists, "
            "strings, numbers, booleans and null (remove the tag)",
        )

    def start(self, ev: Any) -> None:
        mark = ev.start_mark
        self.count(mark)
        if ev.tag is not None and ev.tag not in COLLECTION_TAGS:
            raise self._bad_tag(ev.tag, mark)
        if len(self.stack) >= MAX_DEPTH:
            raise self.fail(mark, f"nested deeper than {MAX_DEPTH} levels")
        if (
            self.stack
            and isinstance(self.stack[-1].container, dict)
            and self.stack[-1].expecting_key
        ):
            kind = "mapping" if isinstance(ev, yaml.MappingStartEvent) else "list"
            raise self.fail(mark, f"a key must be a name, not a {kind}")
        if ev.anchor is not None:
            self._new_anchor(ev.anchor, mark)
            self.anchors[ev.anchor] = None
        container: dict[str, Any] | list[Any] = {} if isinstance(ev, yaml.MappingStartEvent) else []
        pos = Positions((mark.line + 1, mark.column + 1))
        pos.children = {}
        self.stack.append(_Frame(container, pos, ev.anchor, self.nodes))

    def end(self, ev: Any) -> None:
        frame = self.stack.pop()
        if frame.anchor is not None:
            size = self.nodes - frame.first_node + 1
            self.anchors[frame.anchor] = _Anchor(frame.container, size, frame.pos)
        self.attach(frame.container, frame.pos, ev.start_mark)

    def alias(self, ev: Any) -> None:
        mark = ev.start_mark
        name = ev.anchor or ""
        if name not in self.anchors:
            raise self.fail(mark, f"alias *{name} names no anchor defined before it")
        target = self.anchors[name]
        if target is None:
            raise self.fail(mark, f"alias *{name} is inside its own anchor (a recursive alias)")
        self.aliases += 1
        self.alias_nodes += target.size
        if self.aliases > MAX_ALIASES or self.alias_nodes > MAX_ALIAS_NODES:
            raise self.fail(
                mark,
                f"too many aliases: at most {MAX_ALIASES} aliases reaching {MAX_ALIAS_NODES} "
                "values in all (an alias bomb?)",
            )
        self.count(mark, target.size)
        pos = Positions((mark.line + 1, mark.column + 1))
        self.attach(target.value, pos, mark)

    def feed(self, ev: Any) -> None:
        if isinstance(ev, yaml.ScalarEvent):
            self.scalar(ev)
        elif isinstance(ev, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            self.start(ev)
        elif isinstance(ev, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            self.end(ev)
        elif isinstance(ev, yaml.AliasEvent):
            self.alias(ev)
        elif isinstance(ev, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise self.fail(ev.start_mark, "a second YAML document (---): give one only")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if value is None:
        return "null"
    return "a mapping" if isinstance(value, dict) else "a list"


def _check_characters(text: str, file: str) -> None:
    bad = _NOT_YAML.search(text)
    if bad is None:
        return
    line = text.count("\n", 0, bad.start()) + 1
    col = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
    raise ConfigFileError(
        f"{file}:{line}:{col}: character U+{ord(bad.group()):04X} is not allowed in YAML "
        "(a control character; is this a text file?)"
    )


def read_yaml(text: str, file: str) -> tuple[Any, Positions]:
    """Plain data and its positions; ConfigFileError or DefinitionError (duplicate keys)."""
    _check_characters(text, file)
    reader = _Reader(file)
    parser = _Loader(text)
    try:
        while parser.check_event():
            reader.feed(parser.get_event())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ConfigFileError(f"{file}{where}: YAML syntax error: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{file}: YAML error: {exc}") from None
    finally:
        parser.dispose()
    if reader.dupes:
        raise DefinitionError(
            problems=_with_full_paths(reader.dupes, reader.root_pos), source_lines=text.splitlines()
        )
    return reader.root, reader.root_pos or Positions((1, 1))


def _with_full_paths(dupes: list[Problem], root: Positions | None) -> list[Problem]:
    """A duplicate key's path, found by its position in the tree."""
    where: dict[tuple[int, int], str] = {}

    def walk(pos: Positions, path: str) -> None:
        for key, child in (pos.children or {}).items():
            sub = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)
            if child.key is not None:
                where.setdefault(child.key, sub)
            walk(child, sub)

    if root is not None:
        walk(root, "")
    out = []
    for p in dupes:
        # The second key replaced the first in the tree, so its position finds its path.
        out.append(Problem(where.get((p.line, p.col), p.path), p.message, p.file, p.line, p.col))
    return out
