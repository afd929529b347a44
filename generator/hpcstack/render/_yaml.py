"""The one YAML writer for generated files: block style, keys in the order given, no aliases."""

from __future__ import annotations

from typing import Any

import yaml

# libyaml's emitter where PyYAML has it (its wheels and Debian's python3-yaml do): the same
# text, several times faster, which a 1,000-node definition's compose files need.
_SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _NoAliasDumper(_SafeDumper):  # type: ignore[valid-type,misc]
    """Plain YAML: no &anchors/*aliases for shared sub-dicts (people read these files)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(value: Any, *, width: int = 100, indent: int = 0) -> str:
    """`value` as YAML; `indent` pads every non-empty line (a block inside a template)."""
    text = yaml.dump(
        value, Dumper=_NoAliasDumper, sort_keys=False, default_flow_style=False, width=width
    )
    if not indent:
        return text
    pad = " " * indent
    return "".join(pad + line if line.strip() else line for line in text.splitlines(True))
