"""`users:`, `groups:` and `accounts:`: malformed definitions each exit 1 with line and hint."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import dsa, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hpcstack.cli.main import cli
from hpcstack.definition.checks_users import key_problem
from hpcstack.definition.load import load_stack


def _pub(key: object) -> str:
    return key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()  # type: ignore[attr-defined]


ED = _pub(ed25519.Ed25519PrivateKey.generate())
ED2 = _pub(ed25519.Ed25519PrivateKey.generate())
RSA_SHORT = _pub(rsa.generate_private_key(public_exponent=65537, key_size=1024))
DSA = _pub(dsa.generate_private_key(key_size=1024))

BASE = """cluster: {name: lab}
sites:
  - {name: cloud, role: cloud, subnet: 172.28.0.0/24}
  - name: local
    role: local
    subnet: 172.28.1.0/24
    nodes: [{prefix: node, count: 2, cpus: 2, memory_mb: 1024}]
accounts:
  - {name: physics, fairshare: 10}
  - {name: bio, fairshare: 5, max_cpus_per_user: 2}
"""
OK_USER = f"  - {{name: alice, uid: 2001, account: physics, ssh_keys: ['{ED}']}}\n"

# name -> (YAML appended to BASE; the line marked `#!` is where the problem is, words, hint)
BAD: dict[str, tuple[str, str, str]] = {
    "duplicate-name": (
        f"users:\n{OK_USER}  - {{name: alice, uid: 2002, account: bio}}  #!\n",
        "already defined at users[0]",
        "ssh_keys",
    ),
    "duplicate-uid": (
        f"users:\n{OK_USER}  - {{name: bob, uid: 2001, account: bio}}  #!\n",
        "uid 2001 is already used",
        "own uid",
    ),
    "system-uid": (
        "users:\n  - {name: bob, uid: 101, account: bio}  #!\n",
        "reserved for the image's system users",
        "lab ids are 1001-59999",
    ),
    "slurm-uid": (
        "users:\n  - {name: bob, uid: 64030, account: bio}  #!\n",
        "uid 64030 is reserved",
        "lab ids are",
    ),
    "demo-uid-other-name": (
        "users:\n  - {name: bob, uid: 1000, account: bio}  #!\n",
        "the image's 'hpc' user",
        "lab ids are",
    ),
    "demo-user-other-uid": (
        "users:\n  - {name: hpc, uid: 1001, account: bio}  #!\n",
        "'hpc' is the image's demo user",
        "uid: 1000",
    ),
    "system-name": (
        "users:\n  - {name: slurm, uid: 2005, account: bio}  #!\n",
        "system user of the slurm image",
        "another login name",
    ),
    "unknown-account": (
        "users:\n  - {name: bob, uid: 2005, account: physic}  #!\n",
        "no account named 'physic'",
        "did you mean 'physics'?",
    ),
    "key-not-base64": (
        "users:\n  - {name: bob, uid: 2005, account: bio,\n"
        "     ssh_keys: ['ssh-ed25519 AAAA****x']}  #!\n",
        "is not an OpenSSH public key line",
        "TYPE BASE64",
    ),
    "key-type-mismatch": (
        f"users:\n  - {{name: bob, uid: 2005, account: bio,\n"
        f"     ssh_keys: ['ssh-rsa {ED.split()[1]}']}}  #!\n",
        "says 'ssh-rsa' but its body is a 'ssh-ed25519' key",
        "ssh-keygen -t ed25519",
    ),
    "key-truncated": (
        f"users:\n  - {{name: bob, uid: 2005, ssh_keys: ['{ED[:60]}'], account: bio}}  #!\n",
        "this public key",
        "ssh-keygen -t ed25519",
    ),
    "key-rsa-short": (
        f"users:\n  - {{name: bob, uid: 2005, ssh_keys: ['{RSA_SHORT}'], account: bio}}  #!\n",
        "1024-bit RSA key",
        "ssh-keygen -t ed25519",
    ),
    "key-dsa": (
        f"users:\n  - {{name: bob, uid: 2005, ssh_keys: ['{DSA}'], account: bio}}  #!\n",
        "DSA key",
        "ssh-keygen -t ed25519",
    ),
    "key-shared": (
        f"users:\n{OK_USER}  - {{name: bob, uid: 2005, ssh_keys: ['{ED}'], account: bio}}  #!\n",
        "already 'alice''s",
        "their own key",
    ),
    "unknown-group": (
        "groups: [{name: gpu-users, gid: 3000}]\n"
        "users:\n  - {name: bob, uid: 2005, account: bio, groups: [gpu-user]}  #!\n",
        "no group named 'gpu-user'",
        "did you mean 'gpu-users'?",
    ),
    "group-gid-is-a-users-gid": (
        "groups:\n  - {name: team, gid: 2005}\n"
        "users:\n  - {name: bob, uid: 2005, account: bio}  #!\n",
        "primary group gid 2005 is already groups[0]",
        "another gid",
    ),
    "image-group": (
        "groups:\n  - {name: video, gid: 3000}  #!\n",
        "'video' is a group of the slurm image",
        "",
    ),
    "user-name-grammar": (
        "users:\n  - {name: Alice, uid: 2005, account: bio}  #!\n",
        "is not a lab user, group or account name",
        "lower-case letters",
    ),
    "unknown-user-key": (
        "users:\n  - {name: bob, uid: 2005, acount: bio}  #!\n",
        "unknown key 'acount'",
        "did you mean 'account'?",
    ),
}
# Cases that replace BASE's accounts: block (the problem sits inside it).
ACCOUNTS = {
    "root-account": (
        "accounts:\n  - {name: root}  #!\n",
        "Slurm's own top account",
        "choose another name",
    ),
    "duplicate-account": (
        "accounts:\n  - {name: bio}\n  - {name: bio}  #!\n",
        "account 'bio' is defined twice",
        "",
    ),
    "cpus-over-cluster": (
        "accounts:\n  - {name: bio, max_cpus_per_user: 64}  #!\n",
        "64 CPUs per user is more than the cluster's 4",
        "at most 4",
    ),
    "gpus-on-cpu-cluster": (
        "accounts:\n  - {name: bio, max_gpus_per_user: 2}  #!\n",
        "2 GPUs per user is more than the cluster's 0",
        "0 forbids GPUs",
    ),
    "fairshare-zero": (
        "accounts:\n  - {name: bio, fairshare: 0}  #!\n",
        "greater than or equal to 1",
        "",
    ),
    "login-address-not-ipv4": (
        "login:\n  address: 0.0.0.300  #!\n",
        "looks like an IPv4 address but is not one",
        "0.0.0.0 (every interface)",
    ),
    "login-address-a-name": (
        "login:\n  address: localhost  #!\n",
        "an IPv4 address",
        "127.0.0.1 (this host only)",
    ),
    "wall-zero": (
        "accounts:\n  - {name: bio, max_wall_minutes: 0}  #!\n",
        "greater than or equal to 1",
        "",
    ),
}


def _definition(name: str) -> str:
    if name in ACCOUNTS:
        head = BASE.split("accounts:")[0]
        users = "users:\n  - {name: bob, uid: 2005, account: bio}\n"
        return head + ACCOUNTS[name][0] + users
    return BASE + BAD[name][0]


CASES = sorted(set(BAD) | set(ACCOUNTS))


def _expected(name: str) -> tuple[str, str]:
    _, words, hint = ACCOUNTS[name] if name in ACCOUNTS else BAD[name]
    return words, hint


def test_enough_malformed_definitions() -> None:
    assert len(CASES) >= 20


@pytest.mark.parametrize("name", CASES)
def test_malformed_users_exit_1_with_line_and_hint(name: str, tmp_path: Path) -> None:
    text = _definition(name)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.endswith("#!"))
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["validate", "-c", str(path)])
    words, hint = _expected(name)
    assert result.exit_code == 1, result.output
    assert f"{path}:{line}:" in result.output, result.output
    assert words in result.output
    assert hint in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["generate", "-c", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert not (tmp_path / "out").exists()


def test_valid_users_and_accounts(tmp_path: Path) -> None:
    text = BASE + "groups: [{name: gpu-users, gid: 3000}]\nusers:\n" + OK_USER
    text += "  - {name: bob, uid: 2002, gid: 2002, groups: [gpu-users], account: bio,\n"
    text += f"     ssh_keys: ['{ED2} bob@laptop']}}\n"
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    stack = load_stack(path)
    assert [(u.name, u.uid, u.primary_gid, u.account) for u in stack.users] == [
        ("alice", 2001, 2001, "physics"),
        ("bob", 2002, 2002, "bio"),
    ]


def test_users_default_to_the_demo_user(repo: Path) -> None:
    text = BASE.split("accounts:")[0]
    path = repo / "stack.yaml"
    stack = load_stack(path)
    assert [u.name for u in stack.users] == ["hpc"]
    assert text  # the base parses too
    assert key_problem(ED) is None
    assert key_problem("ssh-ed25519") is not None
