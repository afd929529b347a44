"""GPU discovery for `gpus: auto`: ask nvidia-smi on this host, fill in indices and a type.

`resolve_auto_gpus` runs between loading the definition and planning: it returns a Stack with
no `auto` left, so the plan and every renderer see plain index lists. A definition without
`auto` never runs nvidia-smi, so generating a CPU-only or explicit-GPU cluster needs no driver.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass

from hpcstack.definition.model import NodeGroup, Site, Stack
from hpcstack.errors import HpcStackError
from hpcstack.run.nvidia import NvidiaSmiRunner, run_nvidia_smi

QUERY_FIELDS = ("index", "uuid", "name", "memory.total")
QUERY_ARGS = (f"--query-gpu={','.join(QUERY_FIELDS)}", "--format=csv,noheader,nounits")

# Words in a marketing name that say nothing about the model.
_VENDOR_WORDS = frozenset({"nvidia", "tesla", "geforce", "quadro"})
# A family word that needs the next word to name a model ("RTX 4090", "GTX 1080").
_FAMILY_WORDS = frozenset({"rtx", "gtx", "titan"})
# Words after the model that make it a different card ("4070 Ti SUPER", "RTX 6000 Ada").
_VARIANT_WORDS = frozenset({"ti", "super", "ada"})
_TYPE_MAX = 31  # model.NodeGroup.gpu_type allows 31 characters


@dataclass(frozen=True)
class GpuInfo:
    index: int
    uuid: str
    name: str
    memory_mib: int

    @property
    def slurm_type(self) -> str:
        return gpu_type_from_name(self.name)


GpuQuery = Callable[[], list[GpuInfo]]


class GpuDiscoveryError(HpcStackError):
    """`gpus: auto` cannot be resolved on this host."""


def gpu_type_from_name(name: str) -> str:
    """A Slurm GRES type from nvidia-smi's name: "NVIDIA A100-SXM4-80GB" -> "a100"."""
    words = [w for w in re.split(r"\s+", name.strip().lower()) if w]
    words = [w for w in words if w not in _VENDOR_WORDS]
    if not words:
        return "gpu"
    # The form factor and memory follow a dash ("V100-PCIE-16GB"): the model is before it.
    parts = [words[0].split("-")[0]]
    rest = words[1:]
    if parts[0] in _FAMILY_WORDS and rest:
        parts.append(rest.pop(0).split("-")[0])
    while rest and rest[0] in _VARIANT_WORDS:
        parts.append(rest.pop(0))
    slug = re.sub(r"[^a-z0-9]", "", "".join(parts))[:_TYPE_MAX]
    return slug if slug and slug[0].isalnum() else "gpu"


def parse_gpu_csv(text: str) -> list[GpuInfo]:
    """Parse `nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits`."""
    gpus = []
    rows = csv.reader(text.splitlines(), skipinitialspace=True)
    for lineno, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) != len(QUERY_FIELDS):
            raise GpuDiscoveryError(
                f"nvidia-smi output line {lineno}: expected {len(QUERY_FIELDS)} fields "
                f"({', '.join(QUERY_FIELDS)}), got {len(row)}: {','.join(row)!r}"
            )
        index, uuid, name, memory = (field.strip() for field in row)
        try:
            gpus.append(GpuInfo(int(index), uuid, name, _mib(memory)))
        except ValueError:
            raise GpuDiscoveryError(
                f"nvidia-smi output line {lineno}: index {index!r} is not a number"
            ) from None
    return sorted(gpus, key=lambda g: g.index)


def _mib(text: str) -> int:
    # "[N/A]" shows for memory on some boards and MIG setups: unknown is 0, not an error.
    return int(text) if text.isdigit() else 0


def query_gpus(runner: NvidiaSmiRunner = run_nvidia_smi) -> list[GpuInfo]:
    """The GPUs of this host, by index. No GPU is an empty list; no driver raises."""
    return parse_gpu_csv(runner(QUERY_ARGS))


def uses_auto(stack: Stack) -> bool:
    return any(g.gpus == "auto" for s in stack.sites for g in s.nodes)


def resolve_auto_gpus(stack: Stack, query: GpuQuery = query_gpus) -> Stack:
    """A copy of `stack` where every `gpus: auto` group has explicit GPUs and a type.

    One node takes every GPU as an index list. A group of N nodes splits them evenly, as a
    count per node (the plan hands out consecutive indices); the remainder stays unused.
    """
    if not uses_auto(stack):
        return stack
    gpus = query()
    sites = [_resolve_site(stack, i, site, gpus) for i, site in enumerate(stack.sites)]
    # Validate again: the copy must obey the same rules as a hand-written definition.
    return Stack.model_validate(stack.model_copy(update={"sites": sites}).model_dump())


def _resolve_site(stack: Stack, i: int, site: Site, gpus: list[GpuInfo]) -> Site:
    groups = [
        _resolve_group(f"sites[{i}].nodes[{j}]", g, gpus) if g.gpus == "auto" else g
        for j, g in enumerate(site.nodes)
    ]
    return site.model_copy(update={"nodes": groups})


def _resolve_group(path: str, group: NodeGroup, gpus: list[GpuInfo]) -> NodeGroup:
    if not gpus:
        raise GpuDiscoveryError(
            f"{path}.gpus is 'auto' but nvidia-smi found no GPU on this host "
            "(give a number or a list of indices, or run generate on the GPU host)"
        )
    per_node = len(gpus) // group.count
    if per_node == 0:
        raise GpuDiscoveryError(
            f"{path}.gpus is 'auto' for {group.count} nodes but this host has only "
            f"{len(gpus)} GPU(s): lower 'count' or give GPUs explicitly"
        )
    used = gpus[: per_node * group.count]
    value: int | list[int] = [g.index for g in used] if group.count == 1 else per_node
    return group.model_copy(
        update={"gpus": value, "gpu_type": group.gpu_type or _one_type(path, used)}
    )


def _one_type(path: str, gpus: list[GpuInfo]) -> str:
    types = sorted({g.slurm_type for g in gpus})
    if len(types) == 1:
        return types[0]
    found = ", ".join(f"{g.index}: {g.name}" for g in gpus)
    raise GpuDiscoveryError(
        f"{path}.gpus is 'auto' but this host mixes GPU models ({found}): set 'gpu_type' on "
        "the node, or split the GPUs over nodes with explicit index lists and a type each"
    )
