"""`hpcstack deploy cloud` end to end through two real sshd containers: bastion and controller.

The bastion publishes SSH on 127.0.0.1 only; the controller sits on an internal Docker network
and accepts logins only from the bastion's address (standing in for its security group). Both
run Debian's OpenSSH with the hardening file cloud-init installs on AWS. The controller's
`docker` is a stub that records its argv: this tests the deploy path, not compose.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hpcstack.cli.main import cli
from hpcstack.operate.bundle import bundle_files
from hpcstack.operate.generate import generate
from hpcstack.output.state import load_generated
from hpcstack.run.ssh import Endpoint, Remote, SshAuthError, SshHostKeyError, SshSettings

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[1]
STACK = REPO / "stack.yaml"
FIXTURE = REPO / "tests" / "fixtures" / "sshd"
HARDENING = REPO / "terraform" / "aws" / "templates" / "sshd-hardening.conf"
IMAGE = "hpcs-aws-sshd:test"


def docker(*args: str, check: bool = True) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {result.stderr}")
    return result.stdout.strip()


@dataclass(frozen=True)
class Lab:
    key: Path
    public_key: str
    password: str
    known_hosts: Path
    bastion: Endpoint
    controller: Endpoint
    controller_name: str


def _build_image(tmp: Path) -> None:
    context = tmp / "sshd-context"
    shutil.copytree(FIXTURE, context)
    shutil.copy(HARDENING, context / "sshd-hardening.conf")
    apt = os.environ.get("HPCSTACK_APT_OPTIONS", "")
    docker("build", "-q", "-t", IMAGE, "--build-arg", f"APT_OPTIONS={apt}", str(context))


def _keypair(tmp: Path) -> tuple[Path, str]:
    private = Ed25519PrivateKey.generate()
    path = tmp / "id_ed25519"
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return path, public.decode()


def _wait_listening(container: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        # sshd -e logs to stderr, which `docker logs` replays on its own stderr.
        logs = subprocess.run(
            ["docker", "logs", container], capture_output=True, text=True, check=False
        )
        if "Server listening" in logs.stdout + logs.stderr:
            return
        time.sleep(0.3)
    raise AssertionError(f"sshd in {container} did not start")


def _host_keys(container: str) -> list[str]:
    text = docker("exec", container, "sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub")
    return [" ".join(line.split()[:2]) for line in text.splitlines() if line.strip()]


def _ip(container: str, network: str) -> str:
    fmt = '{{(index .NetworkSettings.Networks "' + network + '").IPAddress}}'
    return docker("inspect", "-f", fmt, container)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("deploy-ssh")
    _build_image(tmp)
    key, public = _keypair(tmp)
    password = secrets.token_urlsafe(16)
    suffix = uuid.uuid4().hex[:8]
    net = f"hpcs-aws-net-{suffix}"
    bastion = f"hpcs-aws-bastion-{suffix}"
    controller = f"hpcs-aws-controller-{suffix}"
    env = ["-e", f"AUTHORIZED_KEY={public}", "-e", f"LOGIN_PASSWORD={password}"]
    docker("network", "create", "--internal", net)
    try:
        docker("run", "-d", "--name", bastion, "-p", "127.0.0.1::22", *env, IMAGE)
        docker("network", "connect", net, bastion)
        bastion_ip = _ip(bastion, net)
        docker(
            "run", "-d", "--name", controller, "--network", net,
            *env, "-e", f"ALLOW_FROM={bastion_ip}", IMAGE,
        )  # fmt: skip
        controller_ip = _ip(controller, net)
        port = int(docker("port", bastion, "22/tcp").splitlines()[0].rsplit(":", 1)[1])
        _wait_listening(bastion)
        _wait_listening(controller)
        known_hosts = tmp / "known_hosts"
        lines = [f"[127.0.0.1]:{port} {k}" for k in _host_keys(bastion)]
        lines += [f"{controller_ip} {k}" for k in _host_keys(controller)]
        known_hosts.write_text("\n".join(lines) + "\n")
        yield Lab(
            key=key,
            public_key=public,
            password=password,
            known_hosts=known_hosts,
            bastion=Endpoint("127.0.0.1", port, "admin"),
            controller=Endpoint(controller_ip, 22, "admin"),
            controller_name=controller,
        )
    finally:
        docker("rm", "-f", bastion, controller, check=False)
        docker("network", "rm", net, check=False)


def make_tree(root: Path) -> Path:
    """A generated tree (the default stack.yaml), plus a stray secret no compose file uses."""
    generate(STACK, root)
    stray = root / "secrets" / "local-only.key"
    stray.write_text("not for the controller\n")
    stray.chmod(0o600)
    return root


def _deploy_args(lab: Lab, tree: Path) -> list[str]:
    return [
        "deploy", "cloud", "-d", str(tree),
        "--bastion", f"{lab.bastion.host}:{lab.bastion.port}",
        "--controller", lab.controller.host,
        "--identity", str(lab.key), "--known-hosts", str(lab.known_hosts),
    ]  # fmt: skip


def _deploy(lab: Lab, tree: Path) -> str:
    result = CliRunner().invoke(cli, _deploy_args(lab, tree))
    assert result.exit_code == 0, result.output
    return result.output


def _on_controller(lab: Lab, *argv: str) -> str:
    return docker("exec", lab.controller_name, *argv)


def test_deploy_copies_through_the_jump_host_and_starts_compose(lab: Lab, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "out")
    plan = load_generated(tree)
    total = len(bundle_files(plan, plan.controller, tree))
    output = _deploy(lab, tree)
    assert f"copied {total} of {total} files" in output
    for rel in ("compose/cloud.yml", "slurm/slurm.conf", "images/slurm/Dockerfile"):
        assert (
            _on_controller(lab, "cat", f"/opt/hpcstack/{rel}") == (tree / rel).read_text().strip()
        )
    # Secrets: only those the cloud compose file uses, with their modes, in a 0700 directory.
    ls = _on_controller(lab, "stat", "-c", "%a %U %n", "/opt/hpcstack/secrets",
                        "/opt/hpcstack/secrets/munge.key")  # fmt: skip
    assert ls.splitlines() == [
        "700 admin /opt/hpcstack/secrets",
        "400 admin /opt/hpcstack/secrets/munge.key",
    ]
    # A bind-mounted config directory: readable by the containers' non-root users.
    assert _on_controller(lab, "stat", "-c", "%a", "/opt/hpcstack/slurm") == "755"
    digest = _on_controller(lab, "sha256sum", "/opt/hpcstack/secrets/munge.key").split()[0]
    assert digest == hashlib.sha256((tree / "secrets" / "munge.key").read_bytes()).hexdigest()
    listing = _on_controller(lab, "find", "/opt/hpcstack/secrets", "-type", "f").split()
    names = {name.removeprefix("/opt/hpcstack/secrets/") for name in listing}
    assert "local-only.key" not in names  # no compose file uses it
    assert "wireguard/node1.key" not in names  # a local node's key: never the controller's
    assert {"munge.key", "db_password", "wireguard/hub.key"} <= names
    assert not _on_controller(lab, "sh", "-c", "ls /opt/hpcstack/compose/local.yml || true")
    calls = _on_controller(lab, "cat", "/tmp/docker-calls.log").splitlines()
    assert calls[-1] == "compose -f /opt/hpcstack/compose/cloud.yml up -d --wait"

    # Idempotent: nothing copied the second time, compose asked again (it is idempotent too).
    again = _deploy(lab, tree)
    assert f"copied 0 of {total} files" in again
    (tree / "slurm" / "slurm.conf").write_text("ClusterName=hpcstack\n# changed\n")
    assert f"copied 1 of {total} files" in _deploy(lab, tree)


def _fake_cloud_init(lab: Lab, status: str, code: int) -> None:
    """A `cloud-init` on the controller that reports `status` (the real one runs on AWS)."""
    script = f"#!/bin/sh\necho 'status: {status}'\nexit {code}\n"
    subprocess.run(
        ["docker", "exec", "-i", "-u", "root", lab.controller_name, "sh", "-c",
         "cat > /usr/local/bin/cloud-init && chmod 0755 /usr/local/bin/cloud-init"],
        input=script, text=True, check=True,
    )  # fmt: skip


def test_deploy_stops_when_cloud_init_failed(lab: Lab, tmp_path: Path) -> None:
    """The finding: deploy copied files before cloud-init finished and ignored its result."""
    tree = make_tree(tmp_path / "out")
    before = _on_controller(lab, "sh", "-c", "cat /tmp/docker-calls.log 2>/dev/null || true")
    try:
        _fake_cloud_init(lab, "error", 1)
        result = CliRunner().invoke(cli, _deploy_args(lab, tree))
        assert result.exit_code == 1
        assert "cloud-init failed" in result.output
        assert "/var/log/cloud-init-output.log" in result.output
        after = _on_controller(lab, "sh", "-c", "cat /tmp/docker-calls.log 2>/dev/null || true")
        assert after == before  # compose never ran
        _fake_cloud_init(lab, "done", 0)
        assert "copied" in _deploy(lab, tree)
    finally:
        docker("exec", "-u", "root", lab.controller_name, "rm", "-f", "/usr/local/bin/cloud-init")


def test_controller_refuses_direct_logins(lab: Lab) -> None:
    settings = SshSettings(lab.known_hosts, lab.key, timeout=10)
    # Straight from here (not through the bastion): the controller's stand-in SG says no.
    with pytest.raises(SshAuthError), Remote(lab.controller, settings):
        pass
    with Remote(lab.controller, settings, jump=lab.bastion) as remote:
        assert remote.run(["id", "-un"]).stdout.strip() == "admin"


def test_password_login_is_refused(lab: Lab) -> None:
    client = paramiko.SSHClient()
    client.load_host_keys(str(lab.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    with pytest.raises(paramiko.AuthenticationException):
        client.connect(
            lab.bastion.host,
            port=lab.bastion.port,
            username="admin",
            password=lab.password,  # the right password: refused all the same
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
    client.close()


def test_unknown_host_key_is_refused(lab: Lab, tmp_path: Path) -> None:
    only_bastion = tmp_path / "known_hosts"
    only_bastion.write_text(
        "".join(line + "\n" for line in lab.known_hosts.read_text().splitlines()
                if line.startswith("[127.0.0.1]"))
    )  # fmt: skip
    settings = SshSettings(only_bastion, lab.key, timeout=10)
    with (
        pytest.raises(SshHostKeyError, match="not in"),
        Remote(lab.controller, settings, jump=lab.bastion),
    ):
        pass


def test_changed_host_key_is_refused(lab: Lab, tmp_path: Path) -> None:
    other = paramiko.Ed25519Key(filename=str(lab.key))  # any key that is not the bastion's
    forged = tmp_path / "known_hosts"
    forged.write_text(f"[127.0.0.1]:{lab.bastion.port} ssh-ed25519 {other.get_base64()}\n")
    settings = SshSettings(forged, lab.key, timeout=10)
    with pytest.raises(SshHostKeyError, match="CHANGED"), Remote(lab.bastion, settings):
        pass


def test_bastion_listens_on_loopback_only(lab: Lab) -> None:
    bindings = docker("port", lab.controller_name.replace("-controller-", "-bastion-"))
    assert all(b.split("-> ")[1].startswith("127.0.0.1:") for b in bindings.splitlines())
    with socket.create_connection((lab.bastion.host, lab.bastion.port), timeout=5) as s:
        assert s.recv(64).startswith(b"SSH-2.0-OpenSSH")
