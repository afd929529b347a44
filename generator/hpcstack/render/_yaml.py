"""The one YAML writer for generated files: block style, keys in the order given, no aliases."""

from __future__ import annotations

from typing import Any

import yaml

from hpcstack.render._yaml_block import block_yaml

# libyaml's emitter where PyYAML has it (its wheels and Debian's python3-yaml do): the same
# text, several times faster, which a 1,000-node definition's compose files need.
_SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _NoAliasDumper(_SafeDumper):  # type: ignore[valid-type,misc]
    """Plain YAML: no &anchors/*aliases for shared sub-dicts (people read these files)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _pyyaml(value: Any, width: int) -> str:
    return yaml.dump(
        value, Dumper=_NoAliasDumper, sort_keys=False, default_flow_style=False, width=width
    )


def to_yaml(value: Any, *, width: int = 100, indent: int = 0) -> str:
    """`value` as YAML; `indent` pads every non-empty line (a block inside a template).

    The text is PyYAML's; `block_yaml` writes it without PyYAML's nodes where it can be sure."""
    text = block_yaml(value, width, _pyyaml)
    if text is None:
        text = _pyyaml(value, width)
    if not indent:
        return text
    pad = " " * indent
    return "".join(pad + line if line.strip() else line for line in text.splitlines(True))
