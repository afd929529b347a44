"""Read-only probes of this host for `hpcstack doctor`: binaries, kernel modules, files, and
the few docker CLI calls the checks need.

Every probe answers instead of raising: a missing binary is a result (exit 127), not an error,
because a doctor reports what is missing. The checks receive a HostProbes, so tests inject
answers for the cases this machine cannot show (a GPU host, an old Docker).

A check asks for `docker ...` by tool name; SystemProbes turns that into the argv
`run.docker.cli_argv` builds for its engine, so the doctor probes the same engine as every
other command (the docker CLI's own by default, DOCKER_HOST included).
"""

from __future__ import annotations

import glob
import logging
import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hpcstack.run.docker import cli_argv
from hpcstack.run.nvidia import run_nvidia_smi

log = logging.getLogger(__name__)

# Kernel-module tools live in sbin, which is not on a normal user's PATH.
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")
EXIT_NOT_FOUND = 127
EXIT_TIMEOUT = 124


@dataclass(frozen=True)
class ProbeRun:
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def first_error_line(self) -> str:
        for line in (self.stderr or self.stdout).splitlines():
            if line.strip():
                return line.strip()
        return f"exit {self.returncode}"


class HostProbes(Protocol):
    def which(self, name: str) -> str | None: ...
    def exists(self, path: str) -> bool: ...
    def glob(self, pattern: str) -> list[str]: ...
    def run(self, argv: Sequence[str], timeout: float = 30.0) -> ProbeRun: ...
    def nvidia_smi(self, args: Sequence[str]) -> str: ...


class SystemProbes:
    """The real host; `docker_host` is the engine the docker probes talk to (None: the CLI's)."""

    def __init__(self, docker_host: str | None = None):
        self.docker_host = docker_host

    def nvidia_smi(self, args: Sequence[str]) -> str:
        return run_nvidia_smi(args)

    def which(self, name: str) -> str | None:
        path = os.pathsep.join([os.environ.get("PATH", os.defpath), *_SBIN])
        return shutil.which(name, path=path)

    def exists(self, path: str) -> bool:
        return Path(path).exists()

    def glob(self, pattern: str) -> list[str]:
        return sorted(glob.glob(pattern))

    def run(self, argv: Sequence[str], timeout: float = 30.0) -> ProbeRun:
        if argv and argv[0] == "docker":
            argv = cli_argv(self.docker_host, *argv[1:])
        binary = self.which(argv[0])
        if binary is None:
            return ProbeRun(EXIT_NOT_FOUND, stderr=f"{argv[0]}: command not found")
        full = [binary, *argv[1:]]
        log.debug("probe: %s", shlex.join(full))
        try:
            proc = subprocess.run(
                full, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return ProbeRun(EXIT_TIMEOUT, stderr=f"no answer within {timeout:g} s")
        except OSError as exc:
            return ProbeRun(EXIT_NOT_FOUND, stderr=f"{argv[0]}: {exc.strerror}")
        return ProbeRun(proc.returncode, proc.stdout, proc.stderr)
