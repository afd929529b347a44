"""definition/checks_aws.py: instance types EC2 accepts, and the tunnel endpoint under aws:."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from moto import mock_aws

from hpcstack.cli.main import cli
from hpcstack.definition.checks import check_stack
from hpcstack.definition.checks_aws import aws_warnings, instance_family
from hpcstack.definition.load import load_stack, parse_stack
from hpcstack.errors import DefinitionError
from hpcstack.operate.generate import generate

REPO = Path(__file__).resolve().parents[1]
STACK_TEXT = (REPO / "stack.yaml").read_text()
DEPLOYING = STACK_TEXT.replace("trusted_cidrs: []", 'trusted_cidrs: ["198.51.100.7/32"]')


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    return path


def test_unknown_instance_family_is_an_error_with_a_hint(tmp_path: Path) -> None:
    text = STACK_TEXT.replace("bastion_instance_type: t3.micro", "bastion_instance_type: t3x.micro")
    with pytest.raises(DefinitionError) as err:
        load_stack(_write(tmp_path, text))
    message = str(err.value)
    assert "aws.bastion_instance_type" in message and "did you mean 't3'" in message
    assert "stack.yaml:" in message  # positioned at the line


def test_not_an_instance_type(tmp_path: Path) -> None:
    text = STACK_TEXT.replace(
        "controller_instance_type: t3.medium", "controller_instance_type: big"
    )
    with pytest.raises(DefinitionError, match="not an EC2 instance type"):
        load_stack(_write(tmp_path, text))


def test_t2_micro_is_accepted_with_a_warning(tmp_path: Path) -> None:
    """Terraform drops ebs_optimized for t2 (EC2 rejects it there); validation only warns."""
    text = STACK_TEXT.replace("bastion_instance_type: t3.micro", "bastion_instance_type: t2.micro")
    stack = load_stack(_write(tmp_path, text))
    warnings = [p for p in check_stack(stack) if p.level == "warning"]
    assert any("previous-generation" in w.message for w in warnings)
    assert instance_family("m7i-flex.large") == "m7i-flex"


def test_endpoint_default_under_aws_warns_and_names_the_fix() -> None:
    stack, _ = parse_stack(DEPLOYING)
    [warning] = [w for w in aws_warnings(stack) if w.path == "tunnel.endpoint"]
    assert warning.level == "warning"
    assert "terraform output -raw bastion_public_ip" in warning.hint
    assert "hpcstack aws endpoint" in warning.hint
    set_ = DEPLOYING.replace("endpoint: host.docker.internal", "endpoint: 52.16.0.10")
    assert not [w for w in aws_warnings(parse_stack(set_)[0]) if w.path == "tunnel.endpoint"]
    # The one-host demo (no trusted_cidrs) is not nagged.
    assert not aws_warnings(parse_stack(STACK_TEXT)[0])


def test_aws_commands_print_the_endpoint_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    generate(_write(tmp_path, DEPLOYING), tmp_path / "out")
    with mock_aws():
        args = ["aws", "pull-secrets", "-d", str(tmp_path / "out"), "--region", "eu-west-1"]
        result = CliRunner().invoke(cli, args)
    assert "warning: tunnel.endpoint" in result.output
    assert "push-secrets" in result.output  # then the command itself ran (nothing pushed)
