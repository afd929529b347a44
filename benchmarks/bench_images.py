"""Image sizes (each, and all together with shared layers counted once) and the cold path.

The cold path is what a new user waits for: a clean clone, then `make up` with nothing cached.
It runs in a fresh clone of this commit with a definition of its own (cluster name, subnets,
ports, image tag) and a base image under a bench-only tag, made by debootstrap as on a machine
without a registry; no build cache can match a new base, so every image builds from nothing.
The user's images, build cache and cluster are left alone. The steps run one `make` target at a
time (venv, base-image, images, up), the same work `make up` does in one go, so the table can say
which part bounds the total. pip's download cache is the machine's own (a fresh machine has none).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from common import ENV, REPO, Figure, hpcstack, sh, timed

IMAGES = ("slurm", "compute", "mariadb", "prometheus", "node-exporter")


def inspect(ref: str) -> dict[str, Any] | None:
    out = sh("docker", "image", "inspect", ref, check=False)
    docs = json.loads(out) if out.strip() else []
    return docs[0] if docs else None


def together(images: dict[str, dict[str, Any]]) -> int:
    """Bytes on disk for all of them: each image's size less that of the largest image whose
    layers it starts with (its base, or the image it was built FROM), so shared layers count
    once. Exact when every shared prefix is itself one of the images, as here."""
    layers = {ref: tuple(doc["RootFS"]["Layers"]) for ref, doc in images.items()}
    total = 0
    for ref, doc in images.items():
        mine = layers[ref]
        parents = [
            images[other]["Size"]
            for other, theirs in layers.items()
            if other != ref and len(theirs) < len(mine) and mine[: len(theirs)] == theirs
        ]
        total += doc["Size"] - max(parents, default=0)
    return total


def image_figures(prefix: str, tag: str, base: str) -> list[Figure]:
    figures = []
    found: dict[str, dict[str, Any]] = {}
    base_doc = inspect(base)
    if base_doc:
        found[base] = base_doc
    for name in IMAGES:
        ref = f"{prefix}-{name}:{tag}"
        doc = inspect(ref)
        if doc is None:
            raise SystemExit(f"bench: image {ref} is not built (make images)")
        found[ref] = doc
        target = 350.0 if name == "compute" else None
        figures.append(Figure(f"image_{name}", f"image {ref}", doc["Size"] / 1e6, "MB", target))
    total = together(found)
    naive = sum(d["Size"] for d in found.values() if d is not base_doc)
    figures.append(
        Figure(
            "images_together",
            f"all five images together, shared layers once (base {base} included)",
            total / 1e6,
            "MB",
            1200.0,
            note=f"sum of the five sizes, shared layers counted each time: {naive / 1e6:.0f} MB",
        )
    )
    return figures


def cold_definition(tag: str, base: str) -> dict[str, Any]:
    doc = yaml.safe_load((REPO / "stack.yaml").read_text())
    doc["cluster"]["name"] = "hpcscold"
    doc["images"].update({"tag": tag, "base": base})
    doc["tunnel"].update({"subnet": "10.24.0.0/16", "port": 51824})
    doc["monitoring"].update({"prometheus_port": 19024, "grafana_port": 13024})
    doc["sites"][0]["subnet"] = "172.24.0.0/24"
    doc["sites"][1]["subnet"] = "172.24.1.0/24"
    return doc


def cold_path(smoke: bool = False) -> list[Figure]:
    """Clean clone -> `make up` done. `smoke`: clone and generate only, with this venv."""
    tag, base = "cold", "hpcstack-coldbench:forky-slim"
    refs = [f"hpcstack-{name}:{tag}" for name in IMAGES]
    tmp = Path(tempfile.mkdtemp(prefix="hpcstack-cold-"))
    clone = tmp / "clone"
    steps: dict[str, float] = {}
    try:
        steps["clone"] = timed(lambda: sh("git", "clone", "-q", str(REPO), str(clone)))
        (clone / "stack.yaml").write_text(yaml.safe_dump(cold_definition(tag, base)))
        if smoke:
            # the clone's own generator, run by this interpreter (no venv of its own)
            env = {**ENV, "PYTHONPATH": str(clone / "generator")}
            argv = (sys.executable, "-m", "hpcstack.cli.main", "generate", "-c", "stack.yaml")
            steps["generate"] = timed(lambda: sh(*argv, cwd=clone, env=env))
        else:
            sh("docker", "rmi", "-f", base, *refs, check=False)
            for target in ("venv", "base-image", "images", "up"):
                steps[target] = timed(lambda t=target: sh("make", "-C", str(clone), t))
    finally:
        if not smoke and (clone / ".venv").exists():
            hpcstack(clone, "down", "--volumes", check=False)
            sh("docker", "rmi", "-f", *refs, base, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    total = sum(steps.values())
    detail = ", ".join(f"{k} {v:.0f} s" for k, v in steps.items())
    label = "cold path: clean clone -> `make up` done (venv, debootstrap base, builds, up)"
    if smoke:
        label = "cold path (smoke: clone + generate only)"
    return [Figure("cold_path", label, total, "s", None if smoke else 120.0, note=detail)]
