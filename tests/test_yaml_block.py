"""The fast YAML path writes exactly PyYAML's bytes: random documents against both of PyYAML's
emitters (libyaml's and the Python one), at wide and narrow widths, and the documents the
generator writes for a 1,000-node cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpcstack.definition.load import load_stack
from hpcstack.plan.topology import make_plan
from hpcstack.render import _yaml
from hpcstack.render._yaml_block import block_yaml
from hpcstack.render.compose import compose_site

REPO = Path(__file__).resolve().parent.parent

EMITTERS: list[type[Any]] = [yaml.SafeDumper]
if hasattr(yaml, "CSafeDumper"):
    EMITTERS.append(yaml.CSafeDumper)


def pyyaml_with(dumper: type[Any]) -> Any:
    class NoAlias(dumper):  # type: ignore[valid-type,misc]
        def ignore_aliases(self, data: Any) -> bool:
            return True

    def dump(value: Any, width: int) -> str:
        return yaml.dump(
            value, Dumper=NoAlias, sort_keys=False, default_flow_style=False, width=width
        )

    return dump


# Words that read as other types, indicators, quotes, spaces, breaks, non-ASCII, controls.
TRICKY = [
    "",
    " ",
    "true",
    "No",
    "null",
    "~",
    "1.5",
    "0x1f",
    "1e3",
    "0o17",
    "12:30",
    "2024-01-02",
    ".inf",
    "-",
    "- x",
    "-x",
    "?",
    "? x",
    ":",
    ":x",
    "a:",
    "a: b",
    "a:b",
    "#",
    "x #y",
    "x#y",
    "'",
    '"',
    "it's",
    "---",
    "...",
    "--x",
    "*a",
    "&a",
    "!t",
    "|",
    ">",
    "%",
    "@",
    "`",
    ",",
    "[",
    "]",
    "{",
    "}",
    "${A:-b}",
    "a\nb",
    "a\n\nb",
    "\n",
    "a\tb",
    "é",
    "\u2028",
    "\x85",
    "\x7f",
    "<<",
    "=",
    "a  b",
    " a",
    "a ",
    "x" * 130,
    "k " * 70,
]
WORDS = st.sampled_from(TRICKY) | st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12
)
STRINGS = st.lists(WORDS | st.text("ab :-#' ", max_size=6), max_size=12).map(" ".join) | WORDS
SCALARS = (
    STRINGS
    | st.integers(-(10**12), 10**12)
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=False)
)
KEYS = STRINGS.filter(lambda k: len(k) < 140)
DOCS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=30,
)


@pytest.mark.parametrize("dumper", EMITTERS, ids=lambda d: d.__name__)
@settings(
    max_examples=600,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(doc=DOCS, width=st.sampled_from([100, 1000, 40, 12, 5, 4, 3]))
def test_block_yaml_is_pyyaml(dumper: type[Any], doc: Any, width: int) -> None:
    dump = pyyaml_with(dumper)
    try:
        expected = dump(doc, width)
    except yaml.YAMLError:
        return  # a value PyYAML refuses: to_yaml raises the same way (it falls back)
    got = block_yaml(doc, width, dump)
    assert got is None or got == expected


def test_block_yaml_takes_the_common_cases() -> None:
    """It must not fall back on what generated files hold, or it gains nothing."""
    doc = {"a": [1, {"b": [True, None], "c": {}}, [], ["x y", "1.5"]], "d": "${A:-b}", "e": ""}
    assert block_yaml(doc, 100, lambda v, w: pytest.fail("fell back")) is not None
    # A float, a multi-line string, a long folded line: PyYAML writes them in their place.
    doc2 = {"f": 1.5, "g": ["a\nb"], "h": {"i": "word " * 30}}
    assert block_yaml(doc2, 100, pyyaml_with(EMITTERS[-1])) == pyyaml_with(EMITTERS[-1])(doc2, 100)


def test_compose_files_of_a_large_cluster(tmp_path: Path) -> None:
    """The 1,000-node benchmark's compose documents, byte for byte, with the fast path taken."""
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from bench_generate import big_definition
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    config = tmp_path / "stack.yaml"
    config.write_text(yaml.safe_dump(big_definition(4, 50), sort_keys=False))
    plan = make_plan(load_stack(config))
    for site in plan.sites:
        doc = compose_site(plan, site)
        fast = block_yaml(doc, 100, lambda v, w: pytest.fail("fell back"))
        assert fast == _yaml._pyyaml(doc, 100)
