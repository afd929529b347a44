"""Every string of the definition against the grammar of the file it lands in (grammar.FIELDS)."""

from __future__ import annotations

from collections.abc import Iterator

from hpcstack.definition.grammar import IMAGE_REF, grammar_for, string_fields
from hpcstack.definition.model import Stack
from hpcstack.definition.registry import check
from hpcstack.errors import Problem

# The images the generated compose files name: their full references must stay valid.
IMAGE_NAMES = ("slurm", "compute", "compute-gpu", "mariadb", "prometheus", "node-exporter")


def _shown(value: str, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


@check
def strings_match_their_grammar(stack: Stack) -> Iterator[Problem]:
    for path, value in string_fields(stack):
        grammar, lands = grammar_for(path)
        reason = grammar.refuse(value)
        if reason is None:
            continue
        detail = "" if reason == "does not match" else f": it {reason}"
        yield Problem(
            path,
            f"{_shown(value)} is not {grammar.name}{detail}",
            hint=f"{grammar.example}; the value is written into {lands}",
        )


@check
def image_references_valid(stack: Stack) -> Iterator[Problem]:
    """registry + prefix + name + tag together must still be one image reference."""
    images = stack.images
    parts = ("images.registry", "images.prefix", "images.tag")
    if any(grammar_for(p)[0].refuse(getattr(images, p.split(".")[1])) for p in parts):
        return  # the part itself is reported above
    for name in IMAGE_NAMES:
        ref = images.ref(name)
        if IMAGE_REF.refuse(ref):
            yield Problem(
                "images.prefix",
                f"the image reference {_shown(ref)} is not valid (at most 255 characters)",
            )
            return
