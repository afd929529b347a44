"""`hpcstack aws ...`, `hpcstack ssh-config`, `hpcstack deploy cloud`: options and printing.

Every command reads the plan saved in the generated directory (`-d`, like up/down), never
stack.yaml; the work is done in operate/ (aws_access, aws_secrets, ssh_config, deploy).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from hpcstack.cli.options import dir_option, err
from hpcstack.definition.checks_aws import aws_warnings
from hpcstack.errors import StateError
from hpcstack.operate import aws_access, aws_secrets
from hpcstack.operate.deploy import REMOTE_ROOT, deploy_cloud
from hpcstack.operate.ssh_config import (
    lab_user_entries,
    login_known_hosts_line,
    ssh_config_text,
)
from hpcstack.output.atomic import write_atomic
from hpcstack.output.state import load_generated
from hpcstack.plan.topology import Plan
from hpcstack.run.aws import Aws
from hpcstack.run.ssh import Endpoint, SshSettings


@dataclass(frozen=True)
class Context:
    plan: Plan
    out_dir: Path
    region: str
    profile: str | None

    @property
    def cluster(self) -> str:
        return self.plan.cluster

    def aws(self) -> Aws:
        return Aws(self.region, self.profile)


def with_context(fn: Callable[..., None]) -> Callable[..., None]:
    """-d/--dir, --region, --profile; the command gets a Context built from the saved plan."""

    @dir_option
    @click.option("--region", default=None, help="AWS region (default: aws.region).")
    @click.option("--profile", default=None, help="AWS profile (default: AWS's own).")
    @functools.wraps(fn)
    def wrapper(out_dir: Path, region: str | None, profile: str | None, **kw: Any) -> None:
        plan = load_generated(out_dir)
        for problem in aws_warnings(plan.stack):
            err.print(f"warning: {problem.path}: {problem.message} ({problem.hint})")
        fn(Context(plan, out_dir, region or plan.stack.aws.region, profile), **kw)

    return wrapper


@dataclass(frozen=True)
class SshTarget:
    """Where and how to reach the bastion and the controller (--bastion, --user, ...)."""

    bastion: str | None
    controller: str | None
    user: str | None
    known_hosts: Path
    identity: Path | None

    def endpoints(self, ctx: Context) -> tuple[Endpoint, Endpoint]:
        """Bastion and controller addresses: as given, or looked up by tags in AWS."""
        login = self.user or ctx.plan.stack.aws.ssh_user
        bastion = self.bastion or aws_access.endpoint(ctx.aws(), ctx.plan)
        controller = self.controller or ctx.aws().instance(ctx.cluster, "controller").private_ip
        return Endpoint.parse(bastion, login), Endpoint.parse(controller, login)

    def settings(self) -> SshSettings:
        identity = self.identity.expanduser() if self.identity else None
        return SshSettings(self.known_hosts.expanduser(), identity)


def ssh_options(fn: Callable[..., None]) -> Callable[..., None]:
    """--bastion, --controller, --user, --identity, --known-hosts: the command gets `target`."""

    @click.option("--user", default=None, help="Login user (default: aws.ssh_user).")
    @click.option(
        "--controller", default=None, help="Controller HOST[:PORT] (default: looked up in AWS)."
    )
    @click.option(
        "--bastion", default=None, help="Bastion HOST[:PORT] (default: looked up in AWS)."
    )
    @click.option(
        "--identity",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Private key file (default: keys from the SSH agent).",
    )
    @click.option(
        "--known-hosts",
        type=click.Path(path_type=Path, dir_okay=False),
        default=Path("~/.ssh/known_hosts"),
        show_default=True,
        help="known_hosts file with the bastion's and controller's pinned host keys.",
    )
    @functools.wraps(fn)
    def wrapper(
        bastion: str | None,
        controller: str | None,
        user: str | None,
        known_hosts: Path,
        identity: Path | None,
        **kw: Any,
    ) -> None:
        fn(target=SshTarget(bastion, controller, user, known_hosts, identity), **kw)

    return wrapper


# --- hpcstack aws ----------------------------------------------------------------------------


@click.group("aws")
def aws_group() -> None:
    """Operate the AWS side made by terraform/aws (found by its tags)."""


@aws_group.command("status")
@with_context
def status(ctx: Context) -> None:
    """Instances of the cluster with their state and addresses, and the tunnel endpoint."""
    found = aws_access.instances(ctx.aws(), ctx.plan)
    rows = [aws_access.STATUS_HEADER, *aws_access.status_rows(found)]
    # Plain aligned columns: readable, never wrapped, and easy to grep or cut.
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    bastion = next((i for i in found if i.role == "bastion" and i.public_ip), None)
    if bastion is not None:
        protocol, port = aws_access.tunnel_protocol(ctx.plan)
        click.echo(f"tunnel endpoint: {bastion.public_ip}:{port}/{protocol}")
        note = aws_access.endpoint_note(ctx.plan, bastion.public_ip)
        if note:
            err.print(f"note: {note}")


@aws_group.command("endpoint")
@with_context
def endpoint(ctx: Context) -> None:
    """Print the bastion's public address: the value for tunnel.endpoint in stack.yaml."""
    address = aws_access.endpoint(ctx.aws(), ctx.plan)
    click.echo(address)
    note = aws_access.endpoint_note(ctx.plan, address)
    if note:
        err.print(f"note: {note}")


@aws_group.command("allow-ip")
@click.argument("cidr", required=False)
@click.option("--ssh", is_flag=True, help="Open SSH (tcp/22): an administrator's address.")
@click.option("--tunnel", is_flag=True, help="Open the tunnel port (the default): a GPU host.")
@click.option("--revoke", is_flag=True, help="Remove the address instead of adding it.")
@with_context
def allow_ip_command(ctx: Context, cidr: str | None, ssh: bool, tunnel: bool, revoke: bool) -> None:
    """Let CIDR (default: your public address) reach the bastion's tunnel port (or SSH)."""
    results = aws_access.allow_ip(ctx.aws(), ctx.plan, cidr, ssh=ssh, tunnel=tunnel, revoke=revoke)
    verb = "revoked" if revoke else "allowed"
    for rule, changed in results:
        err.print(f"{verb if changed else 'unchanged'}: {rule.protocol}/{rule.port} ({rule.label})")


def _power(ctx: Context, running: bool) -> None:
    verb = "starting" if running else "stopping"
    for change in aws_access.set_power(ctx.aws(), ctx.plan, running):
        i = change.instance
        err.print(f"{verb if change.changed else 'unchanged'}: {i.role} {i.instance_id}")


@aws_group.command("stop")
@with_context
def stop(ctx: Context) -> None:
    """Stop the controller and the bastion (volumes, addresses and the NAT gateway stay)."""
    _power(ctx, running=False)
    if ctx.plan.stack.aws.nat_gateway:
        err.print(
            "the NAT gateway still costs ~1 USD/day: set aws.nat_gateway: false, "
            "`hpcstack generate`, `terraform apply` to remove it while idle (docs/aws.md)"
        )


@aws_group.command("start")
@with_context
def start(ctx: Context) -> None:
    """Start the bastion and the controller again."""
    _power(ctx, running=True)
    if not ctx.plan.stack.aws.nat_gateway:
        err.print(
            "the NAT gateway is off (aws.nat_gateway: false): the controller has no outbound "
            "access until you set it back to true, `hpcstack generate`, `terraform apply`"
        )


@aws_group.command("push-secrets")
@with_context
def push_secrets_command(ctx: Context) -> None:
    """Store secrets/ in SSM Parameter Store (SecureString), each under who needs it."""
    for item in aws_secrets.push_secrets(ctx.aws(), ctx.plan, ctx.out_dir):
        err.print(f"pushed: {item.name}")


@aws_group.command("pull-secrets")
@click.option("--site", "site_name", default=None, help="This host's site (default: the only one).")
@click.option("--only", multiple=True, help="Pull only paths matching this glob (repeatable).")
@click.option("--force", is_flag=True, help="Overwrite local secrets that differ.")
@with_context
def pull_secrets_command(
    ctx: Context, site_name: str | None, only: tuple[str, ...], force: bool
) -> None:
    """Fetch one site's secrets and the shared munge key from SSM into secrets/."""
    if site_name is None:
        local = [s.name for s in ctx.plan.sites if not s.is_controller]
        if len(local) != 1:
            raise StateError(f"pass --site: this cluster has local sites {', '.join(local)}")
        site_name = local[0]
    pulled = aws_secrets.pull_secrets(ctx.aws(), ctx.plan, ctx.out_dir, site_name, only, force)
    for rel, verb in pulled:
        err.print(f"{verb}: secrets/{rel}")


# --- hpcstack ssh-config ---------------------------------------------------------------------


@click.command("ssh-config")
@ssh_options
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    default=Path("-"),
    help="Write the block to this file (default: stdout).",
)
@click.option(
    "--local",
    is_flag=True,
    help="Only the lab members' entries for this host's login service (127.0.0.1; no AWS).",
)
@with_context
def ssh_config(ctx: Context, target: SshTarget, output: Path, local: bool) -> None:
    """Print an SSH config for the bastion and the controller (ProxyJump), and one entry per
    lab member for the login service (`users:` in stack.yaml)."""
    login = ctx.plan.stack.login
    if local:
        text = lab_entries(ctx, "127.0.0.1")
    else:
        b, c = target.endpoints(ctx)
        text = ssh_config_text(ctx.cluster, b.user, b, c, target.identity, target.known_hosts)
        if login.enabled:
            text += "\n" + lab_entries(ctx, c.host, (b, target.known_hosts))
    if str(output) == "-":
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    err.print(f"wrote {output}; connect with `ssh -F {output} {ctx.cluster}-controller`")


def lab_entries(ctx: Context, host: str, jump: tuple[Endpoint, Path] | None = None) -> str:
    """The lab members' entries; the login host key pinned in secrets/users/pub/. Through the
    bastion (AWS) only the keys listed in stack.yaml get in: the bastion knows no other."""
    secrets = ctx.out_dir / "secrets" / "users"
    pub = secrets / "pub" / "login_known_hosts"
    if not pub.exists():
        raise StateError(f"{pub} is missing: run `hpcstack generate` first")
    known = secrets / "pub" / "login_known_hosts_alias"
    write_atomic(known, login_known_hosts_line(ctx.cluster, pub.read_text()).encode(), 0o644)
    users = []
    for user in ctx.plan.stack.users:
        key = (secrets / f"{user.name}.key").resolve()
        users.append((user.name, key if not user.ssh_keys else None))
        if jump is not None and not user.ssh_keys:
            err.print(
                f"[yellow]warning:[/] {user.name} has no ssh_keys in stack.yaml: the bastion lets "
                f"in only listed keys, so {user.name} cannot log in through it. Add their public "
                "key to users[].ssh_keys, then `terraform apply` and `hpcstack up`"
            )
    port = ctx.plan.stack.login.port
    return lab_user_entries(ctx.cluster, users, host, port, known.resolve(), jump)


# --- hpcstack deploy cloud -------------------------------------------------------------------


@click.group("deploy")
def deploy_group() -> None:
    """Copy a site's generated bundle to where it runs, and start it."""


@deploy_group.command("cloud")
@ssh_options
@click.option("--remote-dir", default=REMOTE_ROOT, show_default=True, help="Bundle directory.")
@with_context
def deploy_cloud_command(ctx: Context, target: SshTarget, remote_dir: str) -> None:
    """Copy the cloud site to the controller through the bastion and run compose there."""
    b, c = target.endpoints(ctx)
    settings = target.settings()
    err.print(f"waiting for cloud-init on {c.host}, then copying ...")
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(f"copying to {c.host}", total=None)

        def advance(remote: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, description=remote)

        result = deploy_cloud(ctx.plan, ctx.out_dir, b, c, settings, remote_dir, advance)
    if result.cloud_init == "degraded":
        err.print("warning: cloud-init reported recoverable errors (`cloud-init status --long`)")
    err.print(f"copied {result.changed} of {result.total} files to {c.host}:{remote_dir}")
    err.print(f"the cloud site runs on {c.host}; check it with `ssh {ctx.cluster}-controller`")


COMMANDS = [aws_group, ssh_config, deploy_group]
