"""A kept secret that is damaged (truncated, edited, the wrong file) stops `generate` with its
path and what to do, exit 1, before anything is written; the secret itself is never replaced."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hpcstack.cli.main import cli


def run(config: Path, out: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["generate", "-c", str(config), "-o", str(out)])
    return result.exit_code, result.output


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("definition", "rel", "content", "said"),
    [
        ("stack.yaml", "secrets/wireguard/node1.key", b"garbage\n", "WireGuard private key"),
        ("stack.yaml", "secrets/wireguard/hub.key", b"c2hvcnQ=\n", "WireGuard private key"),
        ("stack.yaml", "secrets/munge.key", b"", "at least 32 bytes"),
        ("stack.yaml", "secrets/munge.key", b"x" * 31, "at least 32 bytes"),
        ("stack.yaml", "secrets/db_password", b"", "0 bytes"),
        ("stack.yaml", "secrets/jwt_hs256.key", b"", "0 bytes"),
        ("stack.yaml", "secrets/users/login_host_ed25519_key", b"no key", "OpenSSH private key"),
        ("stack.yaml", "secrets/users/hpc.key", b"\xff\xfe", "OpenSSH private key"),
        ("ssh-mode", "secrets/ssh/host_ed25519_key", b"-----BEGIN", "OpenSSH private key"),
    ],
)
def test_a_damaged_secret_stops_generate_before_any_write(
    repo: Path, defs: Path, tmp_path: Path, definition: str, rel: str, content: bytes, said: str
) -> None:
    config = repo / "stack.yaml" if definition == "stack.yaml" else defs / f"{definition}.yaml"
    out = tmp_path / "out"
    assert run(config, out)[0] == 0
    secret = out / rel
    secret.chmod(0o600)
    secret.write_bytes(content)
    # a generated file gone: a run that went on would write it again
    (out / "slurm" / "slurm.conf").unlink()
    before = files(out)
    code, output = run(config, out)
    assert code == 1, output
    assert str(secret) in output and said in output, output
    assert "Traceback" not in output
    assert files(out) == before  # nothing written, the damaged secret kept as it was


def test_a_workstations_damaged_imported_key_is_named(repo: Path, tmp_path: Path) -> None:
    """On a workstation (secrets imported for one site) a damaged node key is named too."""
    controller, station = tmp_path / "controller", tmp_path / "station"
    assert run(repo / "stack.yaml", controller)[0] == 0
    tar = tmp_path / "local.tar"
    export = ["secrets", "export", "--site", "local", "-o", str(tar), "-d", str(controller)]
    result = CliRunner().invoke(cli, export)
    assert result.exit_code == 0, result.output
    station.mkdir()
    result = CliRunner().invoke(cli, ["secrets", "import", str(tar), "-d", str(station)])
    assert result.exit_code == 0, result.output
    key = station / "secrets" / "wireguard" / "node2.key"
    key.chmod(0o600)
    key.write_text("not base64 at all!\n")
    code, output = run(repo / "stack.yaml", station)
    assert code == 1 and str(key) in output and "Traceback" not in output, output
