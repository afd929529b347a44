"""Shared fixtures. Tests marked `docker` need a running engine: skipped on a laptop without
one, a failure under CI (CI=true), never a silent skip there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "generator"))

_ENGINE: bool | None = None


def pytest_configure(config: pytest.Config) -> None:
    # Image builds in tests use the same apt options `hpcstack up` works out: only for a frozen
    # Debian mirror (expired Release files), nothing on a live one.
    if "HPCSTACK_APT_OPTIONS" not in os.environ:
        from hpcstack.run.apt import frozen_mirror_options

        os.environ["HPCSTACK_APT_OPTIONS"] = frozen_mirror_options("forky")


def engine_running() -> bool:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = shutil.which("docker") is not None and (
            subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0
        )
    return _ENGINE


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("docker") is None or engine_running():
        return
    message = "needs a running Docker engine (scripts/install-docker.sh, or `make test`)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI: {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture
def defs() -> Path:
    return REPO / "tests" / "fixtures" / "definitions"
