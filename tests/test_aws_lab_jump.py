"""The lab members' way in on AWS, against a real OpenSSH: the bastion's forward-only account.

The bastion's cloud-init is rendered by `terraform console` from the very templates instances.tf
uses (with the test's controller address and a lab member's key); its account, its Match block
and its keys file are installed in a bastion container exactly as cloud-init writes them. A
second sshd on an internal network stands in for the login service on the controller. A member
may open a forward to the login service and nothing else: no other destination, no shell, no
command; a key that is not a lab member's is refused.
"""

from __future__ import annotations

import io
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import paramiko
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from hcl_module import _files, _forward_rules, _lab_jump_sshd, _templatefile
from hpcstack.contract import LAB_JUMP_USER
from test_deploy_ssh import IMAGE, _build_image, _ip, _wait_listening, docker

pytestmark = pytest.mark.docker

KEYS_FILE = "/etc/ssh/hpcstack-lab/authorized_keys"
MATCH_FILE = "/etc/ssh/sshd_config.d/50-hpcstack-lab-jump.conf"


def _key() -> tuple[paramiko.PKey, str]:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()).decode()
    pub = key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    return paramiko.Ed25519Key.from_private_key(io.StringIO(pem)), pub


@dataclass(frozen=True)
class Jump:
    bastion_port: int
    login_ip: str
    member: paramiko.PKey
    stranger: paramiko.PKey


@pytest.fixture(scope="module")
def jump(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jump]:
    tmp = tmp_path_factory.mktemp("lab-jump")
    _build_image(tmp)
    member, member_pub = _key()
    stranger, stranger_pub = _key()
    suffix = uuid.uuid4().hex[:8]
    net, bastion, login = (f"hpcs-aws-{x}-{suffix}" for x in ("jnet", "jbastion", "jlogin"))
    docker("network", "create", "--internal", net)
    try:
        # The login service's stand-in: the member's key lets them in there (as `admin`).
        docker("run", "-d", "--name", login, "--network", net, "-e",
               f"AUTHORIZED_KEY={member_pub}", IMAGE)  # fmt: skip
        login_ip = _ip(login, net)
        values = {
            "tunnel_forward_rules": _forward_rules(tmp, "udp", 51820),
            "lab_jump_sshd": _lab_jump_sshd(tmp, login_ip, 22),
            "lab_jump_user": LAB_JUMP_USER,
            "lab_jump_keys_file": KEYS_FILE,
            "lab_ssh_keys": [" ".join(member_pub.split()[:2]) + " alice"],
        }
        doc = yaml.safe_load(_templatefile("bastion-cloud-init.yaml.tftpl", values, tmp))
        files = _files(doc)
        (tmp / "keys").write_text(files[KEYS_FILE])
        (tmp / "match.conf").write_text(files[MATCH_FILE])
        useradd = next(cmd for cmd in doc["runcmd"] if cmd[0] == "useradd")
        # The bastion: its admin has another key; cloud-init's account and files, then sshd.
        docker(
            "run", "-d", "--name", bastion, "-p", "127.0.0.1::22",
            "-e", f"AUTHORIZED_KEY={stranger_pub}",
            "-v", f"{tmp / 'keys'}:{KEYS_FILE}:ro", "-v", f"{tmp / 'match.conf'}:{MATCH_FILE}:ro",
            "--entrypoint", "sh", IMAGE, "-c",
            # `sshd -t`: the rendered Match block must be a valid sshd configuration
            f"{' '.join(useradd)} && ssh-keygen -A >/dev/null && sshd -t "
            "&& exec /usr/local/bin/entrypoint.sh",
        )  # fmt: skip
        docker("network", "connect", net, bastion)
        try:
            _wait_listening(bastion)
        except AssertionError:
            logs = subprocess.run(["docker", "logs", bastion], capture_output=True, text=True)
            raise AssertionError(f"the bastion's sshd did not start:\n{logs.stderr}") from None
        _wait_listening(login)
        port = int(docker("port", bastion, "22/tcp").splitlines()[0].rsplit(":", 1)[1])
        yield Jump(port, login_ip, member, stranger)
    finally:
        docker("rm", "-f", bastion, login, check=False)
        docker("network", "rm", net, check=False)


def _transport(j: Jump, key: paramiko.PKey) -> paramiko.Transport:
    t = paramiko.Transport(("127.0.0.1", j.bastion_port))
    t.connect(username=LAB_JUMP_USER, pkey=key)  # the test pins nothing: it tests the bastion
    return t


def test_a_member_reaches_the_login_service_through_the_bastion(jump: Jump) -> None:
    t = _transport(jump, jump.member)
    try:
        channel = t.open_channel("direct-tcpip", (jump.login_ip, 22), ("127.0.0.1", 0))
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(jump.login_ip, username="admin", pkey=jump.member, sock=channel,
                       allow_agent=False, look_for_keys=False, timeout=10)  # fmt: skip
        _, out, _ = client.exec_command("id -un", timeout=20)
        assert out.read().decode().strip() == "admin"
        client.close()
    finally:
        t.close()


def test_no_other_destination(jump: Jump) -> None:
    t = _transport(jump, jump.member)
    try:
        for target in (("127.0.0.1", 22), (jump.login_ip, 2222)):
            with pytest.raises(paramiko.ChannelException) as refused:
                t.open_channel("direct-tcpip", target, ("127.0.0.1", 0))
            assert refused.value.code == paramiko.common.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
    finally:
        t.close()


def test_no_shell_and_no_command_on_the_bastion(jump: Jump) -> None:
    t = _transport(jump, jump.member)
    try:
        session = t.open_session()
        session.exec_command("id")
        output = session.makefile("rb").read() + session.makefile_stderr("rb").read()
        assert session.recv_exit_status() != 0
        assert b"uid=" not in output, output
    finally:
        t.close()


def test_a_key_that_is_not_a_members_is_refused(jump: Jump) -> None:
    with pytest.raises(paramiko.AuthenticationException):
        _transport(jump, jump.stranger)
