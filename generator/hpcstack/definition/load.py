"""Read stack.yaml: bounded YAML with positions, then the pydantic model, then the checks.

Phase one of validation is structure (pydantic, every problem with its line); phase two is
meaning (:mod:`hpcstack.definition.checks`). The file itself is bounded first: a regular file
(never a pipe or a device: it is not opened otherwise), at most MAX_BYTES, plain YAML data
(:mod:`hpcstack.definition.yaml_reader`). Problems come as errors and warnings: warnings are
returned (`Loaded.warnings`), or raised with the errors under `strict`.
"""

from __future__ import annotations

import difflib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from hpcstack.definition.model import Stack
from hpcstack.definition.yaml_reader import Positions, read_yaml
from hpcstack.errors import ConfigFileError, DefinitionError, Problem

MAX_BYTES = 10 * 1024 * 1024
# Reported at most; past it the rest is counted (a broken 10 MB file must not print for minutes).
MAX_PROBLEMS = 200

Loc = tuple[str | int, ...]


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


def _problems_from(exc: ValidationError, index: Positions, file: str) -> list[Problem]:
    problems = []
    for err in exc.errors()[:MAX_PROBLEMS]:
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
        elif err["type"] == "string_type" and isinstance(err.get("input"), int | float):
            # YAML read `tag: 0.1` as a number; `26.10` would even become 26.1
            hint = 'quote the value so YAML reads it as text, e.g. "0.1"'
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
    """The file's text: a regular file of at most MAX_BYTES, UTF-8. Never blocks on a pipe."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ConfigFileError(f"{path}: no such file (give one with -c/--config)") from None
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigFileError(f"{path}: is a directory, not a definition file")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigFileError(f"{path}: not a regular file (a pipe, socket or device): not read")
    if info.st_size > MAX_BYTES:
        raise ConfigFileError(
            f"{path}: {info.st_size / 1024 / 1024:.1f} MB; a definition is at most "
            f"{MAX_BYTES // 1024 // 1024} MB"
        )
    try:
        # O_NONBLOCK: should the file be swapped for a pipe after the stat, open does not wait.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ConfigFileError(f"{path}: not a regular file: not read")
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise ConfigFileError(f"{path}: over {MAX_BYTES // 1024 // 1024} MB; not read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def parse_stack(text: str, file: str = "stack.yaml") -> tuple[Stack, Positions]:
    """Structure check: YAML -> Stack, or DefinitionError with every problem positioned."""
    if not text.strip():
        raise ConfigFileError(
            f"{file}:1:1: the definition is empty (see stack.yaml for an example)"
        )
    data, index = read_yaml(text, file)
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


@dataclass(frozen=True)
class Loaded:
    """A valid definition and the warnings it gave (printed; exit 0)."""

    stack: Stack
    warnings: list[Problem] = field(default_factory=list)


def check_text(text: str, file: str, strict: bool = False) -> Loaded:
    """Both phases on a definition's text. Raises DefinitionError with every problem found;
    warnings are returned, or raised with the errors when `strict`."""
    from hpcstack.definition.checks import check_stack

    stack, index = parse_stack(text, file)
    found = check_stack(stack)
    positioned = [
        Problem(p.path, p.message, file, *index.find(_parse_dotted(p.path)), p.hint, level=p.level)
        for p in found
    ]
    positioned.sort(key=lambda p: (p.line or 1 << 30, p.col))
    errors = [p for p in positioned if p.level == "error" or strict]
    if errors:
        raise DefinitionError(problems=errors[:MAX_PROBLEMS], source_lines=text.splitlines())
    return Loaded(stack, positioned)


def load_definition(path: Path, strict: bool = False) -> Loaded:
    """Read and check a definition file (see check_text)."""
    return check_text(read_text(path), str(path), strict=strict)


def load_stack(path: Path) -> Stack:
    """Both phases: structure and meaning. Raises with every error found; warnings are dropped
    here (use load_definition to get them)."""
    return load_definition(path).stack


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
