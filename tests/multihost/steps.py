"""The separate-host steps, as the README's "Separate hosts (tested)" section shows them and
as the multi-host tests run them, command for command (a test keeps the two in step).

`{site}` is the workstation's site. Each host has its own directory (its own disk) and its own
Docker engine (DOCKER_HOST); only stack.yaml and the site's secrets archive are copied over.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

GENERATOR = Path(__file__).resolve().parents[2] / "generator"

# On the machine that builds the images (it reaches the package mirror and the registry):
BUILD_STEPS = ["hpcstack generate", "hpcstack images --push"]
# On the cloud host, once; then once per workstation site:
CLOUD_STEPS = ["hpcstack generate", "hpcstack up --site cloud --pull"]
EXPORT_STEP = "hpcstack secrets export --site {site} -o {site}-secrets.tar"
# On each workstation, in a directory holding stack.yaml and {site}-secrets.tar:
WORKSTATION_STEPS = [
    "hpcstack secrets import {site}-secrets.tar",
    "hpcstack generate --site {site}",
    "hpcstack up --site {site} --pull",
    "hpcstack status --site {site}",
]


def run_step(
    step: str, cwd: Path, env: dict[str, str], check: bool = True, timeout: int = 900
) -> subprocess.CompletedProcess[str]:
    """Run one `hpcstack ...` line in `cwd` with this host's environment (its DOCKER_HOST)."""
    argv = shlex.split(step)
    assert argv[0] == "hpcstack", step
    r = subprocess.run(
        [sys.executable, "-m", "hpcstack.cli.main", *argv[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**env, "PYTHONPATH": str(GENERATOR), "COLUMNS": "200"},
    )
    print(f"$ {step}   (in {cwd.name}, DOCKER_HOST={env.get('DOCKER_HOST', '')})")
    print(r.stdout[-3000:], r.stderr[-3000:], sep="\n")
    if check and r.returncode != 0:
        raise AssertionError(f"{step} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def root_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DOCKER_HOST", None)
    return env
