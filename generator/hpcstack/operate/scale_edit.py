"""`hpcstack scale`'s edit of stack.yaml: one site's node list, the rest of the file untouched.

A round-trip YAML load (ruamel.yaml) keeps the user's comments, key order and layout; only the
site's `nodes:` entries change. The result is text, checked like any edited definition before
anything is written.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.util import load_yaml_guess_indent

from hpcstack.errors import ClusterError

# What a new node copies from its site's first node group (never its name or count).
_TEMPLATE_KEYS = ("cpus", "memory_mb", "gpus", "gpu_type", "features")


@dataclass(frozen=True)
class NodeEdit:
    text: str
    added: list[str]
    removed: list[str]


def _yaml(text: str) -> tuple[YAML, Any]:
    """A round-trip loader and the document, writing back with the file's own indentation."""
    _, seq_indent, offset = load_yaml_guess_indent(text)
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap a user's long line
    # ruamel's guess: a sequence's indent (dash included) and the dash's offset; mappings in
    # the files it guesses from indent by the offset, or by 2 when items start at the dash.
    offset = offset or 0
    y.indent(mapping=offset or 2, sequence=seq_indent or 2, offset=offset)
    return y, y.load(text)


def _copy(value: Any) -> Any:
    if isinstance(value, CommentedSeq):
        seq = CommentedSeq(value)
        if value.fa.flow_style():
            seq.fa.set_flow_style()
        return seq
    return value


def _site(doc: Any, name: str) -> CommentedMap:
    sites = doc.get("sites") if isinstance(doc, CommentedMap) else None
    for site in sites or []:
        if isinstance(site, CommentedMap) and site.get("name") == name:
            return site
    known = ", ".join(str(s.get("name")) for s in sites or [] if isinstance(s, CommentedMap))
    raise ClusterError(f"no site named {name!r} in the definition (sites: {known or 'none'})")


def _names(group: CommentedMap) -> list[str]:
    if "name" in group:
        return [str(group["name"])]
    return [f"{group['prefix']}{i}" for i in range(1, int(group.get("count", 1)) + 1)]


def _all_names(nodes: CommentedSeq) -> list[str]:
    return [n for g in nodes for n in _names(g)]


def _set_count(nodes: CommentedSeq, site: str, count: int) -> None:
    groups = [g for g in nodes if "prefix" in g]
    if len(nodes) != 1 or len(groups) != 1:
        raise ClusterError(
            f"--nodes needs site {site} to have exactly one node group with `prefix:` and "
            f"`count:`; it has {len(nodes)} group(s): use --add NAME / --remove NAME"
        )
    groups[0]["count"] = count


def _add(nodes: CommentedSeq, site: str, name: str) -> None:
    if not nodes:
        raise ClusterError(f"site {site} has no nodes to copy a new node's size from")
    if name in _all_names(nodes):
        raise ClusterError(f"site {site} already has a node named {name}")
    first = nodes[0]
    group = CommentedMap(name=name)
    for key in _TEMPLATE_KEYS:
        if key in first:
            group[key] = _copy(first[key])
    last = nodes[-1]
    if "prefix" in last and name == f"{last['prefix']}{int(last.get('count', 1)) + 1}":
        last["count"] = int(last.get("count", 1)) + 1  # the next of a counted group
        return
    nodes.append(group)
    if isinstance(last, CommentedMap) and last.fa.flow_style():
        group.fa.set_flow_style()


def _remove(nodes: CommentedSeq, site: str, name: str) -> None:
    for i, group in enumerate(nodes):
        names = _names(group)
        if name not in names:
            continue
        if "name" in group:
            del nodes[i]
        elif name == names[-1]:
            if len(names) == 1:
                del nodes[i]
            else:
                group["count"] = len(names) - 1
        else:
            raise ClusterError(
                f"{name} is in the middle of the group {group['prefix']}1..{names[-1]}: only the "
                f"last of a counted group can be removed (--nodes {len(names) - 1} removes "
                f"{names[-1]}); split the group in stack.yaml to remove another"
            )
        return
    raise ClusterError(
        f"site {site} has no node named {name} (nodes: {', '.join(_all_names(nodes))})"
    )


def edit_nodes(
    text: str,
    site: str,
    count: int | None = None,
    add: str | None = None,
    remove: str | None = None,
) -> NodeEdit:
    """stack.yaml's text with site `site`'s nodes changed by exactly one of the three edits."""
    if [count, add, remove].count(None) != 2:
        raise ClusterError("give exactly one of --nodes N, --add NAME, --remove NAME")
    y, doc = _yaml(text)
    entry = _site(doc, site)
    nodes = entry.get("nodes")
    if not isinstance(nodes, CommentedSeq):
        nodes = CommentedSeq()
        entry["nodes"] = nodes
    before = _all_names(nodes)
    if count is not None:
        if count < 1:
            raise ClusterError("--nodes must be 1 or more (`hpcstack down --site` stops a site)")
        _set_count(nodes, site, count)
    elif add is not None:
        _add(nodes, site, add)
    elif remove is not None:
        _remove(nodes, site, remove)
    after = _all_names(nodes)
    buf = io.StringIO()
    y.dump(doc, buf)
    return NodeEdit(
        buf.getvalue(),
        added=[n for n in after if n not in before],
        removed=[n for n in before if n not in after],
    )
