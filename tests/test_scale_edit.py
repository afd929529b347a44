"""`hpcstack scale`'s edit of stack.yaml: only the site's nodes change, the rest is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpcstack.definition.load import check_text
from hpcstack.errors import ClusterError
from hpcstack.operate.rest import token
from hpcstack.operate.scale_edit import edit_nodes

TWO_GROUPS = """\
# my lab
cluster: {name: lab}
sites:
- name: cloud   # the head node
  role: cloud
  subnet: 172.28.0.0/24
- name: lab
  role: local
  subnet: 172.28.1.0/24
  nodes:
  - {name: gpu1, cpus: 8, memory_mb: 4096, gpus: 0}
  - {prefix: cpu, count: 2, cpus: 4, memory_mb: 2048}  # the old boxes
"""


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    b, a = before.splitlines(), after.splitlines()
    return [(x, y) for x, y in zip(b, a, strict=False) if x != y]


def test_nodes_changes_only_the_count_line(repo: Path) -> None:
    text = (repo / "stack.yaml").read_text()
    edit = edit_nodes(text, "local", count=4)
    assert edit.added == ["node3", "node4"] and edit.removed == []
    assert edit.text == text.replace("count: 2", "count: 4", 1)
    check_text(edit.text, "stack.yaml")  # still a valid definition


def test_fewer_nodes_removes_from_the_end(repo: Path) -> None:
    text = (repo / "stack.yaml").read_text()
    edit = edit_nodes(text, "local", count=1)
    assert edit.removed == ["node2"]


def test_add_appends_a_node_sized_like_the_first_in_the_same_style() -> None:
    edit = edit_nodes(TWO_GROUPS, "lab", add="big")
    assert edit.added == ["big"]
    assert edit.text.startswith(TWO_GROUPS)  # every earlier line, comments included, kept
    assert edit.text[len(TWO_GROUPS) :] == "  - {name: big, cpus: 8, memory_mb: 4096, gpus: 0}\n"
    check_text(edit.text, "stack.yaml")


def test_add_the_next_of_a_counted_group_bumps_its_count() -> None:
    edit = edit_nodes(TWO_GROUPS, "lab", add="cpu3")
    assert changed_lines(TWO_GROUPS, edit.text) == [
        (
            "  - {prefix: cpu, count: 2, cpus: 4, memory_mb: 2048}  # the old boxes",
            "  - {prefix: cpu, count: 3, cpus: 4, memory_mb: 2048}  # the old boxes",
        )
    ]


def test_remove_a_named_node_and_the_last_of_a_group() -> None:
    edit = edit_nodes(TWO_GROUPS, "lab", remove="gpu1")
    assert edit.removed == ["gpu1"]
    assert "gpu1" not in edit.text and "# the old boxes" in edit.text
    assert edit_nodes(TWO_GROUPS, "lab", remove="cpu2").removed == ["cpu2"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"remove": "cpu1"}, "in the middle of the group"),
        ({"remove": "nope"}, "has no node named nope"),
        ({"add": "gpu1"}, "already has a node named gpu1"),
        ({"count": 3}, "exactly one node group"),
        ({"count": 0, "add": "x"}, "exactly one of"),
    ],
)
def test_edits_that_cannot_be_made_say_why(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ClusterError, match=message):
        edit_nodes(TWO_GROUPS, "lab", **kwargs)  # type: ignore[arg-type]


def test_an_unknown_site_is_named() -> None:
    with pytest.raises(ClusterError, match=r"no site named 'gone'.*cloud, lab"):
        edit_nodes(TWO_GROUPS, "gone", count=1)


@pytest.mark.parametrize(
    ("user", "lifespan", "message"),
    [("a b", 60, "not a user name"), ("x=y", 60, "not a user name"), ("bob", 0, "lifespan")],
)
def test_token_refuses_bad_arguments_before_asking_slurm(
    user: str, lifespan: int, message: str
) -> None:
    with pytest.raises(ClusterError, match=message):
        token(None, user, lifespan)  # type: ignore[arg-type]
