"""sites[].mounts and storage: malformed definitions exit 1 with the line and a hint; the good
ones render as read-only binds on the site's nodes only, and the shared filesystem's compose."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hpcstack.cli.main import cli
from hpcstack.definition.load import load_stack
from hpcstack.plan.topology import make_plan
from hpcstack.render.compose import compose_site

HEAD = """\
cluster:
  name: mnt
tunnel:
  mode: {mode}
storage:
  shared_fs: {shared}
  mount_roots: [{roots}]
sites:
  - name: cloud
    role: cloud
    subnet: 172.28.0.0/24
  - name: ws
    role: local
    subnet: 172.28.1.0/24
    nodes:
      - name: node1
    mounts:
"""
MOUNT_LINE = 18  # the first mount's line


def definition(mounts: str, mode: str = "wireguard", shared: str = "null", roots: str = "/data"):
    return HEAD.format(mode=mode, shared=shared, roots=roots) + mounts


# name -> (definition, line, dotted path, words in the message, words in the hint)
BAD = {
    "relative-source": (
        definition("      - {source: data/imagenet, target: /data/imagenet}\n"),
        MOUNT_LINE, "sites[1].mounts[0].source", "is a relative path", "write it from /",
    ),
    "relative-target": (
        definition("      - {source: /data/imagenet, target: imagenet}\n"),
        MOUNT_LINE, "sites[1].mounts[0].target", "is a relative path", "write it from /",
    ),
    "dotdot-source": (
        definition("      - {source: /data/../etc, target: /data/x}\n"),
        MOUNT_LINE, "sites[1].mounts[0].source", "not a normalised path", "'..'",
    ),
    "outside-root": (
        definition("      - {source: /var/lib/docker, target: /data/docker}\n"),
        MOUNT_LINE, "sites[1].mounts[0].source", "outside the allowed roots",
        "add its directory to storage.mount_roots",
    ),
    "duplicate-target": (
        definition(
            "      - {source: /data/a, target: /data/in}\n"
            "      - {source: /data/b, target: /data/in}\n"
        ),
        MOUNT_LINE + 1, "sites[1].mounts[1].target", "already used by sites[1].mounts[0]",
        "its own target",
    ),
    "target-home": (
        definition("      - {source: /data/homes, target: /home/alice}\n"),
        MOUNT_LINE, "sites[1].mounts[0].target", "shared filesystem's /home", "/data/<name>",
    ),
    "target-above-shared": (
        definition("      - {source: /data/x, target: /}\n"),
        MOUNT_LINE, "sites[1].mounts[0].target", "shared filesystem", "/data/<name>",
    ),
    "target-system": (
        definition("      - {source: /data/x, target: /usr/local/data}\n"),
        MOUNT_LINE, "sites[1].mounts[0].target", "system path of the node image", "under /data",
    ),
    "odd-characters": (
        definition("      - {source: '/data/a:b', target: /data/x}\n"),
        MOUNT_LINE, "sites[1].mounts[0].source", "only letters, digits", "",
    ),
    "root-is-system": (
        definition("      - {source: /data/x, target: /data/x}\n", roots="/etc"),
        7, "storage.mount_roots[0]", "system files", "e.g. /data",
    ),
    "shared-fs-in-ssh-mode": (
        definition("      - {source: /data/x, target: /data/x}\n", mode="ssh", shared="true"),
        6, "storage.shared_fs", "WireGuard overlay", "storage.shared_fs: false",
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BAD))
def test_malformed_mounts_exit_1_with_line_and_hint(name: str, tmp_path: Path) -> None:
    text, line, path, words, hint = BAD[name]
    config = tmp_path / "stack.yaml"
    config.write_text(text)
    result = CliRunner().invoke(cli, ["validate", "-c", str(config)])
    assert result.exit_code == 1, result.output
    assert f"{config}:{line}:" in result.output, result.output
    assert f": {path}: " in result.output, result.output
    assert words in result.output
    assert hint in result.output
    assert "Traceback" not in result.output


def _plan(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    config = tmp_path / "stack.yaml"
    config.write_text(text)
    return make_plan(load_stack(config))


def test_mounts_render_as_read_only_binds_on_the_site_nodes(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        definition(
            "      - {source: /data/imagenet, target: /data/imagenet}\n"
            "      - {source: /data/scratch, target: /scratch, read_only: false}\n"
        ),
    )
    node = compose_site(plan, plan.site("ws"))["services"]["node1"]
    binds = [v for v in node["volumes"] if isinstance(v, dict)]
    assert binds == [
        {"type": "bind", "source": "/data/imagenet", "target": "/data/imagenet",
         "read_only": True, "bind": {"create_host_path": False}},
        {"type": "bind", "source": "/data/scratch", "target": "/scratch",
         "read_only": False, "bind": {"create_host_path": False}},
    ]  # fmt: skip


def test_shared_fs_server_and_clients(tmp_path: Path) -> None:
    plan = _plan(tmp_path, definition("      - {source: /data/x, target: /data/x}\n"))
    cloud = compose_site(plan, plan.site("cloud"))
    fs = cloud["services"]["fs"]
    assert fs["command"] == ["fs"] and fs["restart"] == "unless-stopped"
    assert "SYS_ADMIN" in fs["cap_add"] and "devices" not in fs  # no FUSE on the server
    assert {"fs-data", "fs-state"} <= set(cloud["volumes"]) and "shared" not in cloud["volumes"]
    for svc in (
        cloud["services"]["slurmctld"],
        compose_site(plan, plan.site("ws"))["services"]["node1"],
    ):
        assert "/dev/fuse:/dev/fuse" in svc["devices"]
        assert svc["environment"]["HPCSTACK_FS_SERVER"] == "172.28.0.9"
        assert not any(v == "shared:/shared" for v in svc["volumes"])
    for svc in ("db", "slurmdbd", "tunnel"):
        assert "/dev/fuse:/dev/fuse" not in cloud["services"][svc].get("devices", [])
    assert cloud["services"]["slurmctld"]["depends_on"]["fs"] == {"condition": "service_healthy"}


def test_ssh_mode_keeps_the_per_host_volume(tmp_path: Path) -> None:
    plan = _plan(tmp_path, definition("      - {source: /data/x, target: /data/x}\n", mode="ssh"))
    cloud = compose_site(plan, plan.site("cloud"))
    assert "fs" not in cloud["services"] and "shared" in cloud["volumes"]
