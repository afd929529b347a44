"""`hpcstack validate` and `hpcstack generate`."""

from __future__ import annotations

from pathlib import Path

import click

from hpcstack.cli.options import config_option, err, out, output_option
from hpcstack.definition.load import load_definition, read_text
from hpcstack.errors import HpcStackError, Problem

strict_option = click.option(
    "--strict", is_flag=True, help="Treat warnings as errors (exit 1, nothing written)."
)


def _print_warnings(config: Path, loaded_warnings: list[Problem]) -> None:
    from hpcstack.cli.main import print_warnings

    if not loaded_warnings:
        return
    try:
        lines = read_text(config).splitlines()
    except HpcStackError:
        lines = []
    print_warnings(loaded_warnings, lines)


# `generate` lists every file up to this many, then one line per directory.
LIST_EACH_UP_TO = 80
STATUS_STYLE = {
    "created": "green",
    "updated": "yellow",
    "unchanged": "dim",
    "removed": "red",
    "kept-edited": "magenta",
}


@click.command()
@config_option
@strict_option
def validate(config: Path, strict: bool) -> None:
    """Check the definition and report every problem; writes nothing."""
    loaded = load_definition(config, strict=strict)
    _print_warnings(config, loaded.warnings)
    stack = loaded.stack
    nodes = sum(len(s.node_names) for s in stack.sites)
    out.print(f"{config}: valid ({len(stack.sites)} sites, {nodes} compute nodes)")


@click.command(name="generate")
@config_option
@output_option
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite generated files that were edited by hand; accept re-addressed nodes.",
)
@click.option(
    "--site",
    default=None,
    help="On a workstation: this host runs only SITE; make no secret, use the imported ones "
    "(`hpcstack secrets import`).",
)
@strict_option
def generate_cmd(
    config: Path, output: Path, dry_run: bool, force: bool, site: str | None, strict: bool
) -> None:
    """Write per-site compose files, images, Slurm and monitoring config, and secrets."""
    from hpcstack.operate.generate import generate

    result = generate(config, output, dry_run=dry_run, force=force, site=site, strict=strict)
    _print_warnings(config, result.warnings)
    verb = "would be " if dry_run else ""
    listed = [(ch.status, ch.path, "") for ch in result.changes]
    listed += [("created", str(s.path.relative_to(output)), " (secret)")
               for s in result.secrets if s.status == "created"]  # fmt: skip
    if len(listed) > LIST_EACH_UP_TO:
        listed = _by_directory(listed)
    # One print for the lot: rich per line costs seconds at a thousand nodes.
    err.print("\n".join(f"  [{STATUS_STYLE.get(status, '')}]{verb}{status:>9}[/] {path}{note}"
                        for status, path, note in listed))  # fmt: skip
    counts: dict[str, int] = {}
    for ch in result.changes:
        counts[ch.status] = counts.get(ch.status, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    err.print(f"{'dry run: ' if dry_run else ''}{summary}")
    kept = [c.path for c in result.changes if c.status == "kept-edited"]
    if kept:
        err.print(f"[magenta]note:[/] {len(kept)} file(s) no longer generated were edited; kept.")
    if not dry_run:
        where = "" if output == Path(".") else f"cd {output} && "
        only = f" --site {site} --pull" if site else ""
        err.print(f"next: {where}hpcstack up{only}   (or: make up)")


def _by_directory(listed: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """A long listing (a large cluster) as one line per status and directory."""
    groups: dict[tuple[str, str, str], int] = {}
    for status, path, note in listed:
        parent = path.rpartition("/")[0] or "."
        key = (status, parent, note)
        groups[key] = groups.get(key, 0) + 1
    return [(status, f"{n} file(s) in {parent}/", note)
            for (status, parent, note), n in groups.items()]  # fmt: skip


COMMANDS = [validate, generate_cmd]
