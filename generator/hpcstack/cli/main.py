"""`hpcstack` entry point: the one place where errors become messages and exit codes."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click
from rich.console import Console

from hpcstack import __version__
from hpcstack.errors import DefinitionError, HpcStackError, Problem

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class HpcStackGroup(click.Group):
    """Maps HpcStackError to exit 1 with a message and no traceback; usage errors exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DefinitionError as exc:
            print_definition_error(exc)
            sys.exit(exc.exit_code)
        except HpcStackError as exc:
            err_console.print("[bold red]error:[/] ", end="")
            err_console.print(str(exc), markup=False)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)


# Printed at most; the rest is counted (a broken generated file must not print for minutes).
MAX_SHOWN = 50


def print_definition_error(exc: DefinitionError) -> None:
    n = len(exc.problems)
    err_console.print(f"[bold red]error:[/] the definition has {n} problem{'s' * (n != 1)}:")
    print_problems(exc.problems, exc.source_lines)


def print_problems(problems: list[Problem], source_lines: list[str]) -> None:
    """Each problem with its source line and a caret; at most MAX_SHOWN of them."""
    for p in problems[:MAX_SHOWN]:
        err_console.print(p.format(), markup=False)
        if p.line and 0 < p.line <= len(source_lines):
            src = source_lines[p.line - 1][:200]
            err_console.print(f"    {src}", markup=False)
            err_console.print("    " + " " * min(max(p.col - 1, 0), 200) + "^", markup=False)
    if len(problems) > MAX_SHOWN:
        err_console.print(f"... and {len(problems) - MAX_SHOWN} more", markup=False)


def print_warnings(warnings: list[Problem], source_lines: list[str] | None = None) -> None:
    """Warnings: printed on stderr, the command goes on (exit 0); `--strict` makes them errors."""
    if not warnings:
        return
    n = len(warnings)
    err_console.print(f"[bold yellow]warning:[/] the definition has {n} warning{'s' * (n != 1)}:")
    print_problems(warnings, source_lines or [])


class LazyGroup(HpcStackGroup):
    """Imports a command module only when needed: `validate` must not pay for boto3 and docker
    clients at start (validate's time budget is 2 s on a 10 MB file, start-up included)."""

    FIRST = "definition"  # validate, generate: looked up before importing the rest

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None:
            _register(self.FIRST)
            found = super().get_command(ctx, cmd_name)
        if found is None:
            _register()
            found = super().get_command(ctx, cmd_name)
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        _register()
        return super().list_commands(ctx)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hpcstack")
@click.option("-v", "--verbose", count=True, help="More output (-vv shows every command run).")
def cli(verbose: int) -> None:
    """Describe a hybrid Slurm cluster in stack.yaml; hpcstack makes it real."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s"
    )


COMMAND_MODULES = ("definition", "cluster", "secrets", "aws", "doctor", "rest", "scale")


def _register(*only: str) -> None:
    # Each command module exposes COMMANDS: a list of click commands/groups to add.
    import importlib

    for name in only or COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__package__}.{name}":
                continue
            raise
        for command in getattr(mod, "COMMANDS", []):
            if command.name not in cli.commands:
                cli.add_command(command)


def main() -> None:
    cli(prog_name="hpcstack")


if __name__ == "__main__":
    main()
