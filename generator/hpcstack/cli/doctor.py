"""`hpcstack doctor`: is this host ready to run a site (with GPUs)?"""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from hpcstack.operate.doctor import DEFAULT_GPU_IMAGE, CheckResult, Status, blocking, run_checks
from hpcstack.run.host import SystemProbes

_STYLE = {
    Status.OK: "green",
    Status.WARN: "yellow",
    Status.FAIL: "bold red",
    Status.SKIP: "dim",
}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@click.option(
    "--no-gpu",
    is_flag=True,
    help="This host runs no GPU node: skip the NVIDIA checks (they are required otherwise).",
)
@click.option(
    "--image",
    default=DEFAULT_GPU_IMAGE,
    show_default=True,
    help="Image for the throwaway container that must see a GPU.",
)
@click.option(
    "--docker-host",
    metavar="HOST",
    default=None,
    help="The Docker engine to check, e.g. unix:///run/docker.sock or ssh://user@host "
    "(default: the docker CLI's own, DOCKER_HOST included).",
)
@click.pass_context
def doctor(
    ctx: click.Context, as_json: bool, no_gpu: bool, image: str, docker_host: str | None
) -> None:
    """Check the NVIDIA driver and container toolkit, WireGuard, Docker, compose and buildx.

    Exit 1 when a required check fails; each failure shows the command that fixes it.
    """
    results = run_checks(SystemProbes(docker_host), gpu=not no_gpu, image=image)
    failed = blocking(results)
    if as_json:
        payload = {"ok": not failed, "checks": [r.as_dict() for r in results]}
        click.echo(json.dumps(payload, indent=2, sort_keys=True))
    else:
        _print_table(results, failed)
    ctx.exit(1 if failed else 0)


def _print_table(results: list[CheckResult], failed: list[CheckResult]) -> None:
    console = Console(highlight=False, soft_wrap=False)
    table = Table(title="hpcstack doctor", show_lines=True)
    for column in ("check", "result", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for r in results:
        result = str(r.status) if r.required or r.status is not Status.FAIL else "fail (optional)"
        table.add_row(r.check, f"[{_STYLE[r.status]}]{result}[/]", r.detail, r.fix)
    console.print(table)
    if failed:
        names = ", ".join(r.check for r in failed)
        console.print(f"[bold red]{len(failed)} required check(s) failed:[/] {names}")
        for r in failed:
            console.print(f"  {r.check}: {r.detail}", markup=False)
    else:
        console.print("[green]all required checks passed[/]")


COMMANDS = [doctor]
