"""The definition reader is bounded: size, file type, values, depth, aliases; each refusal has
its position. Memory is measured in a subprocess (its peak RSS); time is not asserted
here (see the report / `make bench`), only that the work is bounded by counts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpcstack.cli.main import cli
from hpcstack.definition import yaml_reader
from hpcstack.definition.load import MAX_BYTES
from hpcstack.errors import ConfigFileError

REPO = Path(__file__).resolve().parent.parent
HEAD = "cluster:\n  name: big\n"
SITES = (
    "\nsites:\n  - {name: cloud, role: cloud, subnet: 10.40.0.0/24}\n"
    "  - {name: lab, role: local, subnet: 10.40.1.0/24, nodes: [{prefix: n, count: 1}]}\n"
)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def valid_shaped(size: int) -> str:
    """A definition-shaped file of about `size` bytes: many sites, each with nodes."""
    parts = [HEAD, "sites:\n  - name: cloud\n    role: cloud\n    subnet: 10.0.0.0/24\n"]
    total, i = sum(map(len, parts)), 0
    while total < size - 400:
        part = (
            f"  - name: s{i}\n    role: local\n    subnet: 10.{1 + i // 256 % 250}.{i % 256}.0/24\n"
            "    nodes:\n"
            + "".join(
                f"      - name: n{i}x{j}\n        cpus: 2\n        features: [a, b]\n"
                for j in range(4)
            )
        )
        parts.append(part)
        total += len(part)
        i += 1
    return "".join(parts)


def billion_laughs() -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]
    return "x-bomb:\n" + textwrap.indent("\n".join(lines), "  ") + "\n" + HEAD


def test_files_over_the_limit_are_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as fh:
        fh.truncate(MAX_BYTES + 1)  # sparse: refused by its size, never read
    code, out = run("validate", "-c", str(big))
    assert code == 1
    assert "a definition is at most 10 MB" in out


def test_a_named_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    code, out = run("validate", "-c", str(fifo))  # would block forever if it opened the pipe
    assert code == 1
    assert "not a regular file" in out


def test_a_device_is_refused() -> None:
    code, out = run("validate", "-c", "/dev/zero")
    assert code == 1
    assert "not a regular file" in out


def test_values_are_counted_and_the_count_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    text = HEAD + "x: [" + ",".join(["1"] * 500) + "]\n"
    monkeypatch.setattr(yaml_reader, "MAX_NODES", 100)
    with pytest.raises(ConfigFileError, match=r"f.yaml:3:\d+: the definition holds over 100"):
        yaml_reader.read_yaml(text, "f.yaml")


def test_an_alias_bomb_stops_at_the_budget() -> None:
    with pytest.raises(ConfigFileError, match="too many aliases") as info:
        yaml_reader.read_yaml(billion_laughs(), "bomb.yaml")
    # refused at the third level already: 10 values per alias, then 100 per alias
    assert ":4:" in str(info.value) or ":5:" in str(info.value)


def test_aliases_within_the_budget_are_expanded() -> None:
    data, pos = yaml_reader.read_yaml("a: &n {cpus: 2}\nb: [*n, *n]\n", "f.yaml")
    assert data == {"a": {"cpus": 2}, "b": [{"cpus": 2}, {"cpus": 2}]}
    assert pos.find(("b", 1, "cpus")) == (2, 9)  # an expanded value points at its alias


def test_positions_are_kept_for_keys_and_values() -> None:
    _, pos = yaml_reader.read_yaml("a:\n  b: [x, y]\n", "f.yaml")
    assert pos.find(("a", "b"), prefer_key=True) == (2, 3)
    assert pos.find(("a", "b", 1)) == (2, 10)
    assert pos.find(("a", "nope")) == (2, 3)  # nearest written ancestor


MEASURE = """
import resource, sys, time
sys.argv = ["hpcstack", "validate", "-c", sys.argv[1]]
t = time.monotonic()
from hpcstack.cli.main import main
try:
    main()
except SystemExit as exc:
    code = exc.code
# getrusage's ru_maxrss survives exec on Linux (a vfork child starts with pytest's peak), so
# the peak of this process's own memory map, VmHWM, is read where the kernel has it.
try:
    with open("/proc/self/status") as fh:
        peak = next(int(ln.split()[1]) for ln in fh if ln.startswith("VmHWM:")) // 1024
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print("RESULT", code, round(time.monotonic() - t, 3), peak, file=sys.stderr)
"""


def measure(path: Path) -> tuple[int, float, int]:
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO / "generator")},
        check=False,
    )
    found = [ln for ln in proc.stderr.splitlines() if ln.startswith("RESULT")]
    assert found, proc.stderr[-2000:]
    line = found[0]
    _, code, seconds, mb = line.split()
    return int(code), float(seconds), int(mb)


@pytest.mark.parametrize(
    "kind", ["valid-shaped", "billion-laughs", "flow-list", "comments", "long-string"]
)
def test_ten_megabytes_stay_bounded_in_memory(kind: str, tmp_path: Path) -> None:
    path = tmp_path / f"{kind}.yaml"
    size = MAX_BYTES - 1024
    if kind == "valid-shaped":
        text = valid_shaped(size)
    elif kind == "billion-laughs":
        text = billion_laughs()
    elif kind == "flow-list":
        text = HEAD + "x: [" + "1," * ((size - 40) // 2) + "1]\n"
    elif kind == "comments":
        text = HEAD + ("# " + "c" * 98 + "\n") * (size // 101)
    else:  # one huge value where a host name goes
        text = HEAD + "tunnel:\n  endpoint: " + "a" * (size - 300) + SITES
    path.write_text(text)
    assert path.stat().st_size <= MAX_BYTES
    code, seconds, mb = measure(path)
    print(f"{kind}: {path.stat().st_size} bytes, exit {code}, {seconds} s, {mb} MB max RSS")
    assert code == 1  # refused (too many values, an alias bomb, no sites), with a message
    assert mb < 200
