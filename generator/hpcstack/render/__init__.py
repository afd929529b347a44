"""Renderers: one per output kind, each a function Plan -> files, kept in one registry.

`render_all` is the only entry point the writer uses; a renderer never touches the disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hpcstack.errors import HpcStackError
from hpcstack.plan.topology import Plan


@dataclass(frozen=True)
class Artifact:
    """One generated file: a POSIX path relative to the output directory, its text and mode."""

    path: str
    content: str
    mode: int = 0o644


Renderer = Callable[[Plan], Iterable[Artifact]]
RENDERERS: dict[str, Renderer] = {}


def renderer(kind: str) -> Callable[[Renderer], Renderer]:
    """Register a renderer under a kind name (e.g. "compose", "slurm")."""

    def register(fn: Renderer) -> Renderer:
        if kind in RENDERERS:
            raise RuntimeError(f"renderer {kind!r} registered twice")
        RENDERERS[kind] = fn
        return fn

    return register


def render_all(plan: Plan) -> list[Artifact]:
    """Every artifact for a plan, sorted by path. Two renderers may not write one path."""
    _load_builtin_renderers()
    out: dict[str, Artifact] = {}
    owners: dict[str, str] = {}
    for kind in sorted(RENDERERS):
        for art in RENDERERS[kind](plan):
            if art.path in out:
                raise HpcStackError(
                    f"internal: {art.path} rendered by both {owners[art.path]} and {kind}"
                )
            out[art.path] = art
            owners[art.path] = kind
    return [out[p] for p in sorted(out)]


def _load_builtin_renderers() -> None:
    # Importing registers them; done lazily so importing the package stays cheap.
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
