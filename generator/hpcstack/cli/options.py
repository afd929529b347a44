"""What every command group shares: the consoles and the options naming files and directories."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


F = TypeVar("F", bound=Callable[..., Any])


def path_option(*decls: str, default: str, directory: bool, help: str) -> Callable[[F], F]:
    """A file (directory=False) or directory option, with its default shown."""
    kind = click.Path(path_type=Path, file_okay=not directory, dir_okay=directory)
    option: Callable[[F], F] = click.option(
        *decls, type=kind, default=Path(default), show_default=True, help=help
    )
    return option


# The generated directory a command acts on: its saved plan (.hpcstack/) and its secrets/.
dir_option = path_option(
    "-d", "--dir", "out_dir", default=".", directory=True,
    help="The generated directory (where `hpcstack generate -o` wrote).",
)  # fmt: skip
config_option = path_option(
    "-c", "--config", "config", default="stack.yaml", directory=False,
    help="The cluster definition.",
)  # fmt: skip
output_option = path_option(
    "-o", "--output", "output", default=".", directory=True,
    help="Directory to write compose/, images/, slurm/, ... into.",
)  # fmt: skip
