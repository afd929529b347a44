"""terraform/aws parsed once (python-hcl2) for the HCL tests, and templates rendered by
`terraform console` (it works offline: no providers needed)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

REPO = Path(__file__).resolve().parents[1]
MODULE = REPO / "terraform" / "aws"
SLURM_AND_SERVICE_PORTS = {3000, 3306, 6817, 6818, 6819, 6820, 9090, 9100, 9400}


def terraform() -> str:
    found = shutil.which("terraform") or "/usr/local/bin/terraform"
    if not Path(found).exists():
        pytest.fail("terraform is not installed (scripts expect /usr/local/bin/terraform)")
    return found


def _unquote(value: Any) -> Any:
    """python-hcl2 >= 7 keeps string quotes ('"tcp"'); compare plain values."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, dict):
        return {
            _unquote(k): _unquote(v)
            for k, v in value.items()
            if not (isinstance(k, str) and k.startswith("__"))
        }
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    return value


def _load_module() -> dict[str, list[Any]]:
    # checkov's fork (bc-python-hcl2, 0.x) installs a module of the same name and a different
    # output format; it is why checkov lives in its own venv (scripts/lint-terraform.sh).
    major = int(str(getattr(hcl2, "__version__", "0")).split(".")[0])
    if major < 4:
        raise RuntimeError(
            f"the hcl2 module at {hcl2.__file__} is checkov's bc-python-hcl2 {hcl2.__version__}, "
            "not python-hcl2: `pip uninstall -y checkov bc-python-hcl2 && pip install "
            "--force-reinstall --no-deps python-hcl2` in this environment"
        )
    merged: dict[str, list[Any]] = {}
    for tf in sorted(MODULE.glob("*.tf")):
        with tf.open(encoding="utf-8") as fh:
            for key, blocks in _unquote(hcl2.load(fh)).items():
                merged.setdefault(key, []).extend(blocks)
    return merged


MOD = _load_module()


def resources(kind: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for block in MOD.get("resource", []):
        for k, named in block.items():
            if k == kind:
                out.update(named)
    return out


def variables() -> dict[str, dict[str, Any]]:
    return {name: body for block in MOD["variable"] for name, body in block.items()}


def _block(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body[name]
    return value[0] if isinstance(value, list) else value


def _ingress_rules() -> list[dict[str, Any]]:
    """Every inbound rule, whichever way it is written."""
    rules = list(resources("aws_vpc_security_group_ingress_rule").values())
    for rule in resources("aws_security_group_rule").values():
        if rule.get("type") == "ingress":
            rules.append(rule)
    for group in resources("aws_security_group").values():
        rules.extend(group.get("ingress", []))
    return rules


def _ports(rule: dict[str, Any]) -> range:
    low, high = rule.get("from_port", 0), rule.get("to_port", 65535)
    if not isinstance(low, int) or not isinstance(high, int):
        return range(0)  # a variable port (the tunnel): checked by name below
    return range(low, high + 1)


def _sources(rule: dict[str, Any]) -> list[str]:
    found = []
    for key in ("cidr_ipv4", "cidr_ipv6", "cidr_blocks", "ipv6_cidr_blocks"):
        value = rule.get(key)
        if isinstance(value, list):
            found.extend(str(v) for v in value)
        elif value is not None:
            found.append(str(value))
    return found


def _templatefile(template: str, variables: dict[str, Any], tmp_path: Path) -> str:
    hardening = f'file("{MODULE}/templates/sshd-hardening.conf")'
    args = ", ".join(
        [f"sshd_hardening = {hardening}"] + [f"{k} = {json.dumps(v)}" for k, v in variables.items()]
    )
    expr = f'jsonencode(templatefile("{MODULE}/templates/{template}", {{ {args} }}))\n'
    result = subprocess.run(
        [terraform(), "console"],
        input=expr,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return str(json.loads(json.loads(result.stdout)))


def _files(doc: dict[str, Any]) -> dict[str, str]:
    return {f["path"]: f["content"] for f in doc["write_files"]}


def _forward_rules(tmp_path: Path, protocol: str, port: int) -> str:
    expr = (
        f'templatefile("{MODULE}/templates/tunnel-forward.nft.tftpl", '
        f'{{ protocol = "{protocol}", tunnel_port = {port}, '
        'controller_private_ip = "10.0.1.10" })'
    )
    result = subprocess.run(
        [terraform(), "console"],
        input=f"jsonencode({expr})\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return str(json.loads(json.loads(result.stdout)))


def _lab_jump_sshd(tmp_path: Path, controller_ip: str, login_port: int) -> str:
    """templates/sshd-lab-jump.conf.tftpl as instances.tf renders it (the bastion's Match
    block for the lab members' forward-only account)."""
    expr = (
        f'templatefile("{MODULE}/templates/sshd-lab-jump.conf.tftpl", '
        '{ jump_user = "hpcstack-lab", keys_file = "/etc/ssh/hpcstack-lab/authorized_keys", '
        f'controller_private_ip = "{controller_ip}", login_port = {login_port} }})'
    )
    result = subprocess.run(
        [terraform(), "console"],
        input=f"jsonencode({expr})\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return str(json.loads(json.loads(result.stdout)))


def _locals() -> dict[str, Any]:
    return {k: v for block in MOD["locals"] for k, v in block.items()}
