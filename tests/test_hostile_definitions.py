"""Hostile and inconsistent definitions (tests/fixtures/definitions/hostile/expected.json).

Each fixture goes through the real CLI: the expected exit code, a fragment of the message, the
dotted path, no traceback, and nothing written to the output directory. Warnings exit 0 and
become errors with --strict. `state` fixtures are good definitions against an output directory
that is not what generate expects; generate must refuse before changing any file there.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hpcstack.cli.main import cli

HOSTILE = Path(__file__).parent / "fixtures" / "definitions" / "hostile"
EXPECTED: dict[str, dict[str, Any]] = json.loads((HOSTILE / "expected.json").read_text())
KINDS = ("injection", "yaml", "address", "consistency", "state")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def snapshot(root: Path) -> dict[str, str]:
    if root.is_file():
        return {"": hashlib.sha256(root.read_bytes()).hexdigest()}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        if p.is_file()
        else "dir"
        for p in sorted(root.rglob("*"))
    }


def test_the_fixtures_cover_every_kind() -> None:
    assert len(EXPECTED) >= 60
    for kind in KINDS:
        assert sum(c["kind"] == kind for c in EXPECTED.values()) >= 5, kind
    assert sorted(p.stem for p in HOSTILE.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(n for n, c in EXPECTED.items() if c["kind"] != "state"))
def test_hostile_definition(name: str, tmp_path: Path) -> None:
    case = EXPECTED[name]
    config = HOSTILE / f"{name}.yaml"
    code, out = run("validate", "-c", str(config))
    assert code == case["exit"], out
    assert case["fragment"] in out, out
    assert "Traceback" not in out
    if case.get("path"):
        assert f": {case['path']}: " in out, out
    assert f"{config}:" in out  # every problem names the file (and line where known)
    out_dir = tmp_path / "out"
    code, out = run("generate", "-c", str(config), "-o", str(out_dir), "--strict")
    assert code == case.get("strict_exit", case["exit"]), out
    assert not out_dir.exists(), "generate wrote something for a refused definition"
    if "strict_exit" in case:
        code, out = run("validate", "--strict", "-c", str(config))
        assert code == case["strict_exit"]
        assert case["fragment"] in out


@pytest.mark.parametrize("name", sorted(n for n, c in EXPECTED.items() if c["kind"] == "state"))
def test_state_that_does_not_match(name: str, tmp_path: Path) -> None:
    case = EXPECTED[name]
    state = case["state"]
    config = HOSTILE / f"{name}.yaml"
    out_dir = tmp_path / "out"
    if state.get("output_is_file"):
        out_dir.write_text("a file where the output directory should be\n")
    if state.get("generate_first"):
        assert run("generate", "-c", str(config), "-o", str(out_dir))[0] == 0
    for rel, text in state.get("edit", {}).items():
        (out_dir / rel).write_text(text)
    for rel, text in state.get("files", {}).items():
        (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (out_dir / rel).write_text(text)
    for rel in state.get("dirs", []):
        (out_dir / rel).mkdir(parents=True)
    before = snapshot(out_dir)
    code, out = run("generate", "-c", str(config), "-o", str(out_dir))
    assert code == case["exit"], out
    assert case["fragment"] in out, out
    assert "Traceback" not in out
    assert snapshot(out_dir) == before, "generate changed the output directory"


def test_a_saved_plan_gives_no_false_warnings(repo: Path) -> None:
    """`up` checks the plan read back from stack.json, where every field is set."""
    from hpcstack.definition.checks import check_stack
    from hpcstack.output.state import load_generated

    plan = load_generated(repo)
    assert [p for p in check_stack(plan.stack) if p.level == "warning"] == []
