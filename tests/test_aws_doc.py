"""docs/aws.md, followed command by command: every `sh` block runs, in order, and must succeed.

AWS is a moto server on loopback (boto3 honours AWS_ENDPOINT_URL), seeded with what
`terraform apply` makes (tagged instances and security groups, the KMS alias). Marks in the page
(one or more on the lines right above a fence): `<!-- doc-check: on HOST -->` runs that block
and the later ones in HOST's own directory (the
laptop is `laptop`; another host starts with the laptop's stack.yaml, as a clone would). A block
marked `<!-- doc-check: skip: REASON -->` is not run (it calls AWS or Terraform itself, or needs
the real instances); a ```yaml block marked `<!-- doc-check: merge stack.yaml -->` is merged
into stack.yaml, as the reader edits it. The home directory is a scratch one.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

pytestmark = pytest.mark.aws

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "aws.md"
REGION = "eu-west-1"
MARK = re.compile(
    r"^<!-- doc-check: (skip: (?P<reason>.+)|merge (?P<target>\S+)|on (?P<host>\S+)) -->$"
)


@dataclass(frozen=True)
class Block:
    line: int
    lang: str
    text: str
    skip: str | None  # the reason, when marked skip
    merge: str | None  # the file a yaml block is merged into
    host: str | None  # from this block on, run on this host (a directory of its own)


def blocks(text: str) -> list[Block]:
    out: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)$", lines[i])
        if not fence:
            i += 1
            continue
        marks: dict[str, str] = {}  # the marks on the lines right above the fence
        j = i - 1
        while j >= 0 and (mark := MARK.match(lines[j])):
            marks.update({k: v for k, v in mark.groupdict().items() if v is not None})
            j -= 1
        start = i
        i += 1
        body = []
        while lines[i] != "```":
            body.append(lines[i])
            i += 1
        out.append(
            Block(
                start + 1,
                fence.group(1),
                "\n".join(body) + "\n",
                marks.get("reason"),
                marks.get("target"),
                marks.get("host"),
            )
        )
        i += 1
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError("moto server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def seed(endpoint: str) -> None:
    """What `terraform apply` makes, as far as the hpcstack aws commands look."""

    def client(service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24")["Subnet"]["SubnetId"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    groups = {}
    for role in ("bastion", "bastion-allow-ip", "controller"):
        gid = ec2.create_security_group(GroupName=f"hpcstack-{role}", Description=role, VpcId=vpc)
        groups[role] = gid["GroupId"]
        tags = [{"Key": "hpcstack:cluster", "Value": "hpcstack"}]
        ec2.create_tags(
            Resources=[groups[role]], Tags=[*tags, {"Key": "hpcstack:role", "Value": role}]
        )
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    def tagged(role: str) -> list[dict[str, Any]]:
        return [
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": "hpcstack:cluster", "Value": "hpcstack"},
                    {"Key": "hpcstack:role", "Value": role},
                ],
            }
        ]

    nic = {
        "DeviceIndex": 0,
        "SubnetId": public,
        "AssociatePublicIpAddress": True,
        "Groups": [groups["bastion"], groups["bastion-allow-ip"]],
    }
    ec2.run_instances(
        ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.micro",
        NetworkInterfaces=[nic], TagSpecifications=tagged("bastion"),
    )  # fmt: skip
    ec2.run_instances(
        ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.medium", SubnetId=private,
        PrivateIpAddress="10.0.1.10", SecurityGroupIds=[groups["controller"]],
        TagSpecifications=tagged("controller"),
    )  # fmt: skip
    kms = client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/hpcstack-hpcstack-secrets", TargetKeyId=key)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def _ssh_wrapper(bin_dir: Path) -> None:
    # OpenSSH takes `~` from the passwd entry, not $HOME: point it at the scratch home's config.
    real = shutil.which("ssh")
    assert real, "the OpenSSH client is needed to check the doc's ssh config step"
    script = bin_dir / "ssh"
    script.write_text(
        "#!/bin/sh\n"
        'cfg="$HOME/.ssh/config"\n'
        f'sed "s#^Include config.d/#Include $HOME/.ssh/config.d/#" "$cfg" > "$cfg.abs"\n'
        f'exec {real} -F "$cfg.abs" "$@"\n'
    )
    script.chmod(0o755)


def test_every_mark_has_a_reason_and_the_doc_has_runnable_steps() -> None:
    found = blocks(DOC.read_text())
    for b in found:
        if b.skip is not None:
            assert len(b.skip) > 15, f"docs/aws.md:{b.line}: say why the block is skipped"
    runnable = [b for b in found if b.lang == "sh" and b.skip is None]
    assert len(runnable) >= 8
    assert all(b.lang == "yaml" for b in found if b.merge)


def test_the_walk_through_runs(moto_server: str, tmp_path: Path) -> None:
    seed(moto_server)
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "config").write_text(f"[profile hpc]\nregion = {REGION}\n")
    (home / ".aws" / "credentials").write_text(
        "[hpc]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _ssh_wrapper(bin_dir)
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    shutil.copy(REPO / "stack.yaml", laptop / "stack.yaml")
    lab = laptop
    venv_bin = Path(sys.executable).parent
    env = {
        "HOME": str(home),
        "PATH": f"{bin_dir}:{venv_bin}:{os.environ['PATH']}",
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_EC2_METADATA_DISABLED": "true",
        "LANG": "C.UTF-8",
    }
    ran = 0
    for block in blocks(DOC.read_text()):
        if block.host:
            lab = tmp_path / block.host
            if not lab.exists():
                lab.mkdir()
                shutil.copy(laptop / "stack.yaml", lab / "stack.yaml")
        if block.skip is not None:
            continue
        if block.merge:
            target = lab / block.merge
            data = _merge(yaml.safe_load(target.read_text()), yaml.safe_load(block.text))
            target.write_text(yaml.safe_dump(data, sort_keys=False))
            continue
        if block.lang != "sh":
            continue
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block.text],
            cwd=lab,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, (
            f"docs/aws.md:{block.line}: this step failed (exit {result.returncode}):\n"
            f"{block.text}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
        ran += 1
    assert ran >= 8
    # What the walk-through should have left behind.
    config = (home / ".ssh" / "config").read_text()
    assert config.splitlines()[0] == "Include config.d/hpcstack"
    assert (laptop / "terraform" / "aws" / "policies" / "local.json").is_file()
    gpu = tmp_path / "gpu-host" / "secrets"
    for rel in ("munge.key", "wireguard/node1.key", "wireguard/pub/hub.pub"):
        assert (gpu / rel).read_bytes() == (laptop / "secrets" / rel).read_bytes(), rel
