"""The bastion's forwarding rules as cloud-init gets them: templates/tunnel-forward.nft.tftpl
rendered by `terraform console` (the very template instances.tf hands cloud-init). Used by
tests/test_bastion_forward.py and by the multi-host bastion variant (tests/multihost/bastion.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "terraform" / "aws" / "templates" / "tunnel-forward.nft.tftpl"


def render_tunnel_forward(workdir: Path, protocol: str, port: int, controller_ip: str) -> str:
    """The nft ruleset for `protocol`/`port` forwarded to `controller_ip` (terraform console
    runs in `workdir`, an empty directory: no configuration, no providers)."""
    terraform = shutil.which("terraform") or "/usr/local/bin/terraform"
    expr = (
        f'jsonencode(templatefile("{TEMPLATE}", {{ protocol = "{protocol}", '
        f'tunnel_port = {port}, controller_private_ip = "{controller_ip}" }}))\n'
    )
    result = subprocess.run(
        [terraform, "console"],
        input=expr,
        capture_output=True,
        text=True,
        cwd=workdir,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"terraform console: {result.stderr}")
    return str(json.loads(json.loads(result.stdout)))
