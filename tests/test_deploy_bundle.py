"""`deploy cloud` without SSH: what the bundle holds (from the plan) and how cloud-init is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpcstack.operate.bundle import bundle_files, site_secrets
from hpcstack.operate.deploy import CloudInitError, cloud_init_state
from hpcstack.operate.generate import generate
from hpcstack.output.state import load_generated
from hpcstack.run.ssh import RunResult

REPO = Path(__file__).resolve().parents[1]
STACK = REPO / "stack.yaml"


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate(STACK, out)
    return out


def test_cloud_bundle_holds_what_the_cloud_compose_file_uses(tree: Path) -> None:
    plan = load_generated(tree)
    files = {f.rel: f for f in bundle_files(plan, plan.controller, tree)}
    assert "compose/cloud.yml" in files and "compose/local.yml" not in files
    assert files["secrets/munge.key"].mode == 0o400 and files["secrets/munge.key"].secret
    assert "secrets/wireguard/hub.key" in files
    assert not any(rel.startswith("secrets/wireguard/node") for rel in files)
    assert files["images/slurm/Dockerfile"].mode == 0o644


def test_site_secrets_follow_the_compose_document(tree: Path) -> None:
    plan = load_generated(tree)
    [local] = [s for s in plan.sites if not s.is_controller]
    used = site_secrets(plan, local, tree)
    assert {"munge.key", "wireguard/node1.key", "wireguard/node2.key"} <= set(used)
    assert "wireguard/hub.key" not in used and "db_password" not in used


def test_missing_generated_file_is_named(tree: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tree, copy, symlinks=True)
    (copy / "secrets" / "db_password").unlink()
    plan = load_generated(copy)
    with pytest.raises(Exception, match="secrets/db_password"):
        bundle_files(plan, plan.controller, copy)


def _result(code: int, out: str) -> RunResult:
    return RunResult(["cloud-init", "status", "--wait"], code, out, "")


def test_cloud_init_states() -> None:
    assert cloud_init_state(_result(0, "status: done\n"), "c") == "done"
    assert cloud_init_state(_result(2, "status: done\nrecoverable_errors: ..."), "c") == "degraded"
    assert cloud_init_state(_result(0, "status: absent\n"), "c") == "absent"
    with pytest.raises(CloudInitError, match="cloud-init failed on c"):
        cloud_init_state(_result(1, "status: error\n"), "c")
    with pytest.raises(CloudInitError, match="status: error"):
        cloud_init_state(_result(0, "status: error\n"), "c")  # old cloud-init exits 0
