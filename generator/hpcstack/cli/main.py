"""`hpcstack` entry point: the one place where errors become messages and exit codes."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click
from rich.console import Console

from hpcstack import __version__
from hpcstack.errors import DefinitionError, HpcStackError

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


def print_definition_error(exc: DefinitionError) -> None:
    n = len(exc.problems)
    err_console.print(f"[bold red]error:[/] the definition has {n} problem{'s' * (n != 1)}:")
    for p in exc.problems:
        err_console.print(p.format(), markup=False)
        if p.line and 0 < p.line <= len(exc.source_lines):
            src = exc.source_lines[p.line - 1]
            err_console.print(f"    {src}", markup=False)
            err_console.print("    " + " " * max(p.col - 1, 0) + "^", markup=False)


@click.group(cls=HpcStackGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hpcstack")
@click.option("-v", "--verbose", count=True, help="More output (-vv shows every command run).")
def cli(verbose: int) -> None:
    """Describe a hybrid Slurm cluster in stack.yaml; hpcstack makes it real."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s"
    )


def _register() -> None:
    # Each command module exposes COMMANDS: a list of click commands/groups to add.
    import importlib

    for name in ("definition", "cluster", "secrets", "aws", "doctor"):
        try:
            mod = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__package__}.{name}":
                continue
            raise
        for command in getattr(mod, "COMMANDS", []):
            cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="hpcstack")


if __name__ == "__main__":
    main()
