"""The harness's registry: Debian's docker-registry in one namespace, TLS with a CA made per run.

The CA goes to /etc/docker/certs.d/<ip>:<port>/ca.crt, which every engine on this machine reads
(the root engine too: it pushes there)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.multihost.names import CERTS_D, NETNS_DIR, REGISTRY_PORT, RUN
from tests.multihost.tls import make_tls


def start_registry(netns: str, ip: str, storage: Path) -> subprocess.Popen[bytes]:
    """Serve a registry at https://ip:REGISTRY_PORT from `netns`, layers under `storage`."""
    if not shutil.which("docker-registry"):
        raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
    rdir = RUN / "registry"
    rdir.mkdir(parents=True, exist_ok=True)
    ca_pem, cert_pem, key_pem = make_tls(ip)
    (rdir / "cert.pem").write_bytes(cert_pem)
    (rdir / "key.pem").write_bytes(key_pem)
    os.chmod(rdir / "key.pem", 0o600)
    certs = CERTS_D / f"{ip}:{REGISTRY_PORT}"
    certs.mkdir(parents=True, exist_ok=True)
    (certs / "ca.crt").write_bytes(ca_pem)
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(storage)}},
        "http": {
            "addr": f"0.0.0.0:{REGISTRY_PORT}",
            "tls": {"certificate": str(rdir / "cert.pem"), "key": str(rdir / "key.pem")},
        },
    }
    (rdir / "config.yml").write_text(json.dumps(config))
    logf = (RUN / "registry.log").open("ab")
    proc = subprocess.Popen(
        [
            "nsenter",
            f"--net={NETNS_DIR / netns}",
            "docker-registry",
            "serve",
            str(rdir / "config.yml"),
        ],
        stdout=logf,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    (RUN / "registry.pid").write_text(f"{proc.pid}\n")
    return proc
