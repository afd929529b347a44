"""What every command group shares: the consoles and the options naming files and directories."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

# The generated directory a command acts on: its saved plan (.hpcstack/) and its secrets/.
dir_option = click.option(
    "-d",
    "--dir",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("."),
    show_default=True,
    help="The generated directory (where `hpcstack generate -o` wrote).",
)
# The definition, for validate and generate.
config_option = click.option(
    "-c",
    "--config",
    "config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("stack.yaml"),
    show_default=True,
    help="The cluster definition.",
)
