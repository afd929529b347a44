"""Property: whatever `validate` accepts, `generate` renders, with every address unique and
every generated file parsing in its own format. Random valid-looking definitions (fixed seed,
a few hundred examples): most are valid, many are near misses the checks must catch."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from hpcstack.contract import SERVICE_HOSTS
from hpcstack.definition.load import check_text
from hpcstack.errors import ConfigFileError, DefinitionError
from hpcstack.plan.topology import Plan, make_plan
from hpcstack.render import Artifact, render_all

Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
NAME = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
ENDPOINTS = st.sampled_from(
    ["host.docker.internal"] * 3
    + ["vpn.example.org", "203.0.113.7", "10.99.0.9", "127.0.0.1", "gw"]
)
TUNNELS = st.sampled_from(["10.99.0.0/16", "10.96.0.0/20", "10.128.0.0/12", "10.99.0.0/19"])
PREFIXES = st.sampled_from([24] * 6 + [25, 26, 27, 28])


@st.composite
def node_group(draw: st.DrawFn, index: int) -> dict[str, Any]:
    group: dict[str, Any]
    if draw(st.booleans()):
        group = {"prefix": draw(NAME) + "n", "count": draw(st.integers(1, 4))}
    else:
        group = {"name": draw(NAME) + f"x{index}"}
    if draw(st.booleans()):
        group["cpus"] = draw(st.integers(1, 64))
        group["memory_mb"] = draw(st.integers(256, 65536))
    counts = st.one_of(st.just(0), st.integers(0, 3))
    indices = st.lists(st.integers(0, 7), max_size=3, unique=True)
    gpus = draw(counts if "prefix" in group else st.one_of(counts, indices))
    if gpus:
        group["gpus"] = gpus
        if draw(st.booleans()):
            group["gpu_type"] = draw(st.sampled_from(["a100", "rtx4090", "h100"]))
    if draw(st.booleans()):
        group["features"] = draw(
            st.lists(st.from_regex(r"[a-z][a-z0-9_.-]{0,8}", fullmatch=True), max_size=3)
        )
    return group


@st.composite
def definition(draw: st.DrawFn) -> dict[str, Any]:
    n_sites = draw(st.integers(1, 4))
    cloud = draw(st.integers(0, n_sites - 1))
    tunnel_subnet = draw(TUNNELS)
    tunnel = ipaddress.IPv4Network(tunnel_subnet)
    sites = []
    for i in range(n_sites):
        prefix = draw(PREFIXES)
        site: dict[str, Any] = {
            "name": f"s{i}{draw(NAME)}" if draw(st.booleans()) else f"site{i}",
            "role": "cloud" if i == cloud else "local",
            "subnet": f"172.{20 + i}.{draw(st.integers(0, 3))}.0/{prefix}",
        }
        if draw(st.integers(0, 5)) == 0:
            block = draw(st.integers(2, 14))  # sometimes a derived block: an overlap
            size = draw(st.sampled_from([24, 26, 28]))
            start = int(tunnel.network_address) + block * 256
            site["overlay"] = str(ipaddress.IPv4Network((start, size)))
        groups = draw(st.integers(0 if i == cloud and n_sites > 1 else 1, 3))
        site["nodes"] = [draw(node_group(i * 10 + j)) for j in range(groups)]
        if draw(st.booleans()):
            site["gpu_runtime"] = draw(st.sampled_from(["nvidia", "cdi", "mknod"]))
        sites.append(site)
    doc: dict[str, Any] = {
        "cluster": {"name": "p" + draw(NAME)},
        "controller": {"site": sites[cloud]["name"]},
        "tunnel": {
            "mode": draw(st.sampled_from(["wireguard", "ssh"])),
            "subnet": tunnel_subnet,
            "endpoint": draw(ENDPOINTS),
            "port": draw(st.sampled_from([51820, 51821, 3000])),
        },
        "monitoring": {
            "enabled": draw(st.booleans()),
            "prometheus_port": draw(st.sampled_from([9090, 9091, 3000])),
            "grafana_port": draw(st.sampled_from([3000, 3001])),
        },
        "sites": sites,
    }
    if draw(st.booleans()):
        doc["cluster"]["max_nodes"] = draw(st.integers(6, 64))
    if doc["tunnel"]["mode"] == "ssh":
        doc["tunnel"]["ssh_port"] = draw(st.sampled_from([2222, 22, 9090]))
        if draw(st.booleans()):
            doc["tunnel"]["ssh_jump"] = "admin@bastion.example.org:22"
    return doc


def all_addresses(plan: Plan) -> list[str]:
    out = []
    for site in plan.sites:
        out += [site.service_ip(s) for s in SERVICE_HOSTS]
        out += [n.site_ip for n in site.nodes]
        out += [n.overlay_ip for n in site.nodes if n.overlay_ip]
    out.append(plan.hub_overlay_ip)
    return out


WG_KEYS = {"ListenPort", "PublicKey", "Endpoint", "AllowedIPs", "PersistentKeepalive"}
SSH_LINE = re.compile(r"\s*[A-Z][A-Za-z0-9]+ \S.*")
SHELL_ASSIGNMENT = re.compile(r"[A-Z_][A-Z0-9_]*='[^'\\\n]*'")
# KEY=VALUE; a few keys take a `param=value` of their own (AuthAltParameters=jwt_key=/path).
SLURM_PAIR = re.compile(r"[A-Za-z]+=([a-z_]+=)?[^\s=]+")


def parse_artifact(art: Artifact) -> None:
    """Parse one generated file in its own format; AssertionError or a parse error if not."""
    text, path = art.content, art.path
    assert "\r" not in text and "\x00" not in text, path
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if path.endswith((".yml", ".yaml")):
        yaml.load(text, Loader=Loader)
    elif path.endswith(".json"):
        json.loads(text)
    elif path.startswith("slurm/"):
        for ln in lines:
            assert all(SLURM_PAIR.fullmatch(tok) for tok in ln.split()), (path, ln)
    elif path.endswith(".env"):  # shell assignments the entrypoints source
        for ln in lines:
            assert SHELL_ASSIGNMENT.fullmatch(ln), (path, ln)
    elif path.startswith("wireguard/"):
        for ln in lines:
            if ln in ("[Interface]", "[Peer]"):
                continue
            key, sep, value = ln.partition(" = ")
            assert sep and key in WG_KEYS and value and "=" not in value.replace("==", ""), ln
    elif path == "ssh/authorized_keys":
        assert all(ln.startswith("restrict,") and ln.count("@") == 1 for ln in lines), lines
    elif path.startswith("ssh/"):
        assert all(SSH_LINE.fullmatch(ln) for ln in lines), (path, lines)


@settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
@given(definition())
def test_what_validate_accepts_generate_renders(doc: dict[str, Any]) -> None:
    text = yaml.safe_dump(doc, sort_keys=False)
    try:
        loaded = check_text(text, "random.yaml")
    except (DefinitionError, ConfigFileError) as exc:
        assert "Traceback" not in str(exc)
        return
    plan = make_plan(loaded.stack)
    addresses = all_addresses(plan)
    assert len(addresses) == len(set(addresses)), "two things share an address"
    for art in render_all(plan):
        parse_artifact(art)
