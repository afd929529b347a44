"""Every string field, rendered with hostile values: validate refuses it, or the value passed
the field's grammar and every generated file still parses with no injected line."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml

from hpcstack.definition.grammar import FIELDS, grammar_for, string_fields
from hpcstack.definition.load import check_text
from hpcstack.errors import ConfigFileError, DefinitionError
from hpcstack.plan.topology import make_plan
from hpcstack.render import render_all
from test_definition_properties import parse_artifact

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFsAKpZhGxESBmEww9NKqiFYMBEG3HJHc+YfWlXNdCS5 a@b"
BASE: dict[str, Any] = {
    "groups": [{"name": "team", "gid": 3000}],
    "accounts": [{"name": "lab"}],
    "users": [
        {"name": "alice", "uid": 2001, "account": "lab", "groups": ["team"], "ssh_keys": [KEY]}
    ],
    "cluster": {"name": "fx", "slurm_release": "26.05"},
    "controller": {"site": "cloud"},
    "login": {"address": "127.0.0.1"},
    "images": {
        "registry": "reg.example.org/lab",
        "prefix": "hpcstack",
        "tag": "1.0",
        "base": "debian:forky-slim",
    },
    "tunnel": {
        "mode": "wireguard",
        "subnet": "10.99.0.0/16",
        "endpoint": "vpn.example.org",
        "ssh_jump": "admin@bastion.example.org:22",
    },
    "monitoring": {"retention": "15d", "scrape_interval": "30s"},
    "storage": {"mount_roots": ["/data"]},
    "sites": [
        {"name": "cloud", "role": "cloud", "subnet": "10.40.0.0/24"},
        {
            "name": "lab",
            "role": "local",
            "subnet": "10.40.1.0/24",
            "overlay": "10.99.1.0/24",
            "gpu_runtime": "mknod",
            "nodes": [
                {"name": "gpu1", "gpus": 1, "gpu_type": "a100", "features": ["big"]},
                {"prefix": "node", "count": 2},
            ],
            "mounts": [{"source": "/data/ds", "target": "/data/ds"}],
        },
    ],
    "aws": {
        "region": "eu-west-1",
        "availability_zone": "eu-west-1a",
        "trusted_cidrs": ["203.0.113.7/32"],
        "local_site_cidrs": ["198.51.100.0/24"],
        "key_name": "lab key",
        "ssh_user": "admin",
    },
}
# Each carries INJECTED after a line break (of some kind) or a syntax character.
HOSTILE = [
    "x\nINJECTED = 1",
    "x\r\nINJECTED = 1",
    "x\u2028INJECTED",
    "x\u0085INJECTED",
    "x\x00INJECTED",
    "x\x0bINJECTED",
    'x"INJECTED',
    "x'INJECTED",
    "x\\nINJECTED",
    "$(INJECTED)",
    "`INJECTED`",
    "${INJECTED}",
    "x INJECTED=1",
    "x#INJECTED",
    "x=INJECTED",
    "[INJECTED]",
    "x;INJECTED",
    "x,INJECTED",
    "x\tINJECTED",
    "x\u200bINJECTED",
]
# Literal-typed fields: pydantic admits only the listed values, no grammar needed.
CHOICES = {"tunnel.mode", "sites[*].role", "sites[*].gpu_runtime"}
INJECTED_LINE = re.compile(r"(?m)^\s*\W*INJECTED")
BAD_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029\u200b]")


def base_paths() -> list[str]:
    stack = check_text(yaml.safe_dump(BASE), "base.yaml").stack
    return [path for path, _ in string_fields(stack)]


def set_path(doc: dict[str, Any], path: str, value: str) -> None:
    parts: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        parts.append(int(part[1:-1]) if part.startswith("[") else part)
    target: Any = doc
    for part in parts[:-1]:
        target = target[part]
    target[parts[-1]] = value


def test_every_string_field_has_its_grammar() -> None:
    normal = {re.sub(r"\[\d+\]", "[*]", p) for p in base_paths()}
    assert normal - CHOICES <= set(FIELDS), sorted(normal - CHOICES - set(FIELDS))
    assert set(FIELDS) <= normal, sorted(set(FIELDS) - normal)  # no stale entries


@pytest.mark.parametrize("mode", ["wireguard", "ssh"])
@pytest.mark.parametrize("path", base_paths())
def test_hostile_values_never_reach_a_generated_file(path: str, mode: str) -> None:
    accepted = 0
    for value in HOSTILE:
        doc = copy.deepcopy(BASE)
        doc["tunnel"]["mode"] = mode
        set_path(doc, path, value)
        try:
            loaded = check_text(yaml.safe_dump(doc, allow_unicode=False), "hostile.yaml")
        except (DefinitionError, ConfigFileError):
            continue
        accepted += 1
        grammar, _ = grammar_for(path)
        assert grammar.refuse(value) is None, f"{path}={value!r} accepted outside its grammar"
        for art in render_all(make_plan(loaded.stack)):
            parse_artifact(art)
            assert not INJECTED_LINE.search(art.content), (path, value, art.path)
            assert not BAD_CHARS.search(art.content), (path, value, art.path)
    # the free-text fields take some of these (e.g. a space in a key pair name), no others
    assert accepted <= 6, f"{path} accepted {accepted} hostile values"
