"""The one place that runs `nvidia-smi`.

nvidia-smi reports its failures by exit code and a sentence on stdout; this module turns the
ones a user can act on (no driver, driver not talking, no GPU) into hpcstack errors and keeps
the raw text, so nothing upstream guesses from stderr.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hpcstack.errors import ToolError

log = logging.getLogger(__name__)

NVIDIA_SMI = "nvidia-smi"
DEFAULT_TIMEOUT_S = 30.0
# nvidia-smi's exit codes (see `man nvidia-smi`, RETURN VALUE).
EXIT_NO_DEVICES = 6  # "No devices were found"
EXIT_DRIVER_NOT_LOADED = 9
EXIT_NVML_MISSING = 12
NO_DEVICES_TEXT = "No devices were found"
DRIVER_TEXTS = ("couldn't communicate with the NVIDIA driver", "NVML library", "Driver/library")

MISSING_MESSAGE = (
    "no NVIDIA driver: nvidia-smi not found (install the NVIDIA driver, see docs/gpu.md)"
)

# What callers inject in tests: argv after "nvidia-smi" -> stdout.
NvidiaSmiRunner = Callable[[Sequence[str]], str]


@dataclass
class NvidiaSmiMissing(ToolError):
    """nvidia-smi is not on PATH: the NVIDIA driver is not installed on this host."""

    summary: str = MISSING_MESSAGE

    def __str__(self) -> str:
        return self.summary


@dataclass
class NvidiaDriverError(ToolError):
    """nvidia-smi exists but cannot talk to the kernel driver (not loaded, version mismatch)."""

    summary: str = (
        "NVIDIA driver not working: nvidia-smi cannot talk to it (reboot after installing the "
        "driver, or reinstall it; see docs/gpu.md)"
    )


def run_nvidia_smi(
    args: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT_S, binary: str = NVIDIA_SMI
) -> str:
    """Run nvidia-smi with `args`; return stdout. "No devices were found" returns ""."""
    path = shutil.which(binary)
    if path is None:
        raise NvidiaSmiMissing(command=[binary, *args])
    argv = [path, *args]
    log.debug("run: %s", shlex.join(argv))
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise NvidiaSmiMissing(command=argv) from None
    except subprocess.TimeoutExpired:
        raise ToolError(
            command=argv, summary=f"nvidia-smi gave no answer within {timeout:g} s (hung driver?)"
        ) from None
    if proc.returncode == 0:
        return proc.stdout
    text = proc.stdout + proc.stderr
    if proc.returncode == EXIT_NO_DEVICES and NO_DEVICES_TEXT in text:
        return ""
    error = ToolError(argv, proc.returncode, proc.stdout, proc.stderr, "nvidia-smi failed")
    if proc.returncode in (EXIT_DRIVER_NOT_LOADED, EXIT_NVML_MISSING) or any(
        t in text for t in DRIVER_TEXTS
    ):
        error = NvidiaDriverError(argv, proc.returncode, proc.stdout, proc.stderr)
    raise error
