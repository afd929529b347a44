"""The atomic writer: many files with one flush, all or nothing, exact modes; WireGuard keys made
in bulk stay random, private and paired with their public keys."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpcstack.output.atomic import write_all, write_atomic
from hpcstack.output.secrets import _ensure_wireguard_keys, wireguard_public


@pytest.fixture
def strict_umask() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def test_modes_are_exact_whatever_the_umask(tmp_path: Path, strict_umask: None) -> None:
    files = [(tmp_path / f"f{mode:o}", b"x", mode) for mode in (0o644, 0o755, 0o600, 0o440, 0o400)]
    assert write_all(files) == [True] * len(files)
    for path, _, mode in files:
        assert stat.S_IMODE(path.stat().st_mode) == mode, path
    write_atomic(tmp_path / "one", b"y", 0o644)
    assert stat.S_IMODE((tmp_path / "one").stat().st_mode) == 0o644


def test_nothing_lands_unless_every_file_was_staged(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file where a directory must go")
    files = [
        (tmp_path / "a" / "first", b"1", 0o644),
        (tmp_path / "blocked" / "second", b"2", 0o644),
        (tmp_path / "a" / "third", b"3", 0o644),
    ]
    with pytest.raises(OSError):
        write_all(files)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["blocked"]


def test_exclusive_keeps_what_is_there(tmp_path: Path) -> None:
    (tmp_path / "kept").write_bytes(b"old")
    written = write_all(
        [(tmp_path / "kept", b"new", 0o600), (tmp_path / "made", b"new", 0o600)], exclusive=True
    )
    assert written == [False, True]
    assert (tmp_path / "kept").read_bytes() == b"old"
    assert (tmp_path / "made").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept", "made"]  # no staged file left


def test_wireguard_keys_in_bulk(tmp_path: Path) -> None:
    peers = ["hub"] + [f"n{i}" for i in range(40)]
    made = _ensure_wireguard_keys(tmp_path, peers)
    assert [s.status for s in made] == ["created"] * len(peers)
    keys = {p: (tmp_path / "wireguard" / f"{p}.key").read_text() for p in peers}
    assert len(set(keys.values())) == len(peers)  # random per peer
    for peer, key in keys.items():
        path = tmp_path / "wireguard" / f"{peer}.key"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        pub = (tmp_path / "wireguard" / "pub" / f"{peer}.pub").read_text()
        assert pub == wireguard_public(key) + "\n"
    # Kept on the next run; a stale public key is put back in step with its private key.
    (tmp_path / "wireguard" / "pub" / "n3.pub").write_text("stale\n")
    again = _ensure_wireguard_keys(tmp_path, [*peers, "n40"])
    assert [s.status for s in again] == ["kept"] * len(peers) + ["created"]
    assert {p: (tmp_path / "wireguard" / f"{p}.key").read_text() for p in peers} == keys
    assert (tmp_path / "wireguard" / "pub" / "n3.pub").read_text() == wireguard_public(
        keys["n3"]
    ) + "\n"
