"""Containers in jobs (`containers.enabled`): the definition key, oci.conf, the nodes'
security_opt and hpcstack-oci-run's fitting of a bundle's config.json, without Docker."""

from __future__ import annotations

import json
import re
import shlex
import types
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from hpcstack import contract
from hpcstack.cli.main import cli
from hpcstack.definition.load import load_stack
from hpcstack.plan.topology import Plan, make_plan
from hpcstack.render import render_all
from hpcstack.render.compose import compose_site

# Every key Slurm 26.05's oci.conf parser knows (src/common/oci_config.c), and the runtime
# operations its "run" mode needs (RunTimeRun with Query, Kill and Delete; no Create/Start).
OCI_KEYS = {
    "ContainerPath", "CreateEnvFile", "DisableHooks", "EnvExclude", "MountSpoolDir",
    "RunTimeCreate", "RunTimeDelete", "RunTimeKill", "RunTimeEnvExclude", "RunTimeQuery",
    "RunTimeRun", "RunTimeStart", "SrunPath", "SrunArgs", "DisableCleanup", "StdIODebug",
    "SyslogDebug", "FileDebug", "DebugFlags", "IgnoreFileConfigJson",
}  # fmt: skip
RUN_MODE = {"RunTimeRun", "RunTimeQuery", "RunTimeKill", "RunTimeDelete"}
PATTERN_LETTERS = set("%@bejmnprstuUZ")


def _plan(repo: Path, tmp_path: Path, containers: object = None) -> Plan:
    doc: dict[str, Any] = yaml.safe_load((repo / "stack.yaml").read_text())
    if containers is not None:
        doc["containers"] = containers
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(doc))
    return make_plan(load_stack(path))


def _artifacts(plan: Plan) -> dict[str, str]:
    return {a.path: a.content for a in render_all(plan)}


def _oci_conf(text: str) -> dict[str, str]:
    settings = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings[key] = value.removeprefix('"').removesuffix('"')
    return settings


def test_containers_are_off_by_default(repo: Path, tmp_path: Path) -> None:
    plan = _plan(repo, tmp_path)
    assert "slurm/oci.conf" not in _artifacts(plan)
    for site in plan.sites:
        for svc in compose_site(plan, site)["services"].values():
            assert "security_opt" not in svc


def test_oci_conf_uses_slurms_keys_in_run_mode(repo: Path, tmp_path: Path) -> None:
    conf = _oci_conf(_artifacts(_plan(repo, tmp_path, {"enabled": True}))["slurm/oci.conf"])
    assert set(conf) <= OCI_KEYS
    assert set(conf) >= RUN_MODE and not {"RunTimeCreate", "RunTimeStart"} & set(conf)
    for key, value in conf.items():
        letters = set(re.findall(r"%(.)", value))
        assert letters <= PATTERN_LETTERS, (key, letters)
    run = shlex.split(conf["RunTimeRun"])
    assert run[:3] == [contract.OCI_RUN_PATH, "%b", "--"]
    assert run[3] == "crun" and "--rootless=true" in run and "run" in run
    # every operation names the same container in the same state directory
    name = "%n.%u.%j.%s.%t"
    for key in RUN_MODE:
        words = shlex.split(conf[key])
        assert words[-1] == name and f"--root={contract.OCI_STATE_DIR}/%U" in words, key
    assert conf["MountSpoolDir"] == contract.OCI_SPOOL_MOUNT
    assert shlex.split(conf["RunTimeQuery"])[:3] == [contract.OCI_RUN_PATH, "--state", "--"]


def test_only_compute_nodes_get_seccomp_unconfined(repo: Path, tmp_path: Path) -> None:
    plan = _plan(repo, tmp_path, {"enabled": True})
    nodes = {n.name for n in plan.nodes}
    seen = set()
    for site in plan.sites:
        for name, svc in compose_site(plan, site)["services"].items():
            if name in nodes:
                assert svc["security_opt"] == ["seccomp=unconfined"]
                assert "SYS_ADMIN" not in svc.get("cap_add", []) or plan.stack.shared_fs
                assert "privileged" not in svc
                seen.add(name)
            else:
                assert "security_opt" not in svc, name
    assert seen == nodes


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("{enabled: maybe}", "valid boolean"),
        ("{enable: true}", "enable"),
        ("[crun]", "valid dictionary"),
    ],
)
def test_a_malformed_containers_key_is_refused_with_its_line(
    repo: Path, tmp_path: Path, value: str, words: str
) -> None:
    text = (repo / "stack.yaml").read_text() + f"containers: {value}\n"
    line = len(text.splitlines())
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["validate", "-c", str(path)])
    assert result.exit_code == 1, result.output
    assert f"{path}:{line}:" in result.output, result.output
    assert words in result.output
    assert "Traceback" not in result.output


# --- hpcstack-oci-run ------------------------------------------------------------------------


def _oci_run(repo: Path, tmp_path: Path) -> types.ModuleType:
    text = _artifacts(_plan(repo, tmp_path, {"enabled": True}))["images/slurm/oci-run.py"]
    module = types.ModuleType("oci_run")
    exec(compile(text, "oci-run.py", "exec"), module.__dict__)
    return module


def _rootless_spec(rootfs: Path) -> dict[str, Any]:
    """What `crun spec --rootless` writes, after Slurm's changes to it (rootfs, args, mounts)."""
    return {
        "ociVersion": "1.0.0",
        "process": {"user": {"uid": 0, "gid": 0}, "args": ["cat", "/etc/os-release"], "cwd": "/"},
        "root": {"path": str(rootfs), "readonly": True},
        "hostname": "crun",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"},
            {"destination": "/tmp/slurm/spool", "type": "none", "source": "/var/spool/x"},
        ],
        "linux": {
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        },
    }


def test_oci_run_maps_the_caller_to_itself_and_binds_the_nodes_proc(
    repo: Path, tmp_path: Path
) -> None:
    oci_run = _oci_run(repo, tmp_path)
    oci_run.gpu_devices = lambda: ["/dev/nvidia0", "/dev/nvidiactl"]
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    got = oci_run.fit(_rootless_spec(rootfs), 2001, 2101)
    assert got["process"]["user"] == {"uid": 2001, "gid": 2101}
    assert got["linux"]["uidMappings"] == [{"containerID": 2001, "hostID": 2001, "size": 1}]
    assert got["linux"]["gidMappings"] == [{"containerID": 2101, "hostID": 2101, "size": 1}]
    kinds = [n["type"] for n in got["linux"]["namespaces"]]
    assert sorted(kinds) == ["ipc", "mount", "user"]
    assert "hostname" not in got
    by_dest = {m["destination"]: m for m in got["mounts"]}
    assert by_dest["/proc"] == {
        "destination": "/proc", "type": "bind", "source": "/proc", "options": ["rbind", "nosuid"]
    }  # fmt: skip
    assert by_dest["/sys"]["source"] == "/sys" and "/sys/fs/cgroup" not in by_dest
    dests = [m["destination"] for m in got["mounts"]]
    # Slurm's mounts under /tmp come after the private /tmp they land in
    assert dests.index("/tmp") < dests.index("/tmp/slurm/spool")
    assert by_dest["/tmp"]["type"] == "tmpfs"
    # GPU device nodes after the container's own /dev
    assert dests.index("/dev") < dests.index("/dev/nvidia0")
    assert by_dest["/dev/nvidiactl"]["source"] == "/dev/nvidiactl"
    # the rootfs has no /home or /shared: nothing is bound there
    assert contract.HOME_DIR not in by_dest and contract.SHARED_DIR not in by_dest


def test_oci_run_rewrites_the_steps_copy_then_runs_the_runtime(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    oci_run = _oci_run(repo, tmp_path)
    (tmp_path / "rootfs").mkdir()
    bundle = tmp_path / "step"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(_rootless_spec(tmp_path / "rootfs")))
    ran: list[list[str]] = []
    monkeypatch.setattr(oci_run.os, "execvp", lambda f, argv: ran.append(argv))
    assert oci_run.main(["x", str(bundle), "--", "crun", "run", "c1"]) == 1  # after exec
    assert ran == [["crun", "run", "c1"]]
    fitted = json.loads((bundle / "config.json").read_text())
    assert fitted["linux"]["uidMappings"][0]["hostID"] == oci_run.os.getuid()
    assert oci_run.main(["x", str(bundle)]) == 2
    (bundle / "config.json").write_text("{not json")
    assert oci_run.main(["x", str(bundle), "--", "crun"]) == 1


def test_oci_run_answers_stopped_for_a_container_crun_has_removed(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    oci_run = _oci_run(repo, tmp_path)
    ran: list[list[str]] = []
    monkeypatch.setattr(oci_run.os, "execvp", lambda f, argv: ran.append(argv))
    query = ["crun", "--rootless=true", f"--root={tmp_path}", "state", "node1.bob.7.0.-1"]
    assert oci_run.main(["x", "--state", "--", *query]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "stopped"
    assert ran == []
    (tmp_path / "node1.bob.7.0.-1").mkdir()  # the runtime knows it: ask the runtime
    oci_run.main(["x", "--state", "--", *query])
    assert ran == [query]
