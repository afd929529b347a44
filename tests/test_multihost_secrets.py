"""A workstation's secrets (issue 9): exactly its share leaves the controller host, generate
there never makes or replaces one, and a regenerate never silently re-addresses nodes."""

from __future__ import annotations

import shutil
import stat
import tarfile
from pathlib import Path

import pytest
from tests.multihost.stack import definition

from hpcstack.errors import OutputError
from hpcstack.operate.generate import generate
from hpcstack.output.site_secrets import export_site, import_site


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(params=["wireguard", "ssh"])
def controller(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    d = tmp_path / "controller"
    d.mkdir()
    (d / "stack.yaml").write_text(definition(request.param))
    generate(d / "stack.yaml", d)
    return d, request.param


def test_export_holds_only_the_sites_share(controller: tuple[Path, str], tmp_path: Path) -> None:
    d, mode = controller
    archive = tmp_path / "lab1-secrets.tar"
    export_site(d, _plan(d), "lab1", archive)
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
    if mode == "wireguard":
        expected = [
            "imported-site", "munge.key", "wireguard/a1.key", "wireguard/a2.key",
            "wireguard/pub/a1.pub", "wireguard/pub/a2.pub", "wireguard/pub/hub.pub",
        ]  # fmt: skip
    else:
        expected = [
            "imported-site", "munge.key", "ssh/lab1.key", "ssh/pub/known_hosts",
            "ssh/pub/lab1.pub",
        ]  # fmt: skip
    assert names == expected
    for cluster_wide in ("db_password", "hub.key", "host_ed25519_key", "/b1.", "lab2"):
        assert not any(cluster_wide in n for n in names)


def test_controller_site_is_never_exported(controller: tuple[Path, str], tmp_path: Path) -> None:
    d, _ = controller
    with pytest.raises(OutputError, match="controller's own secrets never leave"):
        export_site(d, _plan(d), "cloud", tmp_path / "x.tar")


def test_workstation_order(controller: tuple[Path, str], tmp_path: Path) -> None:
    d, _ = controller
    ws = tmp_path / "ws1"
    ws.mkdir()
    (ws / "stack.yaml").write_text((d / "stack.yaml").read_text())
    # Before the import: generate --site refuses, says where the secrets come from, writes nothing.
    with pytest.raises(OutputError, match="hpcstack secrets export --site lab1"):
        generate(ws / "stack.yaml", ws, site="lab1")
    assert sorted(p.name for p in ws.iterdir()) == ["stack.yaml"]
    archive = tmp_path / "lab1-secrets.tar"
    export_site(d, _plan(d), "lab1", archive)
    site, _files = import_site(ws, archive)
    assert site == "lab1"
    before = _tree(ws / "secrets")
    # generate with or without --site: no secret made or replaced (the import marks the host).
    generate(ws / "stack.yaml", ws, site="lab1")
    generate(ws / "stack.yaml", ws)
    assert _tree(ws / "secrets") == before
    assert (ws / "secrets" / "munge.key").read_bytes() == (d / "secrets" / "munge.key").read_bytes()
    assert not (ws / "secrets" / "db_password").exists()
    assert stat.S_IMODE((ws / "secrets").stat().st_mode) == 0o700
    assert stat.S_IMODE((ws / "secrets" / "munge.key").stat().st_mode) == 0o400
    # Importing again is harmless; a conflicting secret already here is refused, unchanged.
    import_site(ws, archive)
    (ws / "secrets" / "munge.key").chmod(0o600)
    (ws / "secrets" / "munge.key").write_bytes(b"other")
    with pytest.raises(OutputError, match=r"already holds different munge\.key"):
        import_site(ws, archive)
    assert (ws / "secrets" / "munge.key").read_bytes() == b"other"


def test_import_refuses_foreign_entries(tmp_path: Path) -> None:
    import io

    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in (("imported-site", b"lab1\n"), ("../../etc/passwd", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(OutputError, match="unexpected entries"):
        import_site(tmp_path / "ws", archive)
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize("mode", ["wireguard", "ssh"])
def test_reordering_sites_is_refused_without_force(tmp_path: Path, mode: str) -> None:
    d = tmp_path / "c"
    d.mkdir()
    (d / "stack.yaml").write_text(definition(mode))
    generate(d / "stack.yaml", d)
    (d / "stack.yaml").write_text(definition(mode, sites=("lab2", "lab1")))
    with pytest.raises(OutputError, match=r"re-addresses running nodes \(a1: .* -> ") as exc:
        generate(d / "stack.yaml", d)
    assert "b1:" in str(exc.value)
    dry = generate(d / "stack.yaml", d, dry_run=True)
    assert any("a1:" in w.message for w in dry.warnings)
    forced = generate(d / "stack.yaml", d, force=True)
    assert any("b2:" in w.message for w in forced.warnings)
    # Appending a site keeps every address: no refusal, no warning.
    e = tmp_path / "e"
    e.mkdir()
    (e / "stack.yaml").write_text(definition(mode, sites=("lab1",)))
    generate(e / "stack.yaml", e)
    (e / "stack.yaml").write_text(definition(mode, sites=("lab1", "lab2")))
    assert generate(e / "stack.yaml", e).warnings == []


def test_a_fresh_clone_may_change_addresses_before_its_first_up(tmp_path: Path) -> None:
    """The committed output carries .hpcstack/stack.json but no secrets/: nothing runs yet."""
    d = tmp_path / "c"
    d.mkdir()
    (d / "stack.yaml").write_text(definition("wireguard"))
    generate(d / "stack.yaml", d)
    shutil.rmtree(d / "secrets")  # what a clone of the repository looks like
    (d / "stack.yaml").write_text(definition("wireguard", sites=("lab2", "lab1")))
    assert generate(d / "stack.yaml", d).warnings == []


def _plan(d: Path):  # type: ignore[no-untyped-def]
    from hpcstack.output.state import load_generated

    return load_generated(d)


def test_readme_shows_the_steps_the_multihost_test_runs(repo: Path) -> None:
    from tests.multihost.steps import BUILD_STEPS, CLOUD_STEPS, EXPORT_STEP, WORKSTATION_STEPS

    readme = (repo / "README.md").read_text()
    section = readme.split("## Separate hosts (tested)")[1].split("\n## ")[0]
    blocks = [b.split("```", 1)[0].strip().splitlines() for b in section.split("```sh\n")[1:]]
    steps = [s.format(site="lab1") for s in [*CLOUD_STEPS, EXPORT_STEP, *WORKSTATION_STEPS]]
    assert blocks == [BUILD_STEPS, steps[:3], steps[3:]]
