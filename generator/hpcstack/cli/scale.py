"""`hpcstack scale SITE --nodes N | --add NAME | --remove NAME`: edits stack.yaml, then applies."""

from __future__ import annotations

from pathlib import Path

import click

from hpcstack.cli.options import config_option, dir_option, err
from hpcstack.operate.scale import ScaleRequest, scale


def _progress(message: str) -> None:
    err.print(f"  {message}")


@click.command(name="scale")
@dir_option
@config_option
@click.argument("site")
@click.option("--nodes", "count", type=int, default=None, help="The site's node count.")
@click.option("--add", default=None, metavar="NAME", help="Add one node (sized like the first).")
@click.option("--remove", default=None, metavar="NAME", help="Drain, then remove one node.")
@click.option(
    "--drain-timeout", type=int, default=3600, show_default=True,
    help="Seconds to wait for running jobs on removed nodes before giving up (nothing changed).",
)  # fmt: skip
def scale_cmd(
    out_dir: Path,
    config: Path,
    site: str,
    count: int | None,
    add: str | None,
    remove: str | None,
    drain_timeout: int,
) -> None:
    """Grow or shrink SITE: stack.yaml is edited (comments kept), checked, generated, applied.

    New nodes join with no restart of the others; removed nodes are drained first (their jobs
    end), then stopped and deleted from Slurm."""
    req = ScaleRequest(site, count, add, remove, drain_timeout)
    edit = scale(config, out_dir, req, progress=_progress)
    added = f" added {', '.join(edit.added)}" if edit.added else ""
    removed = f" removed {', '.join(edit.removed)}" if edit.removed else ""
    err.print(f"[green]site {site}:{added}{removed}[/]")


COMMANDS = [scale_cmd]
