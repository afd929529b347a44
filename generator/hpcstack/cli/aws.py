"""`hpcstack aws ...`, `hpcstack ssh-config`, `hpcstack deploy cloud`: the AWS side, operated.

Terraform makes the network and the two instances (terraform/aws); these commands work on what
it made, found by tags: status, opening the bastion to an address, secrets through SSM Parameter
Store, the SSH config, and copying the cloud site's bundle to the controller through the bastion.
"""

from __future__ import annotations

import base64
import fnmatch
import functools
import os
import posixpath
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import click
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from hpcstack.cli.definition import config_option
from hpcstack.definition.load import load_stack
from hpcstack.errors import OutputError, StateError
from hpcstack.plan.topology import Plan, make_plan
from hpcstack.run.aws import Aws, IngressRule, caller_cidr, lookup_public_address, normalise_cidr
from hpcstack.run.ssh import Endpoint, FileToSend, Remote, SshSettings

err = Console(stderr=True, highlight=False)

BUNDLE_DIRS = ("images", "slurm", "prometheus", "grafana")
REMOTE_ROOT = "/opt/hpcstack"
# 0400/0600 for secrets; 0444/0644 for public halves kept beside them (wireguard/pub).
SECRET_MODES = {0o400, 0o600, 0o444, 0o644}
F = TypeVar("F", bound=Callable[..., Any])


# --- shared options --------------------------------------------------------------------------


# The same -c/--config as validate and generate.
definition_options = config_option


def output_option(fn: F) -> F:
    return click.option(
        "-o",
        "--output",
        type=click.Path(path_type=Path, file_okay=False),
        default=Path("."),
        show_default=True,
        help="Directory holding the generated tree and secrets/.",
    )(fn)


def aws_options(fn: F) -> F:
    fn = click.option("--profile", default=None, help="AWS profile (default: AWS's own).")(fn)
    fn = click.option("--region", default=None, help="AWS region (default: aws.region).")(fn)
    return fn


def ssh_options(fn: F) -> F:
    fn = click.option(
        "--identity",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Private key file (default: keys from the SSH agent).",
    )(fn)
    fn = click.option(
        "--known-hosts",
        type=click.Path(path_type=Path, dir_okay=False),
        default=Path("~/.ssh/known_hosts"),
        show_default=True,
        help="known_hosts file with the bastion's and controller's pinned host keys.",
    )(fn)
    return fn


@dataclass(frozen=True)
class Context:
    plan: Plan
    region: str
    profile: str | None

    @property
    def cluster(self) -> str:
        return self.plan.cluster

    def aws(self) -> Aws:
        return Aws(self.region, self.profile)


def _context(config: Path, region: str | None, profile: str | None) -> Context:
    plan = make_plan(load_stack(config))
    return Context(plan, region or plan.stack.aws.region, profile)


def _with_context(fn: Callable[..., None]) -> Callable[..., None]:
    """Load the definition once and hand the command a Context instead of three options."""

    @functools.wraps(fn)
    def wrapper(config: Path, region: str | None, profile: str | None, **kw: Any) -> None:
        fn(_context(config, region, profile), **kw)

    return wrapper


# --- hpcstack aws ----------------------------------------------------------------------------


@click.group("aws")
def aws_group() -> None:
    """Operate the AWS side made by terraform/aws (found by its tags)."""


@aws_group.command("status")
@definition_options
@aws_options
@_with_context
def status(ctx: Context) -> None:
    """Instances of the cluster with their state and addresses."""
    instances = ctx.aws().instances(ctx.cluster)
    if not instances:
        raise StateError(
            f"no instances tagged hpcstack:cluster={ctx.cluster} in {ctx.region}: run "
            "`terraform apply` in terraform/aws (docs/aws.md), or pass --region"
        )
    header = ("ROLE", "INSTANCE", "STATE", "TYPE", "PRIVATE IP", "PUBLIC IP", "ZONE")
    rows = [
        (
            i.role or "?",
            i.instance_id,
            i.state,
            i.instance_type,
            i.private_ip or "-",
            i.public_ip or "-",
            i.availability_zone,
        )
        for i in instances
    ]
    # Plain aligned columns: readable, never wrapped, and easy to grep or cut.
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    bastion = next((i for i in instances if i.role == "bastion" and i.public_ip), None)
    if bastion is not None:
        click.echo(f"tunnel endpoint: {bastion.public_ip}:{ctx.plan.stack.tunnel.port}/udp")


def bastion_rules(plan: Plan) -> list[IngressRule]:
    """What `allow-ip` opens on the bastion for an address: SSH and the tunnel port."""
    return [
        IngressRule("tcp", 22, "SSH"),
        IngressRule("udp", plan.stack.tunnel.port, "WireGuard tunnel"),
    ]


def allow_ip(
    aws: Aws,
    plan: Plan,
    cidr: str | None,
    revoke: bool = False,
    lookup: Callable[[], str] = lookup_public_address,
) -> list[tuple[IngressRule, bool]]:
    """Add (or revoke) the bastion rules for `cidr` (default: the caller's public address)."""
    target = normalise_cidr(cidr) if cidr else caller_cidr(lookup)
    group = aws.security_group(plan.cluster, "bastion")
    rules = bastion_rules(plan)
    change = aws.revoke_ingress if revoke else aws.allow_ingress
    return list(zip(rules, change(group, target, rules), strict=True))


@aws_group.command("allow-ip")
@click.argument("cidr", required=False)
@click.option("--revoke", is_flag=True, help="Remove the address instead of adding it.")
@definition_options
@aws_options
@_with_context
def allow_ip_command(ctx: Context, cidr: str | None, revoke: bool) -> None:
    """Let CIDR (default: your public address) reach the bastion's SSH and tunnel ports."""
    results = allow_ip(ctx.aws(), ctx.plan, cidr, revoke)
    verb = "revoked" if revoke else "allowed"
    for rule, changed in results:
        state = verb if changed else "unchanged"
        err.print(f"{state}: {rule.protocol}/{rule.port} ({rule.label})")


# --- secrets through SSM Parameter Store ------------------------------------------------------


def parameter_path(cluster: str) -> str:
    return f"/hpcstack/{cluster}"


def _secret_files(secrets_dir: Path) -> list[Path]:
    if not secrets_dir.is_dir():
        raise StateError(f"{secrets_dir} does not exist: run `hpcstack generate` first")
    return sorted(p for p in secrets_dir.rglob("*") if p.is_file() and not p.is_symlink())


def _check_name(rel: str) -> str:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/")
    if not set(rel) <= allowed:
        raise StateError(f"secrets/{rel}: SSM names allow only letters, digits and _.-/")
    return rel


def push_secrets(aws: Aws, cluster: str, secrets_dir: Path) -> list[str]:
    """Store every file in secrets/ as SecureString /hpcstack/<cluster>/<path> (base64)."""
    pushed = []
    for path in _secret_files(secrets_dir):
        rel = _check_name(path.relative_to(secrets_dir).as_posix())
        mode = secret_mode(path)
        value = base64.b64encode(path.read_bytes()).decode("ascii")
        # The description carries the file mode so pull can restore 0400 keys as 0400.
        aws.put_secret(f"{parameter_path(cluster)}/{rel}", value, f"hpcstack mode={mode:o}")
        pushed.append(rel)
    return pushed


def _mode_from(description: str) -> int:
    for word in description.split():
        if word.startswith("mode="):
            try:
                mode = int(word.removeprefix("mode="), 8)
            except ValueError:
                break
            return mode if mode in SECRET_MODES else 0o600
    return 0o600


def pull_secrets(
    aws: Aws, cluster: str, secrets_dir: Path, only: Iterable[str] = (), force: bool = False
) -> list[tuple[str, str]]:
    """Write the cluster's parameters into secrets/. Returns (path, created|unchanged|updated)."""
    prefix = parameter_path(cluster) + "/"
    params = aws.secrets_under(parameter_path(cluster))
    if not params:
        raise StateError(
            f"no secrets under {prefix} in {aws.region}: run `hpcstack aws push-secrets` "
            "where the secrets were generated"
        )
    patterns = list(only)
    selected = []
    for p in params:
        rel = p.name.removeprefix(prefix)
        if patterns and not any(fnmatch.fnmatch(rel, pat) for pat in patterns):
            continue
        selected.append((rel, base64.b64decode(p.value), _mode_from(p.description)))
    conflicts = [rel for rel, data, _ in selected if _differs(secrets_dir / rel, data)]
    if conflicts and not force:
        raise OutputError(
            "these secrets differ from the ones in AWS and were left alone: "
            + ", ".join(conflicts)
            + " (pass --force to overwrite them)"
        )
    return [(rel, _write_secret(secrets_dir, rel, data, mode)) for rel, data, mode in selected]


def _differs(path: Path, data: bytes) -> bool:
    return path.exists() and path.read_bytes() != data


def _write_secret(secrets_dir: Path, rel: str, data: bytes, mode: int) -> str:
    target = secrets_dir / PurePosixPath(rel)
    if not target.resolve().is_relative_to(secrets_dir.resolve()):
        raise StateError(f"refusing to write {rel}: outside {secrets_dir}")
    secrets_dir.parent.mkdir(parents=True, exist_ok=True)
    for d in [secrets_dir, *reversed(target.relative_to(secrets_dir).parents)]:
        (secrets_dir / d).mkdir(mode=0o700, exist_ok=True)
    if target.exists():
        if target.read_bytes() == data:
            os.chmod(target, mode)
            return "unchanged"
        verb = "updated"
    else:
        verb = "created"
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, target)
    return verb


@aws_group.command("push-secrets")
@definition_options
@output_option
@aws_options
def push_secrets_command(
    config: Path, output: Path, region: str | None, profile: str | None
) -> None:
    """Store secrets/ in SSM Parameter Store (SecureString) for other hosts to pull."""
    ctx = _context(config, region, profile)
    pushed = push_secrets(ctx.aws(), ctx.cluster, output / "secrets")
    for rel in pushed:
        err.print(f"pushed: {parameter_path(ctx.cluster)}/{rel}")


@aws_group.command("pull-secrets")
@definition_options
@output_option
@aws_options
@click.option("--only", multiple=True, help="Pull only paths matching this glob (repeatable).")
@click.option("--force", is_flag=True, help="Overwrite local secrets that differ.")
def pull_secrets_command(
    config: Path,
    output: Path,
    region: str | None,
    profile: str | None,
    only: tuple[str, ...],
    force: bool,
) -> None:
    """Fetch the cluster's secrets from SSM into secrets/ (e.g. on a GPU host)."""
    ctx = _context(config, region, profile)
    for rel, verb in pull_secrets(ctx.aws(), ctx.cluster, output / "secrets", only, force):
        err.print(f"{verb}: secrets/{rel}")


# --- hpcstack ssh-config ---------------------------------------------------------------------


def ssh_config_text(
    cluster: str,
    user: str,
    bastion: Endpoint,
    controller: Endpoint,
    identity: Path | None,
    known_hosts: Path,
) -> str:
    """An ~/.ssh/config block: the bastion, and the controller reached through it."""

    def common() -> list[str]:
        lines = [f"  User {user}"]
        if identity is not None:
            lines += [f"  IdentityFile {identity}", "  IdentitiesOnly yes"]
        lines += [
            f"  UserKnownHostsFile {known_hosts}",
            "  StrictHostKeyChecking yes",
            "  PasswordAuthentication no",
            "  KbdInteractiveAuthentication no",
        ]
        return lines

    lines = [
        f"# hpc-stack cluster {cluster}: written by `hpcstack ssh-config`",
        f"Host {cluster}-bastion",
        f"  HostName {bastion.host}",
        f"  Port {bastion.port}",
        *common(),
        "",
        f"Host {cluster}-controller",
        f"  HostName {controller.host}",
        f"  Port {controller.port}",
        f"  ProxyJump {cluster}-bastion",
        *common(),
    ]
    return "\n".join(lines) + "\n"


def _endpoints(
    ctx: Context, bastion: str | None, controller: str | None, user: str
) -> tuple[Endpoint, Endpoint]:
    """Bastion and controller addresses: as given, or looked up by tags in AWS."""
    aws: Aws | None = None
    if bastion is None or controller is None:
        aws = ctx.aws()
    if bastion is None:
        assert aws is not None
        found = aws.instance(ctx.cluster, "bastion")
        if not found.public_ip:
            raise StateError(
                f"the bastion {found.instance_id} has no public address ({found.state})"
            )
        bastion = found.public_ip
    if controller is None:
        assert aws is not None
        controller = aws.instance(ctx.cluster, "controller").private_ip
    return Endpoint.parse(bastion, user), Endpoint.parse(controller, user)


def endpoint_options(fn: F) -> F:
    fn = click.option("--user", default=None, help="Login user (default: aws.ssh_user).")(fn)
    fn = click.option(
        "--controller", default=None, help="Controller HOST[:PORT] (default: looked up in AWS)."
    )(fn)
    fn = click.option(
        "--bastion", default=None, help="Bastion HOST[:PORT] (default: looked up in AWS)."
    )(fn)
    return fn


@click.command("ssh-config")
@definition_options
@aws_options
@endpoint_options
@ssh_options
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    default=Path("-"),
    help="Write the block to this file (default: stdout).",
)
def ssh_config(
    config: Path,
    region: str | None,
    profile: str | None,
    bastion: str | None,
    controller: str | None,
    user: str | None,
    known_hosts: Path,
    identity: Path | None,
    output: Path,
) -> None:
    """Print an SSH config for the bastion and the controller (ProxyJump)."""
    ctx = _context(config, region, profile)
    login = user or ctx.plan.stack.aws.ssh_user
    b, c = _endpoints(ctx, bastion, controller, login)
    text = ssh_config_text(ctx.cluster, login, b, c, identity, known_hosts)
    if str(output) == "-":
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    err.print(f"wrote {output}; connect with `ssh -F {output} {ctx.cluster}-controller`")


# --- hpcstack deploy cloud -------------------------------------------------------------------


def _compose_sources(data: dict[str, Any]) -> list[str]:
    """Host paths a compose file names: secrets, configs, bind mounts, build contexts, env files."""
    sources: list[str] = []
    for section in ("secrets", "configs"):
        for spec in (data.get(section) or {}).values():
            if isinstance(spec, dict) and "file" in spec:
                sources.append(str(spec["file"]))
    for service in (data.get("services") or {}).values():
        service = service or {}
        for volume in service.get("volumes") or []:
            if isinstance(volume, dict) and volume.get("type") == "bind":
                sources.append(str(volume.get("source", "")))
            elif isinstance(volume, str) and volume.startswith((".", "/")):
                sources.append(volume.split(":", 1)[0])
        build = service.get("build")
        if isinstance(build, str):
            sources.append(build)
        elif isinstance(build, dict) and "context" in build:
            sources.append(str(build["context"]))
        env_file = service.get("env_file") or []
        sources.extend([env_file] if isinstance(env_file, str) else map(str, env_file))
    return sources


def compose_files_used(compose_file: Path, output: Path) -> list[Path]:
    """Every file under `output` the compose file refers to (directories expanded)."""
    data = yaml.safe_load(compose_file.read_text(encoding="utf-8")) or {}
    root = output.resolve()
    found: set[Path] = set()
    for src in _compose_sources(data):
        path = (compose_file.parent / src).resolve()
        if not path.is_relative_to(root):
            continue  # a host path such as /dev/net/tun: not part of the bundle
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            found.add(path)
        else:
            raise StateError(
                f"{compose_file} needs {src}, which does not exist: run `hpcstack generate`"
            )
    return sorted(found)


def bundle_files(plan: Plan, output: Path) -> list[FileToSend]:
    """The cloud site's bundle: its compose file, the shared trees, and what compose uses.

    Secrets go only if this site's compose file uses them, so the controller never holds
    another site's private keys.
    """
    site = plan.controller.name
    compose_file = output / "compose" / f"{site}.yml"
    if not compose_file.is_file():
        raise StateError(f"{compose_file} does not exist: run `hpcstack generate` first")
    root = output.resolve()
    secrets = root / "secrets"
    local = {compose_file.resolve()}
    for d in BUNDLE_DIRS:
        if (output / d).is_dir():
            local.update(p.resolve() for p in (output / d).rglob("*") if p.is_file())
    local.update(compose_files_used(compose_file, output))
    files = []
    for path in sorted(local):
        rel = path.relative_to(root).as_posix()
        if path.is_relative_to(secrets):
            files.append(FileToSend(path, rel, secret_mode(path), dir_mode=0o700))
        else:
            files.append(FileToSend(path, rel, _bundle_mode(path)))
    return files


def secret_mode(path: Path) -> int:
    """A secret file's mode, kept within the allowed ones (private keys 0600/0400)."""
    mode = stat.S_IMODE(path.stat().st_mode)
    return mode if mode in SECRET_MODES else 0o600


def _bundle_mode(path: Path) -> int:
    return 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644


def up_command(plan: Plan, remote_root: str) -> list[str]:
    compose_file = posixpath.join(remote_root, "compose", f"{plan.controller.name}.yml")
    return ["docker", "compose", "-f", compose_file, "up", "-d", "--wait"]


# cloud-init installs Docker on first boot; wait for it so a fresh controller can be deployed to.
WAIT_FOR_CLOUD_INIT = [
    "sh",
    "-c",
    "command -v cloud-init >/dev/null 2>&1 && cloud-init status --wait >/dev/null; true",
]


def deploy_cloud(
    plan: Plan,
    output: Path,
    bastion: Endpoint | None,
    controller: Endpoint,
    settings: SshSettings,
    remote_root: str = REMOTE_ROOT,
) -> tuple[int, int]:
    """Copy the bundle to the controller (through the bastion) and start it. (changed, total)"""
    files = bundle_files(plan, output)
    with Remote(controller, settings, jump=bastion) as remote:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task(f"copying to {controller.host}", total=len(files))

            def advance(item: FileToSend, changed: bool) -> None:
                progress.update(task, advance=1, description=item.remote)

            changed = remote.sync(remote_root, files, advance)
        err.print(f"copied {changed} of {len(files)} files to {controller.host}:{remote_root}")
        remote.run(WAIT_FOR_CLOUD_INIT, check=False)
        err.print("starting the cloud site (docker compose up --wait) ...")
        remote.run(up_command(plan, remote_root))
    return changed, len(files)


@click.group("deploy")
def deploy_group() -> None:
    """Copy a site's generated bundle to where it runs, and start it."""


@deploy_group.command("cloud")
@definition_options
@output_option
@aws_options
@endpoint_options
@ssh_options
@click.option("--remote-dir", default=REMOTE_ROOT, show_default=True, help="Bundle directory.")
def deploy_cloud_command(
    config: Path,
    output: Path,
    region: str | None,
    profile: str | None,
    bastion: str | None,
    controller: str | None,
    user: str | None,
    known_hosts: Path,
    identity: Path | None,
    remote_dir: str,
) -> None:
    """Copy the cloud site to the controller through the bastion and run compose there."""
    ctx = _context(config, region, profile)
    login = user or ctx.plan.stack.aws.ssh_user
    b, c = _endpoints(ctx, bastion, controller, login)
    settings = SshSettings(known_hosts.expanduser(), identity.expanduser() if identity else None)
    deploy_cloud(ctx.plan, output, b, c, settings, remote_dir)
    err.print(f"the cloud site runs on {c.host}; check it with `ssh {ctx.cluster}-controller`")


COMMANDS = [aws_group, ssh_config, deploy_group]
