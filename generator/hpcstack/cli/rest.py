"""`hpcstack token`: a JWT for the REST API (slurmrestd on the controller's loopback)."""

from __future__ import annotations

from pathlib import Path

import click

from hpcstack.cli.options import dir_option
from hpcstack.operate import rest
from hpcstack.operate.session import open_cluster


@click.command()
@dir_option
@click.option("--user", "-u", default=None, help="Whose token (default: the job user hpc).")
@click.option(
    "--lifespan", type=int, default=None, help="Seconds the token is valid (default 1800)."
)
def token(out_dir: Path, user: str | None, lifespan: int | None) -> None:
    """Print a REST API token (a JWT) for USER, and nothing else, on stdout."""
    cluster = open_cluster(out_dir)
    cluster.docker.require_engine()
    click.echo(rest.token(cluster, user, lifespan))


COMMANDS = [token]
