"""The package's data tables (definition/grammars.toml, render/dashboards.toml) are checked as
they are read: a malformed entry fails loudly, naming the table and the entry."""

from __future__ import annotations

import re

import pytest

from hpcstack import tables
from hpcstack.definition import grammar
from hpcstack.render import grafana_panels

KEYS = {"name": str, "max_len": int, "empty_ok": bool}


def test_an_entry_with_every_key_of_its_type_passes() -> None:
    value = {"name": "x", "max_len": 3, "empty_ok": True}
    assert tables.entry("t.toml [a]", value, KEYS, {"name"}) is value


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("a string", "t.toml [a]: not a table"),
        ({"name": "x", "colour": "red"}, "t.toml [a]: colour = 'red' is not allowed here"),
        ({"name": "x", "max_len": "3"}, "t.toml [a]: max_len = '3' is not allowed here"),
        ({"name": "x", "max_len": True}, "t.toml [a]: max_len = True is not allowed here"),
        ({"max_len": 3}, "t.toml [a]: missing name"),
    ],
)
def test_a_malformed_entry_is_refused_with_where(value: object, says: str) -> None:
    with pytest.raises(tables.TableError) as exc:
        tables.entry("t.toml [a]", value, KEYS, {"name"})
    assert str(exc.value) == says


def test_fill_puts_fragments_in_and_leaves_braces_alone() -> None:
    assert tables.fill("w", "<A>{1,5}(?:\\.<A>)*", {"A": "[a-z]"}) == "[a-z]{1,5}(?:\\.[a-z])*"
    assert tables.fill("w", "x < 3 and y>2", {}) == "x < 3 and y>2"
    with pytest.raises(tables.TableError, match=r"^w: no fragment <B>$"):
        tables.fill("w", "<B>", {"A": "a"})


def test_a_table_that_is_not_toml_names_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def joinpath(self, name: str) -> Broken:
            return self

        def read_text(self, encoding: str) -> str:
            return "[grammar.X\nname = 1"

    monkeypatch.setattr("importlib.resources.files", lambda package: Broken())
    with pytest.raises(tables.TableError, match=r"^grammars\.toml: "):
        tables.load("hpcstack.definition", "grammars.toml")


def test_the_shipped_tables_load_with_every_name_they_use() -> None:
    # Every field's grammar, every grammar's extra test and every panel query come from the
    # tables; the names other modules import are there.
    assert grammar.FIELDS["tunnel.endpoint"][0] is grammar.HOST
    assert grammar.HOST.extra is grammar.EXTRAS["host"]
    assert grammar.HOST.refuse("vpn.example.org") is None
    assert grammar.HOST.refuse("1.2.3.999") == "looks like an IPv4 address but is not one"
    assert set(grafana_panels.DASHBOARDS) == {"cluster-overview", "nodes", "gpus", "scheduler"}
    panels = [p for _, ps in grafana_panels.DASHBOARDS.values() for p in ps]
    assert all(p.kind in grafana_panels.KINDS and p.queries for p in panels)
    texts = [q.expr + q.legend for p in panels for q in p.queries]
    assert texts and not any(re.search(r"<[A-Z][A-Z0-9_]*>", t) for t in texts)
