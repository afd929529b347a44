"""`hpcstack secrets export|import`: a workstation's share of the secrets, and only that.

On the controller host, `secrets export --site lab -o lab-secrets.tar` packs the munge key, the
site's own WireGuard keys and the hub's public key (ssh mode: the site's client key and the
pinned host key) into a 0600 archive; the hub's private key and the database and Grafana
passwords never leave. On the workstation, `secrets import lab-secrets.tar` unpacks it, after
which `hpcstack generate` there makes no secret of its own.
"""

from __future__ import annotations

from pathlib import Path

import click

from hpcstack.cli.options import dir_option, err
from hpcstack.output.site_secrets import export_site, import_site
from hpcstack.output.state import load_generated


@click.group()
def secrets() -> None:
    """Hand a workstation exactly the secrets its site needs."""


@secrets.command(name="export")
@dir_option
@click.option("--site", required=True, help="The local site whose host gets the archive.")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The archive to write (mode 0600).",
)
def export_cmd(out_dir: Path, site: str, output: Path) -> None:
    """On the controller host: pack SITE's secrets into an archive for its workstation."""
    files = export_site(out_dir, load_generated(out_dir), site, output)
    for rel in files:
        err.print(f"  packed secrets/{rel}")
    err.print(
        f"wrote {output} (0600, {len(files)} files). Copy it to the workstation of {site} "
        f"(e.g. scp), there: hpcstack secrets import {output.name} && hpcstack generate "
        f"--site {site}; then delete the copy"
    )


@secrets.command(name="import")
@dir_option
@click.argument("archive", type=click.Path(path_type=Path, dir_okay=False, exists=True))
def import_cmd(out_dir: Path, archive: Path) -> None:
    """On a workstation: unpack ARCHIVE (from `secrets export`) into secrets/."""
    site, files = import_site(out_dir, archive)
    for rel in files:
        err.print(f"  secrets/{rel}")
    err.print(
        f"imported {len(files)} files for site {site}; `hpcstack generate` here now uses them "
        f"and makes none of its own. next: hpcstack generate --site {site} && hpcstack up "
        f"--site {site} --pull"
    )


COMMANDS = [secrets]
