"""The definition: structure and meaning checks, error format, exit codes, nothing written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpcstack.cli.main import cli
from hpcstack.definition.load import load_stack
from hpcstack.plan.topology import make_plan

# fixture name -> (line of the problem, dotted path, words the message must contain)
BAD = {
    "bad-unknown-key": (13, "sites[1].nodes[0].cpu", "did you mean 'cpus'?"),
    "bad-duplicate-node": (15, "sites[2].nodes[0].name", "'node2' is already used"),
    "bad-overlapping-subnets": (7, "sites[1].subnet", "overlaps sites[0].subnet"),
    "bad-two-cloud-sites": (2, "sites", "exactly one site must have role 'cloud'"),
    "bad-controller-site": (2, "controller.site", "did you mean 'cloud'?"),
    "bad-node-name": (9, "sites[1].nodes[0].name", "not a valid Slurm hostname"),
    "bad-site-name": (5, "sites[1].name", "is not a site name"),
    "bad-sizes": (10, "sites[1].nodes[0].count", "greater than or equal to 1"),
    "bad-site-too-small": (7, "sites[1].subnet", "holds 10 nodes"),
    "bad-shared-gpu": (12, "sites[1].nodes[1].gpus", "GPU 1 on site 'local' is already given"),
    "bad-local-site-without-nodes": (5, "sites[1].nodes", "has no compute nodes"),
    "bad-duplicate-key": (3, "cluster", "key given twice"),
    "bad-not-a-network": (4, "sites[0].subnet", "not an IPv4 network"),
    "bad-slurm-release": (2, "cluster.slurm_release", "not packaged by Debian"),
}


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_default_definition_is_valid(repo: Path) -> None:
    code, out = run("validate", "-c", str(repo / "stack.yaml"))
    assert code == 0, out
    assert "valid (2 sites, 2 compute nodes)" in out


@pytest.mark.parametrize("name", sorted(BAD))
def test_each_check_reports_path_and_line(name: str, defs: Path, tmp_path: Path) -> None:
    line, path, words = BAD[name]
    config = defs / f"{name}.yaml"
    code, out = run("validate", "-c", str(config))
    assert code == 1
    assert f"{config}:{line}:" in out
    assert f": {path}: " in out
    assert words in out
    assert "Traceback" not in out
    # generate refuses the same way and writes nothing
    code, out = run("generate", "-c", str(config), "-o", str(tmp_path / "out"))
    assert code == 1
    assert not (tmp_path / "out").exists()


def test_every_problem_is_reported_not_just_the_first(defs: Path) -> None:
    code, out = run("validate", "-c", str(defs / "bad-sizes.yaml"))
    assert code == 1
    assert "4 problems" in out
    for path in ("count", "cpus", "memory_mb", "gpus"):
        assert f"sites[1].nodes[0].{path}:" in out


def test_error_shows_the_line_with_a_caret(defs: Path) -> None:
    _, out = run("validate", "-c", str(defs / "bad-unknown-key.yaml"))
    lines = out.splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.strip() == "cpu: 2")
    assert lines[i + 1].index("^") == lines[i].index("cpu")


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("bad-yaml-syntax", r":5:9: YAML syntax error"),
        ("empty", r":1:1: the definition is empty"),
    ],
)
def test_unreadable_files_give_one_line(name: str, pattern: str, defs: Path) -> None:
    code, out = run("validate", "-c", str(defs / f"{name}.yaml"))
    assert code == 1
    assert re.search(pattern, out)
    assert len(out.strip().splitlines()) == 1
    assert "Traceback" not in out


def test_missing_file(tmp_path: Path) -> None:
    code, out = run("validate", "-c", str(tmp_path / "nope.yaml"))
    assert code == 1
    assert "nope.yaml: no such file" in out


def test_comments_only_and_scalar_documents(tmp_path: Path) -> None:
    comments = tmp_path / "c.yaml"
    comments.write_text("# nothing\n")
    scalar = tmp_path / "s.yaml"
    scalar.write_text("just text\n")
    assert run("validate", "-c", str(comments))[0] == 1
    code, out = run("validate", "-c", str(scalar))
    assert code == 1
    assert "must be a mapping" in out


def test_usage_error_exits_2() -> None:
    code, _ = run("generate", "--no-such-option")
    assert code == 2


def test_plan_addresses_are_derived_from_the_definition(repo: Path) -> None:
    plan = make_plan(load_stack(repo / "stack.yaml"))
    assert plan.controller_addr == "172.28.0.12"
    assert [n.overlay_ip for n in plan.nodes] == ["10.99.1.4", "10.99.1.5"]
    assert [n.site_ip for n in plan.nodes] == ["172.28.1.20", "172.28.1.21"]
    assert plan.hub_overlay_ip == "10.99.0.1"


def test_gpu_counts_take_the_next_free_host_indices(defs: Path) -> None:
    plan = make_plan(load_stack(defs / "three-sites.yaml"))
    gpus = {n.name: n.gpu_indices for n in plan.nodes}
    assert gpus["gpu1"] == (0, 1)
    assert gpus["gpu2"] == (2, 3)
    assert gpus["pc1"] == ()
