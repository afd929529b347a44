"""Reverse-SSH mode (`tunnel.mode: ssh`) without Docker: the generated files and the keys."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path
from typing import Any

import paramiko
import pytest
import yaml

from hpcstack.definition.checks import ssh_node_ports_fit
from hpcstack.definition.model import Stack
from hpcstack.operate.generate import generate
from hpcstack.operate.observed import parse_ss_listeners
from hpcstack.output.secrets import ssh_public
from hpcstack.plan.topology import make_plan
from hpcstack.plan.tunnel import node_ports, peer_names


@pytest.fixture
def out(defs: Path, tmp_path: Path) -> Path:
    generate(defs / "ssh-mode.yaml", tmp_path)
    return tmp_path


def compose(out: Path, site: str) -> dict[str, Any]:
    return dict(yaml.safe_load((out / "compose" / f"{site}.yml").read_text()))


def conf_lines(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines() if not ln.startswith("#")]


def test_services_replace_wireguard(out: Path) -> None:
    cloud, local = compose(out, "cloud")["services"], compose(out, "local")["services"]
    assert "tunnel" not in cloud and "sshd" in cloud
    assert cloud["sshd"]["ports"] == ["12222:22"]
    assert cloud["sshd"]["networks"]["site"]["ipv4_address"] == "172.31.0.19"
    assert local["ssh-tunnel"]["networks"]["site"]["ipv4_address"] == "172.31.1.13"
    assert not (out / "wireguard").exists()
    assert not (out / "secrets" / "wireguard").exists()
    # No overlay routes anywhere: slurmctld is reached through the ssh-tunnel, not a hub.
    assert "environment" not in cloud["slurmctld"]
    for svc in local.values():
        assert "/dev/net/tun:/dev/net/tun" not in svc.get("devices", [])


def test_each_node_listens_on_its_own_port(out: Path) -> None:
    local = compose(out, "local")["services"]
    confs = {n: local[n]["command"][-1] for n in ("node1", "node2")}
    assert confs["node1"].endswith(" Port=17001")
    assert confs["node2"].endswith(" Port=17002")
    env = local["node1"]["environment"]["HPCSTACK_DNAT"].split()
    assert env == [
        "172.31.0.12:6817=172.31.1.13:6817",  # slurmctld -> the site's ssh-tunnel
        "172.31.0.19:17001=172.31.1.20:17001",  # site mates directly, not through the cloud
        "172.31.0.19:17002=172.31.1.21:17002",
    ]
    assert local["node1"]["depends_on"] == {"ssh-tunnel": {"condition": "service_healthy"}}


def test_ports_are_distinct_across_sites(defs: Path) -> None:
    doc = yaml.safe_load((defs / "ssh-mode.yaml").read_text())
    doc["sites"].append(
        {"name": "lab", "role": "local", "subnet": "172.31.2.0/24", "nodes": [{"name": "gpu1"}]}
    )
    ports = node_ports(make_plan(Stack.model_validate(doc)))
    assert ports == {"node1": 17001, "node2": 17002, "gpu1": 17003}


def test_sshd_allows_keys_only(out: Path) -> None:
    lines = conf_lines(out / "ssh" / "sshd_config")
    for setting in (
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin no",
        "PermitEmptyPasswords no",
        "AuthenticationMethods publickey",
        "AllowUsers tunnel",
        "PermitTTY no",
        "GatewayPorts clientspecified",
    ):
        assert setting in lines, setting
    keys = {ln.split()[0] for ln in lines if ln}
    assert len(keys) == len([ln for ln in lines if ln]), "a setting is given twice"


def test_authorized_keys_restrict_each_site(out: Path) -> None:
    (line,) = conf_lines(out / "ssh" / "authorized_keys")
    opts, key = line.rsplit(" ", 1)
    assert key == "@local"
    assert opts.split(",") == [
        "restrict",
        "port-forwarding",
        'command="/usr/sbin/nologin"',
        'permitopen="172.31.0.12:6817"',
        'permitlisten="0.0.0.0:17001"',
        'permitlisten="0.0.0.0:17002"',
    ]


def test_client_pins_the_host_key(out: Path) -> None:
    lines = conf_lines(out / "ssh" / "local.conf")
    for setting in (
        "StrictHostKeyChecking yes",
        "UserKnownHostsFile /etc/hpcstack/ssh-pub/known_hosts",
        "GlobalKnownHostsFile /dev/null",
        "HostKeyAlias hpcstack-sshd",
        "PasswordAuthentication no",
        "BatchMode yes",
        "ExitOnForwardFailure yes",
        "LocalForward 0.0.0.0:6817 172.31.0.12:6817",
        "RemoteForward 0.0.0.0:17001 172.31.1.20:17001",
        "RemoteForward 0.0.0.0:17002 172.31.1.21:17002",
        "Port 12222",
    ):
        assert setting in lines, setting
    assert not any(ln.startswith("ProxyJump") for ln in lines)
    host_key = (out / "secrets" / "ssh" / "host_ed25519_key").read_bytes()
    known = (out / "secrets" / "ssh" / "pub" / "known_hosts").read_text()
    assert known == f"hpcstack-sshd {ssh_public(host_key)}\n"


def test_jump_host_is_optional(defs: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load((defs / "ssh-mode.yaml").read_text())
    doc["tunnel"]["ssh_jump"] = "admin@bastion.example.org:22"
    (tmp_path / "stack.yaml").write_text(yaml.safe_dump(doc))
    generate(tmp_path / "stack.yaml", tmp_path / "out")
    lines = conf_lines(tmp_path / "out" / "ssh" / "local.conf")
    assert "ProxyJump admin@bastion.example.org:22" in lines
    assert (
        "UserKnownHostsFile /etc/hpcstack/ssh-pub/known_hosts "
        "/etc/hpcstack/ssh-pub/jump_known_hosts"
    ) in lines


def test_keys_are_private_usable_and_kept(defs: Path, out: Path) -> None:
    ssh = out / "secrets" / "ssh"
    for name in ("host_ed25519_key", "local.key"):
        assert stat.S_IMODE((ssh / name).stat().st_mode) == 0o600
        # OpenSSH's own format, readable by an independent implementation.
        key = paramiko.Ed25519Key.from_private_key_file(str(ssh / name))
        assert key.get_name() == "ssh-ed25519"
    assert stat.S_IMODE(ssh.stat().st_mode) == 0o700
    pub = (ssh / "pub" / "local.pub").read_text().split()
    client = paramiko.Ed25519Key.from_private_key_file(str(ssh / "local.key"))
    assert pub[:2] == [client.get_name(), client.get_base64()]
    before = {p.name: p.read_bytes() for p in ssh.iterdir() if p.is_file()}
    result = generate(defs / "ssh-mode.yaml", out)
    assert {p.name: p.read_bytes() for p in ssh.iterdir() if p.is_file()} == before
    assert {s.status for s in result.secrets} == {"kept"}


def test_no_key_material_in_generated_files(out: Path) -> None:
    secrets = [(out / "secrets" / "ssh" / n).read_text() for n in ("host_ed25519_key", "local.key")]
    bodies = [s.splitlines()[1] for s in secrets]  # a line of each key's base64 body
    for path in out.rglob("*"):
        if path.is_file() and "secrets" not in path.parts:
            text = path.read_text(errors="replace")
            assert "PRIVATE KEY" not in text, path
            assert not any(b in text for b in bodies), path


def test_wireguard_mode_has_no_ssh(repo: Path, tmp_path: Path) -> None:
    generate(repo / "stack.yaml", tmp_path)
    assert not (tmp_path / "ssh").exists()
    assert not (tmp_path / "secrets" / "ssh").exists()
    assert "sshd" not in compose(tmp_path, "cloud")["services"]
    assert "ssh-tunnel" not in compose(tmp_path, "local")["services"]


def test_ssh_mode_has_no_wireguard_peers(defs: Path) -> None:
    doc = yaml.safe_load((defs / "ssh-mode.yaml").read_text())
    assert peer_names(make_plan(Stack.model_validate(doc))) == []


def test_too_many_tunneled_nodes_for_the_port_range(defs: Path) -> None:
    doc = yaml.safe_load((defs / "ssh-mode.yaml").read_text())
    ok = Stack.model_validate(doc)
    assert list(ssh_node_ports_fit(ok)) == []
    doc["sites"] = doc["sites"][:1] + [
        {
            "name": f"s{i}",
            "role": "local",
            "subnet": f"10.{i}.0.0/16",
            "nodes": [{"prefix": "n", "count": 256}],
        }
        for i in range(190)
    ]
    (problem,) = ssh_node_ports_fit(Stack.model_validate(doc))
    assert problem.path == "tunnel.mode"
    assert "48640 nodes do not fit" in problem.message


def test_ssh_listeners_are_parsed() -> None:
    text = (
        "LISTEN 0      128       0.0.0.0:17001 0.0.0.0:*\n"
        "LISTEN 0      128          [::]:22       [::]:*\n"
        "LISTEN 0      4096   127.0.0.11:32949 0.0.0.0:*\n"
    )
    assert parse_ss_listeners(text) == {17001, 22, 32949}


@pytest.mark.docker
def test_compose_files_pass_docker_compose_config(out: Path) -> None:
    for f in sorted((out / "compose").glob("*.yml")):
        r = subprocess.run(
            ["docker", "compose", "-f", str(f), "config", "-q"], capture_output=True, text=True
        )
        assert r.returncode == 0, f"{f}: {r.stderr}"
