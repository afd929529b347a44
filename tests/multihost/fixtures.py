"""The `multihost` fixture (import it into a test module: `from tests.multihost.fixtures import
multihost, multihost_factory`): one harness (namespaces, engines, NAT, registry) per test session.

Other test modules build on it: ask for `multihost` and talk to `multihost.cloud.docker_host`,
`multihost.workstation("ws1").env`, `multihost.cut("ws1")`, ... (see harness.py). Tests using it
are marked `docker` and `multihost`; they need root (namespaces, iptables, dockerd).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from tests.multihost.harness import MultiHost


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def multihost_factory() -> Iterator[list[MultiHost]]:
    """Every harness made in this session, torn down at its end (and at exit, and on --cleanup)."""
    made: list[MultiHost] = []
    yield made
    for mh in made:
        mh.down()


def new_multihost(
    made: list[MultiHost], cls: type[MultiHost] = MultiHost, **kw: object
) -> MultiHost:
    """A fresh topology (the previous one in this session is torn down first: one at a time);
    `cls`: MultiHost or a variant (tests.multihost.bastion.BastionMultiHost)."""
    if os.geteuid() != 0:
        message = "the multi-host harness needs root (network namespaces, iptables, dockerd)"
        if _in_ci():
            pytest.fail(f"CI: {message}", pytrace=False)
        pytest.skip(message)
    for old in made:
        old.down()
    mh = cls(**kw)  # type: ignore[arg-type]
    made.append(mh)
    return mh.up()


@pytest.fixture(scope="module")
def multihost(multihost_factory: list[MultiHost]) -> MultiHost:
    """The plain topology: cloud host (udp/51820 + registry open), two NATed workstations."""
    return new_multihost(multihost_factory)
