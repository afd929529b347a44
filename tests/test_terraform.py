"""terraform/aws: formatted, and its security properties asserted on the parsed HCL.

`terraform init/validate` needs providers from the registry, which is unreachable here; what can
be checked offline is checked: `terraform fmt`, the HCL itself (python-hcl2), the cloud-init
templates rendered by `terraform console`, and the generated terraform.tfvars.json.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from hpcstack.definition.load import load_stack, parse_stack
from hpcstack.plan.topology import make_plan
from hpcstack.render.terraform import TFVARS_PATH, render_terraform

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


# --- formatting and parsing --------------------------------------------------------------


def test_terraform_fmt_check() -> None:
    result = subprocess.run(
        [terraform(), "fmt", "-check", "-recursive", "-diff", str(MODULE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_module_has_the_expected_pieces() -> None:
    assert set(resources("aws_instance")) == {"bastion", "controller"}
    assert resources("aws_nat_gateway")
    assert resources("aws_internet_gateway")
    assert set(resources("aws_subnet")) == {"public", "private"}


# --- exposure ----------------------------------------------------------------------------


def test_no_world_open_ingress_on_ssh_anywhere() -> None:
    for rule in _ingress_rules():
        if 22 in _ports(rule):
            assert not any(s in ("0.0.0.0/0", "::/0") for s in _sources(rule)), rule


def test_no_world_open_ingress_at_all() -> None:
    for rule in _ingress_rules():
        assert not any(s in ("0.0.0.0/0", "::/0") for s in _sources(rule)), rule


def test_slurm_database_and_monitoring_ports_have_no_rule() -> None:
    for rule in _ingress_rules():
        assert not SLURM_AND_SERVICE_PORTS & set(_ports(rule)), rule


def test_bastion_ssh_only_from_trusted_cidrs() -> None:
    rule = resources("aws_vpc_security_group_ingress_rule")["bastion_ssh"]
    assert rule["for_each"] == "${toset(var.trusted_cidrs)}"
    assert rule["cidr_ipv4"] == "${each.value}"
    assert (rule["from_port"], rule["to_port"], rule["ip_protocol"]) == (22, 22, "tcp")


def test_tunnel_port_only_from_local_sites() -> None:
    rule = resources("aws_vpc_security_group_ingress_rule")["bastion_tunnel"]
    assert rule["for_each"] == "${toset(var.local_site_cidrs)}"
    assert rule["ip_protocol"] == "${var.tunnel_protocol}"
    assert rule["from_port"] == rule["to_port"] == "${var.tunnel_port}"


def test_controller_reachable_only_from_the_bastion_group() -> None:
    controller_rules = [
        r
        for r in resources("aws_vpc_security_group_ingress_rule").values()
        if r["security_group_id"] == "${aws_security_group.controller.id}"
    ]
    assert len(controller_rules) == 2
    for rule in controller_rules:
        assert rule["referenced_security_group_id"] == "${aws_security_group.bastion.id}"
        assert not _sources(rule)


def test_controller_has_no_public_address() -> None:
    controller = resources("aws_instance")["controller"]
    assert controller["associate_public_ip_address"] is False
    assert controller["subnet_id"] == "${aws_subnet.private.id}"
    for eip in resources("aws_eip").values():
        assert "controller" not in json.dumps(eip)
    for subnet in resources("aws_subnet").values():
        assert subnet["map_public_ip_on_launch"] is False
    # The private subnet routes out through the NAT gateway, never the internet gateway.
    nat_route = resources("aws_route")["private_nat"]
    assert nat_route["nat_gateway_id"] == "${aws_nat_gateway.this[0].id}"
    assert "gateway_id" not in resources("aws_route")["private_nat"]


def test_default_security_group_is_emptied() -> None:
    default = resources("aws_default_security_group")["default"]
    assert "ingress" not in default and "egress" not in default


# --- instances ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bastion", "controller"])
def test_imdsv2_required(name: str) -> None:
    meta = _block(resources("aws_instance")[name], "metadata_options")
    assert meta["http_tokens"] == "required"
    assert meta["http_put_response_hop_limit"] == 1


@pytest.mark.parametrize("name", ["bastion", "controller"])
def test_root_volume_encrypted_gp3(name: str) -> None:
    root = _block(resources("aws_instance")[name], "root_block_device")
    assert root["encrypted"] is True
    assert root["volume_type"] == "gp3"


@pytest.mark.parametrize("name", ["bastion", "controller"])
def test_instances_tagged_with_their_role(name: str) -> None:
    instance = resources("aws_instance")[name]
    assert instance["tags"]["hpcstack:role"] == name
    group = resources("aws_security_group")[name]
    assert group["tags"]["hpcstack:role"] == name


def test_every_instance_and_volume_is_covered_by_the_checks_above() -> None:
    assert len(resources("aws_instance")) == 2
    assert set(resources("aws_ebs_volume")) == {"controller_data"}
    assert not resources("aws_launch_template")


# --- variables, keys, provider -----------------------------------------------------------


def test_trusted_cidrs_is_required_and_validated() -> None:
    var = variables()["trusted_cidrs"]
    assert "default" not in var
    conditions = " ".join(v["condition"] for v in var["validation"])
    assert "length(var.trusted_cidrs) > 0" in conditions
    assert '/0"' in conditions


def test_every_variable_is_typed_and_described() -> None:
    for name, var in variables().items():
        assert var.get("type"), name
        assert len(var.get("description", "")) > 10, name


def test_only_the_users_public_key_no_private_key_in_state() -> None:
    assert not resources("tls_private_key")
    assert "default" not in variables()["ssh_public_key"]
    key = resources("aws_key_pair")["admin"]
    assert key["public_key"] == "${var.ssh_public_key}"
    assert not resources("local_file") and not resources("local_sensitive_file")


def test_provider_has_no_credentials_and_tags_everything() -> None:
    provider = MOD["provider"][0]["aws"]
    for forbidden in ("access_key", "secret_key", "token", "shared_credentials_files"):
        assert forbidden not in provider
    tags = _block(provider, "default_tags")["tags"]
    assert tags["hpcstack:cluster"] == "${var.cluster_name}"


def test_every_checkov_skip_is_justified() -> None:
    skips = []
    for tf in MODULE.glob("*.tf"):
        skips += re.findall(r"#\s*checkov:skip=(CKV\w+)(?::(.*))?", tf.read_text())
    assert skips, "expected the listed skips (see docs/decisions/0004)"
    for check, reason in skips:
        assert len(reason.strip()) > 30, f"{check} skipped without a reason"


# --- cloud-init, rendered by terraform itself --------------------------------------------


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


def test_controller_cloud_init(tmp_path: Path) -> None:
    values = {
        "ssh_user": "admin",
        "cloud_site": "cloud",
        "images_registry": "registry.example/lab",
        "images_prefix": "hpcstack",
        "images_tag": "0.1.0",
        "data_volume_id": "vol-0123abcd",
    }
    text = _templatefile("controller-cloud-init.yaml.tftpl", values, tmp_path)
    assert text.startswith("#cloud-config\n")
    doc = yaml.safe_load(text)
    assert {"docker.io", "docker-compose"} <= set(doc["packages"])
    files = _files(doc)
    assert "PasswordAuthentication no" in files["/etc/ssh/sshd_config.d/10-hpcstack.conf"]
    unit = files["/etc/systemd/system/hpcstack-cloud.service"]
    assert "ExecStart=/usr/bin/docker compose -f compose/cloud.yml up -d --wait" in unit
    assert "pull --ignore-buildable" in unit  # a registry is set: pull first
    assert ["systemctl", "enable", "hpcstack-cloud.service"] in doc["runcmd"]
    no_registry = _templatefile(
        "controller-cloud-init.yaml.tftpl", {**values, "images_registry": ""}, tmp_path
    )
    assert "pull --ignore-buildable" not in no_registry
    yaml.safe_load(no_registry)


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


def test_bastion_cloud_init_forwards_only_the_tunnel(tmp_path: Path) -> None:
    rules = _forward_rules(tmp_path, "udp", 51820)
    values = {"tunnel_forward_rules": rules}
    doc = yaml.safe_load(_templatefile("bastion-cloud-init.yaml.tftpl", values, tmp_path))
    nft = _files(doc)["/etc/hpcstack/tunnel-forward.nft"]
    assert "udp dport 51820 dnat to 10.0.1.10:51820" in nft
    assert "tcp" not in nft
    assert nft.strip() == rules.strip()
    assert "net.ipv4.ip_forward = 1" in _files(doc)["/etc/sysctl.d/60-hpcstack-forward.conf"]
    bastion = resources("aws_instance")["bastion"]
    assert "local.tunnel_forward_rules" in json.dumps(bastion["user_data"])


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


# --- the generated tfvars ----------------------------------------------------------------


def _plan(text: str | None = None) -> Any:
    if text is None:
        return make_plan(load_stack(REPO / "stack.yaml"))
    stack, _ = parse_stack(text)
    return make_plan(stack)


def test_tfvars_keys_are_module_variables_and_values_from_stack() -> None:
    plan = _plan()
    artifact = next(iter(render_terraform(plan)))
    assert artifact.path == TFVARS_PATH
    assert artifact.content.endswith("}\n")
    data = json.loads(artifact.content)
    assert list(data) == sorted(data)
    assert set(data) <= set(variables())
    # Only the user's key and an AMI override are left to the user.
    assert set(variables()) - set(data) == {"ssh_public_key", "ami_id"}
    assert data["region"] == plan.stack.aws.region
    assert data["tunnel_port"] == plan.stack.tunnel.port
    assert data["cluster_name"] == plan.cluster
    assert data["cloud_site"] == plan.controller.name
    assert data["trusted_cidrs"] == []  # renders; terraform's validation asks for a value


def test_tfvars_carry_the_definitions_aws_settings() -> None:
    text = (REPO / "stack.yaml").read_text()
    text = text.replace("trusted_cidrs: []", 'trusted_cidrs: ["198.51.100.7/32"]')
    text = text.replace("local_site_cidrs: []", 'local_site_cidrs: ["203.0.113.0/28"]')
    text = text.replace("port: 51820", "port: 51999")
    data = json.loads(next(iter(render_terraform(_plan(text)))).content)
    assert data["trusted_cidrs"] == ["198.51.100.7/32"]
    assert data["local_site_cidrs"] == ["203.0.113.0/28"]
    assert data["tunnel_port"] == 51999


# --- issue 12: each finding, asserted on the HCL ------------------------------------------


def _locals() -> dict[str, Any]:
    return {k: v for block in MOD["locals"] for k, v in block.items()}


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
