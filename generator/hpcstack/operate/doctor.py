"""Host checks behind `hpcstack doctor`: can this machine run a (GPU) site?

Each check is a small function of HostProbes that returns one CheckResult with, when it fails,
the command that fixes it on Debian/Ubuntu. The CLI only runs them and prints the table.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from hpcstack.errors import HpcStackError
from hpcstack.plan.gpu import GpuInfo, query_gpus
from hpcstack.run.host import HostProbes, ProbeRun
from hpcstack.run.nvidia import NvidiaDriverError, NvidiaSmiMissing

MIN_DOCKER = (20, 10)
MIN_COMPOSE = (2, 20)
MIN_BUILDX = (0, 10)  # a floor: older buildx releases were never tried with these images
DEFAULT_GPU_IMAGE = "debian:forky-slim"
CDI_DIRS = ("/etc/cdi", "/var/run/cdi")

FIX_DRIVER = (
    "Debian (contrib non-free enabled): sudo apt-get install -y linux-headers-$(uname -r) "
    "nvidia-driver firmware-misc-nonfree && sudo reboot; "
    "Ubuntu: sudo ubuntu-drivers install && sudo reboot"
)
FIX_DRIVER_BROKEN = (
    "sudo reboot (a driver was installed or updated since boot); if it persists: "
    "sudo apt-get install --reinstall -y nvidia-driver  # see: sudo dmesg | grep -i nvrm"
)
FIX_TOOLKIT_INSTALL = (
    "add NVIDIA's container toolkit apt repository (docs/gpu.md), then: sudo apt-get install -y "
    "nvidia-container-toolkit && sudo nvidia-ctk runtime configure --runtime=docker && "
    "sudo systemctl restart docker"
)
FIX_TOOLKIT_CONFIGURE = (
    "sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker "
    "(or CDI: sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml)"
)
FIX_WIREGUARD = "sudo modprobe wireguard  (kernel >= 5.6; Debian/Ubuntu kernels ship the module)"
FIX_DOCKER_INSTALL = "sudo apt-get install -y docker.io && sudo systemctl enable --now docker"
FIX_DOCKER_START = "sudo systemctl enable --now docker"
FIX_DOCKER_GROUP = "sudo usermod -aG docker $USER  (then log in again)"
FIX_COMPOSE = (
    "Debian 13+/Ubuntu 24.04+: sudo apt-get install -y docker-compose; "
    "with Docker's apt repository: sudo apt-get install -y docker-compose-plugin"
)
FIX_BUILDX = (
    "Debian 13+/Ubuntu 24.04+: sudo apt-get install -y docker-buildx; "
    "with Docker's apt repository: sudo apt-get install -y docker-buildx-plugin"
)


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skipped"


@dataclass(frozen=True)
class CheckResult:
    check: str
    status: Status
    detail: str
    fix: str = ""
    required: bool = True

    @property
    def blocking(self) -> bool:
        return self.status is Status.FAIL and self.required

    def as_dict(self) -> dict[str, object]:
        return {
            "check": self.check,
            "status": str(self.status),
            "required": self.required,
            "detail": self.detail,
            "fix": self.fix,
        }


# --- NVIDIA -------------------------------------------------------------------------------------


def check_nvidia_driver(probes: HostProbes) -> tuple[CheckResult, list[GpuInfo]]:
    name = "NVIDIA driver (nvidia-smi)"
    try:
        gpus = query_gpus(runner=probes.nvidia_smi)
    except NvidiaSmiMissing as exc:
        return CheckResult(name, Status.FAIL, str(exc), FIX_DRIVER), []
    except NvidiaDriverError as exc:
        raw = (exc.stdout or exc.stderr).strip().splitlines()
        detail = f"{exc.summary}: {raw[0] if raw else f'exit {exc.returncode}'}"
        return CheckResult(name, Status.FAIL, detail, FIX_DRIVER_BROKEN), []
    except HpcStackError as exc:
        return CheckResult(name, Status.FAIL, str(exc), FIX_DRIVER_BROKEN), []
    if not gpus:
        return CheckResult(
            name,
            Status.FAIL,
            "driver loaded but nvidia-smi found no GPU",
            "check the card is seen: lspci -nn | grep -i nvidia (then reseat/enable it in BIOS)",
        ), []
    return CheckResult(name, Status.OK, _describe(gpus)), gpus


def _describe(gpus: list[GpuInfo]) -> str:
    parts = [f"{g.index}: {g.name} ({g.memory_mib // 1024} GiB, type {g.slurm_type})" for g in gpus]
    return f"{len(gpus)} GPU{'s' * (len(gpus) != 1)}: " + "; ".join(parts)


def docker_runtimes(probes: HostProbes) -> set[str]:
    run = probes.run(["docker", "info", "--format", "{{json .Runtimes}}"])
    if not run.ok:
        return set()
    try:
        data = json.loads(run.stdout or "{}")
    except json.JSONDecodeError:
        return set()
    return set(data) if isinstance(data, dict) else set()


def cdi_specs(probes: HostProbes) -> list[str]:
    return [
        path
        for d in CDI_DIRS
        for pattern in ("*.yaml", "*.yml", "*.json")
        for path in probes.glob(os.path.join(d, pattern))
    ]


@dataclass(frozen=True)
class GpuAccess:
    """How containers on this host get GPUs: the nvidia runtime, CDI, or neither."""

    runtime: bool
    cdi: list[str]

    @property
    def docker_args(self) -> list[str]:
        if self.runtime:
            return ["--gpus", "all"]
        if self.cdi:
            return ["--device", "nvidia.com/gpu=all"]
        return []


def check_container_toolkit(probes: HostProbes) -> tuple[CheckResult, GpuAccess]:
    name = "NVIDIA container toolkit"
    binaries = [b for b in ("nvidia-ctk", "nvidia-container-runtime") if probes.which(b)]
    access = GpuAccess(runtime="nvidia" in docker_runtimes(probes), cdi=cdi_specs(probes))
    found = []
    if binaries:
        found.append("found " + ", ".join(binaries))
    if access.runtime:
        found.append('docker runtime "nvidia" configured')
    if access.cdi:
        found.append("CDI spec " + ", ".join(access.cdi))
    if access.runtime or access.cdi:
        return CheckResult(name, Status.OK, "; ".join(found)), access
    if binaries:
        detail = "; ".join(found) + '; but no docker runtime "nvidia" and no CDI spec'
        return CheckResult(name, Status.FAIL, detail, FIX_TOOLKIT_CONFIGURE), access
    detail = 'not installed: no nvidia-ctk, no docker runtime "nvidia", no CDI spec in ' + (
        " or ".join(CDI_DIRS)
    )
    return CheckResult(name, Status.FAIL, detail, FIX_TOOLKIT_INSTALL), access


def check_gpu_in_container(
    probes: HostProbes, access: GpuAccess, image: str = DEFAULT_GPU_IMAGE
) -> CheckResult:
    name = "GPU inside a container"
    argv = [
        "docker", "run", "--rm", "--name", f"hpcstack-doctor-gpu-{os.getpid()}",
        *access.docker_args, "-e", "NVIDIA_DRIVER_CAPABILITIES=utility", image, "nvidia-smi", "-L",
    ]  # fmt: skip
    run = probes.run(argv, timeout=180)
    listed = [ln for ln in run.stdout.splitlines() if ln.startswith("GPU ")]
    if run.ok and listed:
        return CheckResult(name, Status.OK, f"{image}: " + "; ".join(listed))
    return CheckResult(
        name,
        Status.FAIL,
        f"{' '.join(argv[2:])} failed: {run.first_error_line}",
        FIX_TOOLKIT_CONFIGURE,
    )


# --- host and Docker ----------------------------------------------------------------------------


def check_kernel_wireguard(probes: HostProbes) -> CheckResult:
    name = "kernel WireGuard"
    if probes.exists("/sys/module/wireguard"):
        return CheckResult(name, Status.OK, "module loaded", required=False)
    if probes.run(["modinfo", "wireguard"]).ok:
        return CheckResult(name, Status.OK, "module available (loads on first use)", required=False)
    return CheckResult(
        name,
        Status.WARN,
        "no wireguard kernel module: userspace wireguard-go will be used (slower)",
        FIX_WIREGUARD,
        required=False,
    )


def parse_version(text: str) -> tuple[int, int, int] | None:
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if m is None:
        return None
    return int(m[1]), int(m[2]), int(m[3] or 0)


def _version_check(name: str, run: ProbeRun, minimum: tuple[int, int], fix: str) -> CheckResult:
    version = parse_version(run.stdout) if run.ok else None
    need = ".".join(map(str, minimum))
    if version is None:
        return CheckResult(name, Status.FAIL, run.first_error_line, fix)
    shown = ".".join(map(str, version))
    if version[:2] < minimum:
        return CheckResult(name, Status.FAIL, f"{shown} is older than {need}", fix)
    return CheckResult(name, Status.OK, f"{shown} (>= {need})")


def check_docker_engine(probes: HostProbes) -> CheckResult:
    run = probes.run(["docker", "version", "--format", "{{.Server.Version}}"])
    fix = FIX_DOCKER_INSTALL
    if run.returncode != 127 and not run.ok:
        text = (run.stderr + run.stdout).lower()
        fix = FIX_DOCKER_GROUP if "permission denied" in text else FIX_DOCKER_START
    return _version_check("Docker engine", run, MIN_DOCKER, fix)


def check_compose(probes: HostProbes) -> CheckResult:
    run = probes.run(["docker", "compose", "version", "--short"])
    return _version_check("Docker Compose v2", run, MIN_COMPOSE, FIX_COMPOSE)


def check_buildx(probes: HostProbes) -> CheckResult:
    run = probes.run(["docker", "buildx", "version"])
    return _version_check("Docker buildx", run, MIN_BUILDX, FIX_BUILDX)


# --- all together -------------------------------------------------------------------------------

NVIDIA_CHECKS = ("NVIDIA driver (nvidia-smi)", "NVIDIA container toolkit", "GPU inside a container")


def run_checks(
    probes: HostProbes, *, gpu: bool = True, image: str = DEFAULT_GPU_IMAGE
) -> list[CheckResult]:
    """Every check, in the order a person fixes them. gpu=False skips the NVIDIA ones."""
    results = _nvidia_checks(probes, image) if gpu else _skipped("skipped: --no-gpu")
    host: list[Callable[[HostProbes], CheckResult]] = [
        check_docker_engine,
        check_compose,
        check_buildx,
        check_kernel_wireguard,
    ]
    return results + [check(probes) for check in host]


def _nvidia_checks(probes: HostProbes, image: str) -> list[CheckResult]:
    driver, _ = check_nvidia_driver(probes)
    toolkit, access = check_container_toolkit(probes)
    if driver.status is Status.OK and toolkit.status is Status.OK:
        in_container = check_gpu_in_container(probes, access, image)
    else:
        in_container = CheckResult(
            NVIDIA_CHECKS[2], Status.SKIP, "skipped: needs driver and toolkit"
        )
    return [driver, toolkit, in_container]


def _skipped(why: str) -> list[CheckResult]:
    return [CheckResult(name, Status.SKIP, why, required=False) for name in NVIDIA_CHECKS]


def blocking(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.blocking]
