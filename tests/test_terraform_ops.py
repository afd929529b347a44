"""terraform/aws, the issue-12 findings: each asserted on the parsed HCL and the rendered
templates (tests/hcl_module.py); the forwarding itself runs in tests/test_bastion_forward.py."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from hcl_module import (
    MOD,
    MODULE,
    REPO,
    _block,
    _files,
    _forward_rules,
    _locals,
    _templatefile,
    resources,
    variables,
)
from hpcstack.definition.load import load_stack, parse_stack
from hpcstack.plan.topology import make_plan
from hpcstack.render.terraform import render_terraform


def _plan(text: str | None = None) -> Any:
    if text is None:
        return make_plan(load_stack(REPO / "stack.yaml"))
    stack, _ = parse_stack(text)
    return make_plan(stack)


def test_controller_keeps_its_data_on_the_data_volume(tmp_path: Path) -> None:
    """MariaDB and StateSaveLocation (Docker named volumes) live on the separate volume."""
    values = {
        "ssh_user": "admin",
        "cloud_site": "cloud",
        "images_registry": "",
        "images_prefix": "hpcstack",
        "images_tag": "0.1.0",
        "data_volume_id": "vol-0123abcd",
    }
    doc = yaml.safe_load(_templatefile("controller-cloud-init.yaml.tftpl", values, tmp_path))
    script = _files(doc)["/usr/local/sbin/hpcstack-data-volume"]
    assert "nvme-Amazon_Elastic_Block_Store_vol0123abcd" in script
    assert "target=/var/lib/docker/volumes" in script
    assert 'blkid "$dev" >/dev/null 2>&1 || mkfs.ext4' in script  # never reformat old data
    assert doc["runcmd"][0] == ["/usr/local/sbin/hpcstack-data-volume"]
    drop_in = _files(doc)["/etc/systemd/system/docker.service.d/10-hpcstack-data.conf"]
    assert "RequiresMountsFor=/var/lib/docker/volumes" in drop_in
    subprocess.run(["sh", "-n"], input=script, text=True, check=True)

    volume = resources("aws_ebs_volume")["controller_data"]
    assert volume["encrypted"] is True and volume["type"] == "gp3"
    assert _block(volume, "lifecycle")["prevent_destroy"] is True
    assert volume["availability_zone"] == "${local.az}"
    attach = resources("aws_volume_attachment")["controller_data"]
    assert attach["instance_id"] == "${aws_instance.controller.id}"
    controller = resources("aws_instance")["controller"]
    assert "aws_ebs_volume.controller_data.id" in json.dumps(controller["user_data"])
    # Snapshots: DLM targets exactly the tag the volume carries.
    dlm = resources("aws_dlm_lifecycle_policy")["controller_data"]
    details = _block(dlm, "policy_details")
    assert details["target_tags"] == {"hpcstack:snapshot": "${var.cluster_name}"}
    assert volume["tags"]["hpcstack:snapshot"] == "${var.cluster_name}"
    assert _block(_block(details, "schedule"), "retain_rule")["count"] == 7


def test_ssh_mode_forwards_the_sshd_port_over_tcp(tmp_path: Path) -> None:
    """The finding: ssh mode reached Terraform as a UDP port only; the sshd was unreachable."""
    text = (REPO / "stack.yaml").read_text().replace("mode: wireguard", "mode: ssh")
    data = json.loads(next(iter(render_terraform(_plan(text)))).content)
    assert (data["tunnel_protocol"], data["tunnel_port"]) == ("tcp", 2222)
    nft = _forward_rules(tmp_path, data["tunnel_protocol"], data["tunnel_port"])
    assert "tcp dport 2222 dnat to 10.0.1.10:2222" in nft
    for name in ("bastion_tunnel", "controller_tunnel_from_bastion"):
        rule = resources("aws_vpc_security_group_ingress_rule")[name]
        assert rule["ip_protocol"] == "${var.tunnel_protocol}", name
    egress = resources("aws_vpc_security_group_egress_rule")["bastion_to_controller_tunnel"]
    assert egress["ip_protocol"] == "${var.tunnel_protocol}"
    wireguard = json.loads(next(iter(render_terraform(_plan()))).content)
    assert (wireguard["tunnel_protocol"], wireguard["tunnel_port"]) == ("udp", 51820)


def test_bastion_has_its_public_address_before_it_boots() -> None:
    """The EIP sits on a network interface made before the instance, so cloud-init's apt runs
    with internet access (an EIP associated with the instance came only after boot)."""
    eip = resources("aws_eip")["bastion"]
    assert eip["network_interface"] == "${aws_network_interface.bastion.id}"
    assert "instance" not in eip
    bastion = resources("aws_instance")["bastion"]
    nic = _block(bastion, "network_interface")
    assert nic["network_interface_id"] == "${aws_network_interface.bastion.id}"
    assert nic["device_index"] == 0
    assert "${aws_eip.bastion}" in bastion["depends_on"]
    eni = resources("aws_network_interface")["bastion"]
    assert eni["subnet_id"] == "${aws_subnet.public.id}"


def test_ebs_optimized_only_where_ec2_supports_it_and_standard_credits() -> None:
    from hpcstack.definition.checks_aws import BURSTABLE, EBS_OPTIMIZATION

    loc = _locals()
    unsupported = sorted(f for f, v in EBS_OPTIMIZATION.items() if v == "unsupported")
    assert loc["no_ebs_optimization"] == unsupported  # the same table as `hpcstack validate`
    assert sorted(loc["burstable"]) == sorted(BURSTABLE)
    for name in ("bastion", "controller"):
        instance = resources("aws_instance")[name]
        assert instance["ebs_optimized"] is not True, name  # t2.micro + true: EC2 rejects it
        assert "local.no_ebs_optimization" in instance["ebs_optimized"], name
        credit = instance["dynamic"][0]["credit_specification"]
        assert "local.burstable" in credit["for_each"]
        assert _block(credit, "content")["cpu_credits"] == "standard"


def test_instance_type_variables_are_validated() -> None:
    for name in ("bastion_instance_type", "controller_instance_type"):
        assert variables()[name].get("validation"), name


def test_allow_ip_has_its_own_group_that_terraform_never_fills() -> None:
    group = resources("aws_security_group")["bastion_allow_ip"]
    assert group["tags"]["hpcstack:role"] == "bastion-allow-ip"
    assert "ingress" not in group and "egress" not in group
    for kind in ("aws_vpc_security_group_ingress_rule", "aws_security_group_rule"):
        for name, rule in resources(kind).items():
            assert "bastion_allow_ip" not in json.dumps(rule), name
    eni = resources("aws_network_interface")["bastion"]
    assert "${aws_security_group.bastion_allow_ip.id}" in eni["security_groups"]


def test_nat_gateway_can_be_switched_off() -> None:
    switched = (("aws_nat_gateway", "this"), ("aws_eip", "nat"), ("aws_route", "private_nat"))
    for kind, name in switched:
        assert resources(kind)[name]["count"] == "${var.nat_gateway_enabled ? 1 : 0}", kind
    assert variables()["nat_gateway_enabled"]["default"] is True


def test_monthly_budget_is_optional_and_mails() -> None:
    budget = resources("aws_budgets_budget")["monthly"]
    assert budget["count"] == "${var.monthly_budget_usd > 0 ? 1 : 0}"
    assert budget["time_unit"] == "MONTHLY"
    notes = budget["notification"]
    assert {n["notification_type"] for n in notes} == {"ACTUAL", "FORECASTED"}
    for n in notes:
        assert n["subscriber_email_addresses"] == ["${var.budget_email}"]


def test_secrets_key_and_per_site_policies() -> None:
    from hpcstack.render.terraform import kms_alias

    key = resources("aws_kms_key")["secrets"]
    assert key["count"] == "${var.secrets_kms_key ? 1 : 0}"
    assert key["enable_key_rotation"] is True
    alias = resources("aws_kms_alias")["secrets"]
    assert alias["name"] == kms_alias("${var.cluster_name}")  # what push-secrets uses
    site = resources("aws_iam_policy")["site_secrets"]
    assert site["for_each"] == "${toset(var.local_sites)}"
    assert site["policy"] == '${file("${path.module}/policies/${each.key}.json")}'
    data = json.loads((MODULE / "terraform.tfvars.json").read_text())
    for name in data["local_sites"]:
        assert (MODULE / "policies" / f"{name}.json").is_file(), name


def test_operator_policy_opens_only_the_allow_ip_group() -> None:
    docs = {k: v for block in MOD["data"] for k, v in block.items()}["aws_iam_policy_document"]
    statements = {s["sid"]: s for s in docs["operator"]["statement"]}
    allow = statements["AllowIpOnlyInItsOwnGroup"]
    assert allow["resources"] == ["${aws_security_group.bastion_allow_ip.arn}"]
    assert statements["FindTheClusterByTags"]["actions"] == [
        "ec2:DescribeInstances",
        "ec2:DescribeSecurityGroups",
        "ssm:DescribeParameters",
    ]


def test_provider_version_is_pinned_and_locked() -> None:
    version = MOD["terraform"][0]["required_providers"][0]["aws"]["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    lock = (MODULE / ".terraform.lock.hcl").read_text()
    assert f'version     = "{version}"' in lock
    assert len(re.findall(r'"zh:[0-9a-f]{64}"', lock)) >= 10  # every platform's package


def test_snapshot_policy_strings_are_what_dlm_accepts() -> None:
    """DLM allows only letters, digits, spaces, '_' and '-' in its description and names."""
    dlm = resources("aws_dlm_lifecycle_policy")["controller_data"]
    schedule = _block(_block(dlm, "policy_details"), "schedule")
    for text in (dlm["description"], schedule["name"]):
        plain = text.replace("${var.cluster_name}", "hpcstack")
        assert re.fullmatch(r"[0-9A-Za-z _-]{1,120}", plain), text
