"""`hpcstack doctor`: the real command on this machine (no GPU, Docker running), then each
check with injected probes for the hosts this machine cannot be (GPU host, old Docker, ...)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpcstack.cli.main import cli
from hpcstack.operate.doctor import (
    FIX_DOCKER_GROUP,
    FIX_DOCKER_INSTALL,
    FIX_DRIVER,
    FIX_TOOLKIT_CONFIGURE,
    FIX_TOOLKIT_INSTALL,
    GpuAccess,
    Status,
    check_buildx,
    check_compose,
    check_container_toolkit,
    check_docker_engine,
    check_gpu_in_container,
    check_kernel_wireguard,
    check_nvidia_driver,
    parse_version,
    run_checks,
)
from hpcstack.run.host import ProbeRun
from hpcstack.run.nvidia import NvidiaDriverError, NvidiaSmiMissing

FIXTURES = Path(__file__).parent / "fixtures" / "nvidia-smi"
NO_GPU_HERE = shutil.which("nvidia-smi") is None


# --- the real command on this machine ---------------------------------------------------------


@pytest.mark.docker
@pytest.mark.skipif(not NO_GPU_HERE, reason="asserts the answer of a host without a GPU")
def test_doctor_here_reports_no_driver_and_exits_1() -> None:
    result = CliRunner(env={"COLUMNS": "250"}).invoke(cli, ["doctor"])
    assert result.exit_code == 1, result.output
    assert "no NVIDIA driver: nvidia-smi not found" in result.output
    assert "required check(s) failed" in result.output
    assert "skipped: needs driver and toolkit" in result.output
    # The other checks still ran and show their answers.
    for name in ("Docker engine", "Docker Compose v2", "Docker buildx", "kernel WireGuard"):
        assert name in result.output


@pytest.mark.docker
@pytest.mark.skipif(not NO_GPU_HERE, reason="asserts the answer of a host without a GPU")
def test_doctor_json_here() -> None:
    result = CliRunner().invoke(cli, ["doctor", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    checks = {c["check"]: c for c in report["checks"]}
    assert report["ok"] is False
    assert checks["NVIDIA driver (nvidia-smi)"]["status"] == "fail"
    assert "no NVIDIA driver" in checks["NVIDIA driver (nvidia-smi)"]["detail"]
    assert checks["NVIDIA driver (nvidia-smi)"]["fix"] == FIX_DRIVER
    assert checks["Docker engine"]["status"] == "ok"  # the engine runs here
    assert checks["Docker Compose v2"]["status"] == "ok"
    assert checks["Docker buildx"]["status"] == "ok"
    assert checks["kernel WireGuard"]["status"] in {"ok", "warn"}
    assert checks["kernel WireGuard"]["required"] is False


@pytest.mark.docker
def test_doctor_no_gpu_passes_here() -> None:
    result = CliRunner().invoke(cli, ["doctor", "--json", "--no-gpu"])
    report = json.loads(result.output)
    assert result.exit_code == 0, result.output
    assert report["ok"] is True
    skipped = [c for c in report["checks"] if c["status"] == "skipped"]
    assert len(skipped) == 3
    assert all(c["detail"] == "skipped: --no-gpu" for c in skipped)


# --- injected probes --------------------------------------------------------------------------


@dataclass
class FakeHost:
    """A host described by its answers: binaries, files, command outputs, nvidia-smi."""

    binaries: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    answers: dict[tuple[str, ...], ProbeRun] = field(default_factory=dict)
    smi_case: str | None = None  # a recorded case; None: nvidia-smi missing
    ran: list[list[str]] = field(default_factory=list)

    def which(self, name: str) -> str | None:
        return f"/usr/bin/{name}" if name in self.binaries else None

    def exists(self, path: str) -> bool:
        return path in self.files

    def glob(self, pattern: str) -> list[str]:
        folder, _, suffix = pattern.rpartition("/*")
        return sorted(f for f in self.files if f.startswith(folder + "/") and f.endswith(suffix))

    def run(self, argv: Sequence[str], timeout: float = 30.0) -> ProbeRun:
        self.ran.append(list(argv))
        for prefix, answer in self.answers.items():
            if tuple(argv[: len(prefix)]) == prefix:
                return answer
        return ProbeRun(127, stderr=f"{argv[0]}: command not found")

    def nvidia_smi(self, args: Sequence[str]) -> str:
        if self.smi_case is None:
            raise NvidiaSmiMissing(command=["nvidia-smi", *args])
        text = (FIXTURES / f"{self.smi_case}.stdout").read_text()
        if self.smi_case == "driver-error":
            raise NvidiaDriverError(["nvidia-smi", *args], 9, text, "")
        return "" if self.smi_case == "zero-gpus" else text


DOCKER_OK: dict[tuple[str, ...], ProbeRun] = {
    ("docker", "version"): ProbeRun(0, "28.5.1\n"),
    ("docker", "compose"): ProbeRun(0, "2.40.3\n"),
    ("docker", "buildx"): ProbeRun(0, "github.com/docker/buildx v0.29.1 abc\n"),
}
NVIDIA_RUNTIME: dict[tuple[str, ...], ProbeRun] = {
    ("docker", "info"): ProbeRun(0, '{"nvidia":{"path":"nvidia-container-runtime"},"runc":{}}')
}
GPU_LISTED: dict[tuple[str, ...], ProbeRun] = {
    ("docker", "run"): ProbeRun(0, "GPU 0: NVIDIA H200 (UUID: GPU-8a6f5b2e)\n"),
}


def gpu_host(**changes: object) -> FakeHost:
    host = FakeHost(
        binaries={"nvidia-ctk", "nvidia-container-runtime", "docker"},
        files={"/sys/module/wireguard"},
        answers={**NVIDIA_RUNTIME, **GPU_LISTED, **DOCKER_OK},
        smi_case="four-gpus",
    )
    for key, value in changes.items():
        setattr(host, key, value)
    return host


def test_a_ready_gpu_host_passes_everything() -> None:
    host = gpu_host()
    results = run_checks(host)
    assert [r.status for r in results] == [Status.OK] * len(results)
    assert "4 GPUs" in results[0].detail and "type a100" in results[0].detail
    docker_run = next(a for a in host.ran if a[:2] == ["docker", "run"])
    at = docker_run.index("--gpus")
    assert docker_run[at : at + 2] == ["--gpus", "all"]
    assert "--rm" in docker_run and "--privileged" not in docker_run


def test_driver_missing() -> None:
    result, gpus = check_nvidia_driver(gpu_host(smi_case=None))
    assert (result.status, result.fix, gpus) == (Status.FAIL, FIX_DRIVER, [])
    assert result.detail.startswith("no NVIDIA driver")


def test_driver_not_talking() -> None:
    result, _ = check_nvidia_driver(gpu_host(smi_case="driver-error"))
    assert result.status is Status.FAIL
    assert "couldn't communicate with the NVIDIA driver" in result.detail
    assert "reboot" in result.fix


def test_driver_without_gpus() -> None:
    result, _ = check_nvidia_driver(gpu_host(smi_case="zero-gpus"))
    assert result.status is Status.FAIL
    assert "no GPU" in result.detail and "lspci" in result.fix


def test_toolkit_through_cdi_only() -> None:
    host = gpu_host(binaries={"docker"}, answers={**DOCKER_OK}, files={"/etc/cdi/nvidia.yaml"})
    result, access = check_container_toolkit(host)
    assert result.status is Status.OK and "/etc/cdi/nvidia.yaml" in result.detail
    assert access.docker_args == ["--device", "nvidia.com/gpu=all"]


def test_toolkit_installed_but_not_configured() -> None:
    result, access = check_container_toolkit(gpu_host(answers={**DOCKER_OK}))
    assert (result.status, result.fix) == (Status.FAIL, FIX_TOOLKIT_CONFIGURE)
    assert access.docker_args == []


def test_toolkit_absent() -> None:
    result, _ = check_container_toolkit(FakeHost(binaries={"docker"}, answers={**DOCKER_OK}))
    assert (result.status, result.fix) == (Status.FAIL, FIX_TOOLKIT_INSTALL)


def test_gpu_container_check_is_skipped_without_driver() -> None:
    host = gpu_host(smi_case=None)
    results = run_checks(host)
    assert results[2].status is Status.SKIP
    assert results[2].detail == "skipped: needs driver and toolkit"
    assert not any(a[:2] == ["docker", "run"] for a in host.ran)


def test_gpu_container_sees_nothing() -> None:
    host = gpu_host(
        answers={("docker", "run"): ProbeRun(125, stderr="could not select device driver")}
    )
    result = check_gpu_in_container(host, GpuAccess(runtime=True, cdi=[]))
    assert result.status is Status.FAIL
    assert "could not select device driver" in result.detail


def test_no_gpu_flag_skips_nvidia_and_never_asks_nvidia_smi() -> None:
    host = gpu_host(smi_case="driver-error")
    results = run_checks(host, gpu=False)
    assert [r.status for r in results[:3]] == [Status.SKIP] * 3
    assert not any(r.blocking for r in results)


def test_wireguard_module_states() -> None:
    assert check_kernel_wireguard(gpu_host()).detail == "module loaded"
    via_modinfo = FakeHost(answers={("modinfo", "wireguard"): ProbeRun(0, "filename: x")})
    assert check_kernel_wireguard(via_modinfo).status is Status.OK
    none = check_kernel_wireguard(FakeHost())
    assert none.status is Status.WARN and not none.blocking
    assert "wireguard-go" in none.detail and "modprobe wireguard" in none.fix


def test_docker_missing_old_and_forbidden() -> None:
    missing = check_docker_engine(FakeHost())
    assert (missing.status, missing.fix) == (Status.FAIL, FIX_DOCKER_INSTALL)
    old = check_docker_engine(FakeHost(answers={("docker", "version"): ProbeRun(0, "19.03.15")}))
    assert old.status is Status.FAIL and "older than 20.10" in old.detail
    denied = ProbeRun(1, stderr="permission denied while trying to connect to the Docker daemon")
    forbidden = check_docker_engine(FakeHost(answers={("docker", "version"): denied}))
    assert forbidden.fix == FIX_DOCKER_GROUP


def test_compose_and_buildx_versions() -> None:
    old = FakeHost(answers={("docker", "compose"): ProbeRun(0, "2.19.1")})
    assert check_compose(old).status is Status.FAIL
    assert check_compose(gpu_host()).status is Status.OK
    assert check_buildx(FakeHost()).status is Status.FAIL
    assert check_buildx(gpu_host()).detail.startswith("0.29.1")


@pytest.mark.parametrize(
    ("text", "version"),
    [("20.10.24+dfsg1", (20, 10, 24)), ("v2.40.3-3", (2, 40, 3)), ("2.20", (2, 20, 0)), ("", None)],
)
def test_parse_version(text: str, version: tuple[int, int, int] | None) -> None:
    assert parse_version(text) == version
