"""Read stack.yaml: YAML with positions, then the pydantic model, every problem with its line.

Phase one of validation (structure). Phase two (meaning) is :mod:`hpcstack.validate`.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hpcstack.definition.model import Stack
from hpcstack.errors import ConfigFileError, DefinitionError, Problem

Loc = tuple[str | int, ...]


class _PositionIndex:
    """Maps a path in the YAML document to the line and column where it is written."""

    def __init__(self) -> None:
        self.key_pos: dict[Loc, tuple[int, int]] = {}
        self.value_pos: dict[Loc, tuple[int, int]] = {}

    def find(self, loc: Loc, prefer_key: bool = False) -> tuple[int, int]:
        """Position of `loc`, or of its nearest written ancestor."""
        for n in range(len(loc), -1, -1):
            sub = loc[:n]
            order = (self.key_pos, self.value_pos) if prefer_key else (self.value_pos, self.key_pos)
            for table in order:
                if sub in table:
                    return table[sub]
        return (0, 0)


def _compose(text: str, file: str) -> tuple[Any, _PositionIndex]:
    """Parse YAML to plain data, recording positions; duplicate keys are an error."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ConfigFileError(f"{file}{pos}: YAML syntax error: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{file}: YAML error: {exc}") from None
    index = _PositionIndex()
    dupes: list[Problem] = []
    constructor = yaml.SafeLoader("")

    def walk(node: yaml.Node, loc: Loc) -> Any:
        index.value_pos[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for k_node, v_node in node.value:
                key = constructor.construct_object(k_node, deep=True)
                sub = (*loc, key)
                if key in out:
                    dupes.append(
                        Problem(
                            path=_dotted(sub),
                            message="key given twice (the second would silently win)",
                            file=file,
                            line=k_node.start_mark.line + 1,
                            col=k_node.start_mark.column + 1,
                        )
                    )
                index.key_pos[sub] = (k_node.start_mark.line + 1, k_node.start_mark.column + 1)
                out[key] = walk(v_node, sub)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [walk(item, (*loc, i)) for i, item in enumerate(node.value)]
        return constructor.construct_object(node, deep=True)

    data = walk(root, ()) if root is not None else None
    if dupes:
        raise DefinitionError(problems=dupes, source_lines=text.splitlines())
    return data, index


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The pydantic model class that describes the mapping at `loc`, if any."""
    model: Any = Stack
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        model = _inner_model(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    """Unwrap list[X] / X | None to the model class X."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _problems_from(exc: ValidationError, index: _PositionIndex, file: str) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc: Loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
        hint = ""
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}"
            parent = _model_at(loc[:-1])
            if parent is not None:
                close = difflib.get_close_matches(str(loc[-1]), list(parent.model_fields), n=1)
                if close:
                    hint = f"did you mean {close[0]!r}?"
                else:
                    hint = "allowed: " + ", ".join(parent.model_fields)
        elif err["type"] == "missing":
            message = f"required key {loc[-1]!r} is missing"
            loc_for_pos: Loc = loc[:-1]
            line, col = index.find(loc_for_pos)
            problems.append(Problem(_dotted(loc), message, file, line, col, hint))
            continue
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        line, col = index.find(loc, prefer_key=err["type"] == "extra_forbidden")
        problems.append(Problem(_dotted(loc), message, file, line, col, hint))
    return _dedupe_union_noise(problems)


def _is_union_tag(part: str | int) -> bool:
    # pydantic adds the union member's name ("int", "list[int]", "literal['auto']") to loc.
    return isinstance(part, str) and (
        part in {"int", "str", "bool"} or part.startswith(("list[", "literal[", "function-"))
    )


def _dedupe_union_noise(problems: list[Problem]) -> list[Problem]:
    """A value that fits no member of a union yields one error per member: keep one."""
    seen: dict[str, Problem] = {}
    for p in problems:
        if p.path in seen and seen[p.path].line == p.line:
            prev = seen[p.path]
            seen[p.path] = Problem(
                p.path, f"{prev.message}; or {p.message}", p.file, p.line, p.col, p.hint
            )
            continue
        seen[p.path] = p
    return list(seen.values())


def read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError(f"{path}: no such file (give one with -c/--config)") from None
    except IsADirectoryError:
        raise ConfigFileError(f"{path}: is a directory, not a definition file") from None
    except UnicodeDecodeError as exc:
        raise ConfigFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read: {exc.strerror}") from None
    return text


def parse_stack(text: str, file: str = "stack.yaml") -> tuple[Stack, _PositionIndex]:
    """Structure check: YAML -> Stack, or DefinitionError with every problem positioned."""
    if not text.strip():
        raise ConfigFileError(
            f"{file}:1:1: the definition is empty (see stack.yaml for an example)"
        )
    data, index = _compose(text, file)
    if data is None:
        raise ConfigFileError(f"{file}:1:1: the definition holds only comments")
    if not isinstance(data, dict):
        raise ConfigFileError(f"{file}:1:1: the definition must be a mapping of keys, not a value")
    try:
        stack = Stack.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(
            problems=_problems_from(exc, index, file), source_lines=text.splitlines()
        ) from None
    return stack, index


def load_stack(path: Path) -> Stack:
    """Both phases: structure and meaning. Raises with every problem found."""
    from hpcstack.definition.checks import check_stack

    text = read_text(path)
    stack, index = parse_stack(text, str(path))
    # Warnings (level="warning") are not raised here yet: `validate --strict` will report them.
    problems = [p for p in check_stack(stack) if p.level == "error"]
    if problems:
        positioned = [
            Problem(
                p.path,
                p.message,
                str(path),
                *index.find(_parse_dotted(p.path)),
                p.hint,
            )
            for p in problems
        ]
        raise DefinitionError(problems=positioned, source_lines=text.splitlines())
    return stack


def _parse_dotted(path: str) -> Loc:
    out: list[str | int] = []
    for part in path.replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("["):
            out.append(int(part.strip("[]")))
        else:
            out.append(part)
    return tuple(out)
