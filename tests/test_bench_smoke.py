"""`make bench` still runs: each figure's code path at a tiny size (`benchmarks/run.py --smoke`).

Nothing here is timed: the figures themselves are `make bench`'s, on the machine it runs on.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def smoke(tmp_path: Path, only: str) -> dict[str, dict[str, object]]:
    out = tmp_path / "results.json"
    r = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "run.py"),
            "--smoke",
            "--only",
            only,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "| figure | measured |" in r.stdout
    doc = json.loads(out.read_text())
    assert doc["smoke"] is True
    figures = {f["key"]: f for f in doc["figures"]}
    for key, fig in figures.items():
        assert isinstance(fig["value"], float) and math.isfinite(fig["value"]), key
    return figures


def test_generator_exporter_and_cold_path_benchmarks_run(tmp_path: Path) -> None:
    figures = smoke(tmp_path, "exporter,generate,cold")
    assert set(figures) == {"exporter_10k", "generate", "generate_deterministic", "cold_path"}
    assert figures["generate_deterministic"]["value"] == 0.0


@pytest.mark.docker
def test_cluster_and_image_benchmarks_run(tmp_path: Path) -> None:
    figures = smoke(tmp_path, "cluster,sharedfs,images")
    for key in (
        "up_idle",
        "first_job",
        "throughput_ratio",
        "srun_ratio",
        "images_together",
        "sharedfs_write_ratio",
        "sharedfs_read_ratio",
    ):
        assert figures[key]["value"] > 0, key
