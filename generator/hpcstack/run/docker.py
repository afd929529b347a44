"""The one choke point for docker and docker compose.

Everything goes through python-on-whales (argv lists, no shell), except the interactive
pass-through of `hpcstack exec`, which hands the terminal to `docker exec`. Every failure becomes
a ToolError carrying the command, exit code and output.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from python_on_whales import DockerClient, DockerException

from ..errors import ToolError
from ..topology import SitePlan

log = logging.getLogger(__name__)


def _tool_error(exc: DockerException, summary: str) -> ToolError:
    return ToolError(
        command=[str(c) for c in exc.docker_command],
        returncode=exc.return_code,
        stdout=exc.stdout or "",
        stderr=exc.stderr or "",
        summary=summary,
    )


def require_engine() -> None:
    try:
        DockerClient().system.info()
    except FileNotFoundError:
        raise ToolError(
            summary="the docker CLI is not installed (run scripts/install-docker.sh, or install "
            "Docker Engine with compose v2)"
        ) from None
    except DockerException as exc:
        raise _tool_error(
            exc, "no Docker engine answers (start it, or run scripts/install-docker.sh as root)"
        ) from None


@dataclass(frozen=True)
class ServiceState:
    service: str
    container: str
    state: str  # running | exited | created | ...
    health: str  # healthy | unhealthy | starting | "" (no healthcheck)


class SiteCompose:
    """Compose operations on one generated site (compose/<site>.yml)."""

    def __init__(self, out_dir: Path, site: SitePlan, env: Mapping[str, str] | None = None):
        self.site = site
        self.file = out_dir / "compose" / f"{site.name}.yml"
        if not self.file.exists():
            raise ToolError(summary=f"{self.file} is missing: run `hpcstack generate` first")
        self._client = DockerClient(
            compose_files=[self.file],
            compose_project_name=site.project,
            compose_env_files=[],
        )
        self._env = dict(env or {})

    def _run(self, summary: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        log.debug("compose %s: %s %s", self.site.project, getattr(fn, "__name__", fn), kwargs)
        saved = {k: os.environ.get(k) for k in self._env}
        os.environ.update(self._env)  # compose interpolates build args from the environment
        try:
            return fn(*args, **kwargs)
        except DockerException as exc:
            raise _tool_error(exc, summary) from None
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def build(self) -> None:
        self._run(
            f"building images for site {self.site.name} failed",
            self._client.compose.build,
            quiet=True,
        )

    def pull(self) -> None:
        self._run(f"pulling images for site {self.site.name} failed", self._client.compose.pull)

    def up(self, services: list[str] | None = None, wait_timeout: int = 300) -> None:
        self._run(
            f"starting site {self.site.name} failed",
            self._client.compose.up,
            services=services,
            detach=True,
            wait=True,
            wait_timeout=wait_timeout,
            no_build=True,
            pull="never",
            quiet=True,
        )

    def down(self, volumes: bool = False) -> None:
        self._run(
            f"stopping site {self.site.name} failed",
            self._client.compose.down,
            volumes=volumes,
            remove_orphans=True,
            quiet=True,
        )

    def states(self) -> list[ServiceState]:
        containers = self._run("listing containers failed", self._client.compose.ps, all=True)
        out = []
        for c in containers:
            health = c.state.health.status if c.state.health is not None else ""
            service = c.config.labels.get("com.docker.compose.service", c.name)
            out.append(ServiceState(service, c.name, c.state.status or "", health or ""))
        return sorted(out, key=lambda s: s.service)

    def container(self, service: str) -> str:
        for st in self.states():
            if st.service == service and st.state == "running":
                return st.container
        raise ToolError(
            summary=f"service {service!r} of site {self.site.name} is not running "
            f"(start it with `hpcstack up --site {self.site.name}`)"
        )


def exec_capture(container: str, argv: Sequence[str], user: str | None = None) -> str:
    """Run a command in a container and return its stdout; ToolError on failure."""
    log.debug("docker exec %s %s", container, shlex.join(argv))
    try:
        out = DockerClient().container.execute(container, list(argv), user=user)
    except DockerException as exc:
        raise _tool_error(exc, f"command in {container} failed") from None
    return str(out or "")


def exec_stream(container: str, argv: Sequence[str], user: str | None = None) -> Iterator[str]:
    """Run a command in a container, yielding its output lines as they come."""
    log.debug("docker exec %s %s", container, shlex.join(argv))
    try:
        stream = DockerClient().container.execute(container, list(argv), user=user, stream=True)
        chunks = cast(Iterable[tuple[str, bytes]], stream)
        buf = ""
        for _source, chunk in chunks:
            buf += chunk.decode(errors="replace")
            while "\n" in buf:
                line, buf = buf.split("\n", 1)
                yield line
        if buf:
            yield buf
    except DockerException as exc:
        raise _tool_error(exc, f"command in {container} failed") from None


def exec_passthrough(container: str, argv: Sequence[str], user: str | None = None) -> int:
    """Run a command in a container on this terminal; returns its exit code."""
    cmd = ["docker", "exec"]
    if sys.stdin.isatty():
        cmd.append("-i")
        if sys.stdout.isatty():
            cmd.append("-t")
    if user:
        cmd += ["--user", user]
    cmd += [container, *argv]
    log.debug("%s", shlex.join(cmd))
    try:
        return subprocess.run(cmd, check=False).returncode
    except FileNotFoundError:
        raise ToolError(command=cmd, summary="the docker CLI is not installed") from None


def compose_logs_passthrough(
    file: Path, project: str, services: list[str], follow: bool, tail: str
) -> int:
    """`docker compose logs` on this terminal; returns its exit code."""
    cmd = ["docker", "compose", "--file", str(file), "--project-name", project, "logs"]
    cmd += ["--tail", tail] + (["--follow"] if follow else []) + services
    log.debug("%s", shlex.join(cmd))
    try:
        return subprocess.run(cmd, check=False).returncode
    except FileNotFoundError:
        raise ToolError(command=cmd, summary="the docker CLI is not installed") from None
    except KeyboardInterrupt:
        return 0


def image_exists(ref: str) -> bool:
    return bool(DockerClient().image.exists(ref))


def signal_container(container: str, signal: str) -> None:
    try:
        DockerClient().container.kill(container, signal=signal)
    except DockerException as exc:
        raise _tool_error(exc, f"signalling {container} failed") from None


def try_pull(ref: str) -> bool:
    """Pull an image; False (not an error) when no registry serves it."""
    try:
        DockerClient().image.pull(ref, quiet=True)
    except DockerException as exc:
        log.debug("pull %s failed: %s", ref, exc.stderr)
        return False
    return True


def push(ref: str) -> None:
    try:
        DockerClient().image.push(ref, quiet=True)
    except DockerException as exc:
        raise _tool_error(exc, f"pushing {ref} failed") from None
