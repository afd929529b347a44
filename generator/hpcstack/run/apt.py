"""Apt options for image builds on this host (the Python twin of scripts/apt-options.sh).

A frozen Debian mirror serves Release files whose Valid-Until has passed; apt then refuses them
unless told `-o Acquire::Check-Valid-Until=false`. Only then is the option returned: a host with a
live mirror builds with apt's default checks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

LISTS = Path("/var/lib/apt/lists")
FROZEN_OPTION = "-o Acquire::Check-Valid-Until=false"


def valid_until(release_text: str) -> datetime | None:
    for line in release_text.splitlines():
        if line.startswith("Valid-Until:"):
            try:
                return parsedate_to_datetime(line.split(":", 1)[1].strip())
            except (TypeError, ValueError):
                return None
    return None


def frozen_mirror_options(suite: str, lists: Path = LISTS, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    for pattern in (f"*_dists_{suite}_InRelease", f"*_dists_{suite}_Release"):
        for path in sorted(lists.glob(pattern)):
            try:
                until = valid_until(path.read_text(errors="replace"))
            except OSError:
                continue
            if until is not None:
                return FROZEN_OPTION if until < now else ""
    return ""
