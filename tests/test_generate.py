"""The generator: determinism, goldens, meaning of the output, atomic writes, secrets."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hpcstack.cli.main import cli
from hpcstack.output.state import MANIFEST

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def generate(config: Path, out: Path, *extra: str) -> str:
    result = CliRunner().invoke(cli, ["generate", "-c", str(config), "-o", str(out), *extra])
    assert result.exit_code == 0, result.output
    return result.output


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "secrets" not in p.relative_to(root).parts
    }


def slurm_conf(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def test_same_definition_gives_identical_trees(repo: Path, tmp_path: Path) -> None:
    generate(repo / "stack.yaml", tmp_path / "a")
    generate(repo / "stack.yaml", tmp_path / "b")
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    # and the secrets differ: each cluster gets its own
    assert (tmp_path / "a/secrets/munge.key").read_bytes() != (
        tmp_path / "b/secrets/munge.key"
    ).read_bytes()


def test_second_run_reports_unchanged(repo: Path, tmp_path: Path) -> None:
    generate(repo / "stack.yaml", tmp_path)
    out = generate(repo / "stack.yaml", tmp_path)
    assert "created" not in out.replace("(secret)", "")
    assert "unchanged compose/local.yml" in out
    assert "next: " in out


def test_committed_default_output_is_current(repo: Path, tmp_path: Path) -> None:
    """The repo root holds the output for stack.yaml (what CI's check-generated also checks)."""
    generate(repo / "stack.yaml", tmp_path)
    fresh = tree(tmp_path)
    stale = [p for p, data in fresh.items() if (repo / p).read_bytes() != data]
    assert not stale, f"run `make generate` and commit: {stale}"


def rendered(root: Path) -> dict[str, bytes]:
    """The files a definition shapes: everything but the scripts copied verbatim into images/
    (those are the same for every definition and covered by the committed default output)."""
    return {
        p: data
        for p, data in tree(root).items()
        if not p.startswith("images/") or p.endswith("/Dockerfile")
    }


@pytest.mark.parametrize("name", ["three-sites"])
def test_golden(name: str, defs: Path, tmp_path: Path) -> None:
    generate(defs / f"{name}.yaml", tmp_path)
    golden = GOLDEN / name
    if UPDATE:
        shutil.rmtree(golden, ignore_errors=True)
        for rel, data in rendered(tmp_path).items():
            (golden / rel).parent.mkdir(parents=True, exist_ok=True)
            (golden / rel).write_bytes(data)
    assert rendered(tmp_path) == tree(golden), "UPDATE_GOLDEN=1 pytest tests/test_generate.py"


def test_dry_run_writes_nothing(repo: Path, tmp_path: Path) -> None:
    out = generate(repo / "stack.yaml", tmp_path / "d", "--dry-run")
    assert "would be   created compose/cloud.yml" in out
    assert not (tmp_path / "d").exists()


def test_edited_file_is_not_overwritten(repo: Path, tmp_path: Path) -> None:
    generate(repo / "stack.yaml", tmp_path)
    conf = tmp_path / "slurm/slurm.conf"
    conf.write_text(conf.read_text() + "# my tuning\n")
    before = tree(tmp_path)
    result = CliRunner().invoke(
        cli, ["generate", "-o", str(tmp_path), "-c", str(repo / "stack.yaml")]
    )
    assert result.exit_code == 1
    assert "slurm/slurm.conf" in result.output and "--force" in result.output
    assert tree(tmp_path) == before  # nothing written, the edit kept
    generate(repo / "stack.yaml", tmp_path, "--force")
    assert "# my tuning" not in conf.read_text()


def test_failed_run_leaves_the_directory_as_it_was(repo: Path, defs: Path, tmp_path: Path) -> None:
    generate(repo / "stack.yaml", tmp_path)
    before = tree(tmp_path)
    result = CliRunner().invoke(
        cli, ["generate", "-c", str(defs / "bad-duplicate-node.yaml"), "-o", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert tree(tmp_path) == before


def test_removed_site_files_are_removed(repo: Path, defs: Path, tmp_path: Path) -> None:
    generate(defs / "three-sites.yaml", tmp_path)
    assert (tmp_path / "compose/teaching.yml").exists()
    text = (defs / "three-sites.yaml").read_text()
    smaller = tmp_path / "two.yaml"
    smaller.write_text(text.split("  - name: teaching")[0] + text[text.index("aws:\n  region") :])
    out = generate(smaller, tmp_path)
    # each file, or one line per directory when the listing is long
    assert "removed compose/teaching.yml" in out or "removed 1 file(s) in compose/" in out
    assert not (tmp_path / "compose/teaching.yml").exists()


def test_secrets_are_private_and_kept(repo: Path, tmp_path: Path) -> None:
    generate(repo / "stack.yaml", tmp_path)
    sec = tmp_path / "secrets"
    assert stat.S_IMODE(sec.stat().st_mode) == 0o700
    key = sec / "munge.key"
    assert len(key.read_bytes()) == 1024
    assert stat.S_IMODE(key.stat().st_mode) == 0o400
    for name in ("db_password", "wireguard/hub.key", "wireguard/node1.key"):
        assert stat.S_IMODE((sec / name).stat().st_mode) == 0o600, name
    kept = {p: p.read_bytes() for p in sec.rglob("*") if p.is_file()}
    generate(repo / "stack.yaml", tmp_path)
    assert {p: p.read_bytes() for p in sec.rglob("*") if p.is_file()} == kept


def test_no_secret_in_generated_files(repo: Path, tmp_path: Path) -> None:
    generate(repo / "stack.yaml", tmp_path)
    private = [
        p.read_bytes().strip()
        for p in (tmp_path / "secrets").rglob("*")
        if p.is_file() and "pub" not in p.parts
    ]
    for path, data in tree(tmp_path).items():
        for s in private:
            assert s not in data, f"a secret appears in {path}"
    assert len(private) >= 4


def test_slurm_conf_meaning(repo: Path, tmp_path: Path) -> None:
    generate(repo / "stack.yaml", tmp_path)
    conf = slurm_conf(tmp_path / "slurm/slurm.conf")
    assert conf["SlurmctldParameters"] == ["enable_configless"]
    assert conf["SlurmctldHost"] == ["slurmctld(172.28.0.12)"]
    assert conf["SelectType"] == ["select/cons_tres"]
    assert conf["AccountingStorageType"] == ["accounting_storage/slurmdbd"]
    assert conf["NodeSet"] == ["ns_local Feature=site_local"]
    assert "all Nodes=ALL Default=YES MaxTime=INFINITE State=UP" in conf["PartitionName"]
    assert "NodeName" not in conf  # dynamic nodes register themselves
    cgroup = slurm_conf(tmp_path / "slurm/cgroup.conf")
    assert cgroup["CgroupPlugin"] == ["disabled"]
    dbd = slurm_conf(tmp_path / "slurm/slurmdbd.conf")
    assert "StoragePass" not in dbd and dbd["StorageHost"] == ["db"]


def test_compose_meaning(repo: Path, tmp_path: Path) -> None:
    generate(repo / "stack.yaml", tmp_path)
    cloud = yaml.safe_load((tmp_path / "compose/cloud.yml").read_text())
    local = yaml.safe_load((tmp_path / "compose/local.yml").read_text())
    assert "version" not in cloud and cloud["name"] == "hpcstack-cloud"
    svc = cloud["services"]
    assert svc["slurmdbd"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert svc["slurmctld"]["depends_on"]["slurmdbd"]["condition"] == "service_healthy"
    assert "slurmctld-state:/var/spool/slurmctld" in svc["slurmctld"]["volumes"]
    assert "db-data:/var/lib/mariadb" in svc["db"]["volumes"]
    # the one published port of the Slurm side is the tunnel's UDP port
    published = [p for s in svc.values() for p in s.get("ports", []) if "127.0.0.1" not in p]
    assert published == ["51820:51820/udp"]
    for doc in (cloud, local):
        for name, s in doc["services"].items():
            assert "privileged" not in s, name
            assert "healthcheck" in s, name
            assert s["restart"] == "unless-stopped", name
            for key in s.get("environment") or {}:
                # secrets only by file (compose secrets), never by value
                assert "PASSWORD" not in key.upper() or key.endswith("__FILE"), (name, key)
    node = local["services"]["node1"]
    assert node["deploy"]["resources"]["limits"] == {"cpus": "2", "memory": "1024M"}
    assert "CPUs=2 RealMemory=1024 Feature=site_local,cpu" in node["command"]
    assert node["networks"]["site"]["ipv4_address"] == "172.28.1.20"
    # the sites are on separate networks
    assert cloud["networks"]["site"]["name"] != local["networks"]["site"]["name"]


def test_gpu_node_compose_and_gres_agree(defs: Path, tmp_path: Path) -> None:
    generate(defs / "three-sites.yaml", tmp_path)
    lab = yaml.safe_load((tmp_path / "compose/lab.yml").read_text())
    teaching = yaml.safe_load((tmp_path / "compose/teaching.yml").read_text())
    gres = (tmp_path / "slurm/gres.conf").read_text()
    assert "NodeName=gpu1 Name=gpu Type=a100 File=/dev/nvidia[0-1]" in gres
    assert "NodeName=gpu2 Name=gpu Type=rtx4090 File=/dev/nvidia[2-3]" in gres
    for node, ids in (("gpu1", ["0", "1"]), ("gpu2", ["2", "3"])):
        dev = lab["services"][node]["deploy"]["resources"]["reservations"]["devices"][0]
        assert dev["driver"] == "nvidia" and dev["device_ids"] == ids
        assert set(dev["capabilities"]) >= {"gpu", "compute", "utility"}
    assert "Gres=gpu:a100:2" in lab["services"]["gpu1"]["command"][-1]
    assert "devices" not in teaching["services"]["pc1"] or not any(
        "nvidia" in d for d in teaching["services"]["pc1"]["devices"]
    )


@pytest.mark.docker
def test_compose_files_pass_docker_compose_config(repo: Path, defs: Path, tmp_path: Path) -> None:
    for config in (repo / "stack.yaml", defs / "three-sites.yaml"):
        out = tmp_path / config.stem
        generate(config, out)
        for f in sorted((out / "compose").glob("*.yml")):
            r = subprocess.run(
                ["docker", "compose", "-f", str(f), "config", "-q"], capture_output=True, text=True
            )
            assert r.returncode == 0, f"{f}: {r.stderr}"


def test_manifest_lists_every_generated_file(repo: Path, tmp_path: Path) -> None:
    generate(repo / "stack.yaml", tmp_path)
    import json

    files = json.loads((tmp_path / MANIFEST).read_text())["files"]
    on_disk = {p for p in tree(tmp_path) if p != MANIFEST}
    assert set(files) == on_disk
