"""The REST API's tokens: `hpcstack token` asks slurmctld (`scontrol token`) for a JWT.

The token is signed by slurmctld with the cluster's HS256 key (secrets/jwt_hs256.key); it goes
to stdout only, never to a log: the docker choke point logs the command line, and the command
line carries no secret.
"""

from __future__ import annotations

import re

from hpcstack.contract import JOB_USER
from hpcstack.errors import ClusterError
from hpcstack.operate.session import Cluster

# The OpenAPI data-parser version of each packaged slurmrestd (the newest its plugins carry).
REST_API_VERSIONS: dict[str, str] = {"26.05": "v0.0.45", "24.11": "v0.0.42"}
DEFAULT_LIFESPAN_S = 1800  # scontrol's own default
MAX_LIFESPAN_S = 365 * 86400
# What scontrol passes on as one `username=` value: no blanks, no `=`, no control characters.
_USER_RE = re.compile(r"[^\s=\x00-\x1f\x7f]{1,64}\Z")
_TOKEN_RE = re.compile(r"^SLURM_JWT=(\S+)$", re.M)


def api_version(cluster: Cluster) -> str:
    return REST_API_VERSIONS[cluster.plan.stack.cluster.slurm_release]


def token(cluster: Cluster, user: str | None = None, lifespan: int | None = None) -> str:
    """A JWT for `user` (default: the images' job user), valid for `lifespan` seconds."""
    name = user or JOB_USER
    if not _USER_RE.match(name):
        raise ClusterError(f"{name!r} is not a user name Slurm can take (no blanks, no '=')")
    seconds = DEFAULT_LIFESPAN_S if lifespan is None else lifespan
    if not 1 <= seconds <= MAX_LIFESPAN_S:
        raise ClusterError(f"lifespan {seconds}: give 1 to {MAX_LIFESPAN_S} seconds")
    argv = ["scontrol", "token", f"username={name}", f"lifespan={seconds}"]
    out = cluster.docker.exec_capture(cluster.controller_container(), argv)
    found = _TOKEN_RE.search(out)
    if found is None:
        raise ClusterError("scontrol token printed no SLURM_JWT=... line (is auth/jwt loaded?)")
    return found.group(1)
