"""One exception hierarchy; the CLI maps it to exit codes in one place."""

from __future__ import annotations

from dataclasses import dataclass, field


class HpcStackError(Exception):
    """Base class: a problem the user can act on. Printed without a traceback, exit 1."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One problem in the definition, with its place."""

    path: str  # dotted path in the definition, e.g. sites[1].nodes[0].cpus
    message: str
    file: str = ""
    line: int = 0  # 1-based; 0 when unknown
    col: int = 0
    hint: str = ""
    level: str = "error"  # "error" (exit 1, nothing written) or "warning" (printed, exit 0)

    def format(self) -> str:
        where = self.file or "<definition>"
        if self.line:
            where += f":{self.line}:{self.col}"
        text = f"{where}: {self.path or '(top)'}: {self.message}"
        if self.level != "error":
            text = f"{where}: {self.level}: {self.path or '(top)'}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


@dataclass
class DefinitionError(HpcStackError):
    """The definition is invalid; carries every problem found, not just the first."""

    problems: list[Problem] = field(default_factory=list)
    source_lines: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(p.format() for p in self.problems)


class ConfigFileError(HpcStackError):
    """The definition file cannot be read or parsed (missing, empty, YAML syntax)."""


class OutputError(HpcStackError):
    """Writing the generated tree failed or would overwrite a file the user edited."""


class StateError(HpcStackError):
    """The output directory is not what a command needs (not generated, stale, ...)."""


@dataclass
class ToolError(HpcStackError):
    """An external tool (docker, compose, ssh, aws) failed. Keeps the raw output."""

    command: list[str] = field(default_factory=list)
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    summary: str = ""

    def __str__(self) -> str:
        import shlex

        head = self.summary or "command failed"
        text = f"{head}: {shlex.join(self.command)}"
        if self.returncode is not None:
            text += f" (exit {self.returncode})"
        tail = (self.stderr or self.stdout).strip()
        if tail:
            lines = tail.splitlines()[-15:]
            text += "\n" + "\n".join("  " + ln for ln in lines)
        return text


class ClusterError(HpcStackError):
    """The running cluster is not in the state asked for (node not idle, job failed, ...)."""
