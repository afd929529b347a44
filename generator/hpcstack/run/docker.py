"""The one choke point for docker and docker compose.

Everything goes through python-on-whales (argv lists, no shell), one client per engine, except
the pass-throughs that hand the terminal to `docker exec` / `docker compose logs` and the
doctor's probes; those build their argv here too, so they reach the same engine. Nothing here
reads or changes os.environ: the engine (`host`, e.g. `unix:///run/docker-ws1.sock`; default:
the CLI's own, DOCKER_HOST included) and the build arguments are passed per call. Every failure
becomes a ToolError carrying the command, exit code and output.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any, cast

from python_on_whales import DockerClient, DockerException
from python_on_whales.exceptions import NoSuchContainer

from hpcstack.errors import ToolError

log = logging.getLogger(__name__)


def _tool_error(exc: DockerException, summary: str) -> ToolError:
    return ToolError(
        command=[str(c) for c in exc.docker_command],
        returncode=exc.return_code,
        stdout=exc.stdout or "",
        stderr=exc.stderr or "",
        summary=summary,
    )


@dataclass(frozen=True)
class ServiceState:
    service: str
    container: str
    state: str  # running | exited | created | ...
    health: str  # healthy | unhealthy | starting | "" (no healthcheck)


@cache
def _client(host: str | None) -> DockerClient:
    return DockerClient(host=host)


def cli_argv(host: str | None, *args: str) -> list[str]:
    """`docker [-H host] args...`: for the callers that need the raw CLI (a terminal, a probe)."""
    return ["docker", *(["-H", host] if host else []), *args]


class Docker:
    """One Docker engine: this host's (host=None) or another's (a socket, `ssh://...`)."""

    def __init__(self, host: str | None = None):
        self.host = host
        self.client = _client(host)

    def require_engine(self) -> None:
        try:
            self.client.system.info()
        except FileNotFoundError:
            raise ToolError(
                summary="the docker CLI is not installed (run scripts/install-docker.sh, or "
                "install Docker Engine with compose v2)"
            ) from None
        except DockerException as exc:
            raise _tool_error(
                exc, "no Docker engine answers (start it, or run scripts/install-docker.sh as root)"
            ) from None

    def compose(self, file: Path, project: str) -> Compose:
        return Compose(self, file, project)

    def exec_capture(self, container: str, argv: Sequence[str], user: str | None = None) -> str:
        """Run a command in a container and return its stdout; ToolError on failure."""
        log.debug("docker exec %s %s", container, shlex.join(argv))
        try:
            out = self.client.container.execute(container, list(argv), user=user)
        except DockerException as exc:
            raise _tool_error(exc, f"command in {container} failed") from None
        return str(out or "")

    def exec_stream(
        self, container: str, argv: Sequence[str], user: str | None = None
    ) -> Iterator[str]:
        """Run a command in a container, yielding its output lines as they come."""
        log.debug("docker exec %s %s", container, shlex.join(argv))
        try:
            stream = self.client.container.execute(container, list(argv), user=user, stream=True)
            buf = ""
            for _source, chunk in cast(Iterable[tuple[str, bytes]], stream):
                buf += chunk.decode(errors="replace")
                while "\n" in buf:
                    line, buf = buf.split("\n", 1)
                    yield line
            if buf:
                yield buf
        except DockerException as exc:
            raise _tool_error(exc, f"command in {container} failed") from None

    def exec_passthrough(self, container: str, argv: Sequence[str], user: str | None = None) -> int:
        """Run a command in a container on this terminal; returns its exit code."""
        args = ["exec"]
        if sys.stdin.isatty():
            args.append("-i")
            if sys.stdout.isatty():
                args.append("-t")
        if user:
            args += ["--user", user]
        return _passthrough(cli_argv(self.host, *args, container, *argv))

    def logs_tail(self, container: str, lines: int = 30, since: timedelta | None = None) -> str:
        """The last lines a container logged (stdout and stderr together), of the last `since`
        only when given."""
        try:
            return str(self.client.container.logs(container, tail=lines, since=since) or "")
        except DockerException as exc:
            raise _tool_error(exc, f"reading the logs of {container} failed") from None

    def image_exists(self, ref: str) -> bool:
        return bool(self.client.image.exists(ref))

    def try_pull(self, ref: str) -> bool:
        """Pull an image; False (not an error) when no registry serves it."""
        try:
            self.client.image.pull(ref, quiet=True)
        except DockerException as exc:
            log.debug("pull %s failed: %s", ref, exc.stderr)
            return False
        return True

    def push(self, ref: str) -> None:
        try:
            self.client.image.push(ref, quiet=True)
        except DockerException as exc:
            raise _tool_error(exc, f"pushing {ref} failed") from None


class Compose:
    """Compose operations on one project (one generated compose/<site>.yml)."""

    def __init__(self, docker: Docker, file: Path, project: str):
        if not file.exists():
            raise ToolError(summary=f"{file} is missing: run `hpcstack generate` first")
        self.docker = docker
        self.file = file
        self.project = project
        self._client = DockerClient(
            host=docker.host,
            compose_files=[file],
            compose_project_name=project,
            compose_env_files=[],
        )

    def _run(self, summary: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        log.debug("compose %s: %s %s", self.project, getattr(fn, "__name__", fn), kwargs)
        try:
            return fn(*args, **kwargs)
        except DockerException as exc:
            raise _tool_error(exc, summary) from None

    def build(self, build_args: Mapping[str, str]) -> None:
        self._run(
            f"building images for {self.project} failed",
            self._client.compose.build,
            build_args=dict(build_args),
            quiet=True,
        )

    def pull(self) -> None:
        self._run(
            f"pulling images for {self.project} failed", self._client.compose.pull, quiet=True
        )

    # What `up` and `down` always pass: detached, health-gated, never building or pulling here.
    UP_FLAGS: dict[str, Any] = {
        "detach": True, "wait": True, "no_build": True, "pull": "never", "quiet": True
    }  # fmt: skip

    def up(self, services: list[str] | None = None, wait_timeout: int = 300) -> None:
        up = self._client.compose.up
        summary = f"starting {self.project} failed"
        self._run(summary, up, services=services, wait_timeout=wait_timeout, **self.UP_FLAGS)

    def down(self, volumes: bool = False) -> None:
        down = self._client.compose.down
        summary = f"stopping {self.project} failed"
        self._run(summary, down, volumes=volumes, remove_orphans=True, quiet=True)

    def remove(self, services: list[str]) -> None:
        """Stop and remove these services' containers (their volumes stay)."""
        rm = self._client.compose.rm
        self._run(
            f"removing {', '.join(services)} of {self.project} failed", rm, services, stop=True
        )

    def states(self) -> list[ServiceState]:
        containers = self._run("listing containers failed", self._client.compose.ps, all=True)
        out = []
        for c in containers:
            try:
                health = c.state.health.status if c.state.health is not None else ""
                service = c.config.labels.get("com.docker.compose.service", c.name)
                out.append(ServiceState(service, c.name, c.state.status or "", health or ""))
            except NoSuchContainer:
                continue  # removed since the listing (compose recreating it)
        return sorted(out, key=lambda s: s.service)

    def running(self) -> dict[str, ServiceState]:
        return {s.service: s for s in self.states() if s.state == "running"}

    def container(self, service: str) -> str:
        found = self.running().get(service)
        if found is None:
            raise ToolError(summary=f"service {service!r} of {self.project} is not running")
        return found.container

    def logs_passthrough(self, services: list[str], follow: bool, tail: str) -> int:
        """`docker compose logs` on this terminal; returns its exit code."""
        args = ["compose", "--file", str(self.file), "--project-name", self.project, "logs"]
        args += ["--tail", tail] + (["--follow"] if follow else []) + services
        return _passthrough(cli_argv(self.docker.host, *args))


def _passthrough(cmd: list[str]) -> int:
    log.debug("%s", shlex.join(cmd))
    try:
        return subprocess.run(cmd, check=False).returncode
    except FileNotFoundError:
        raise ToolError(command=cmd, summary="the docker CLI is not installed") from None
    except KeyboardInterrupt:
        return 0
