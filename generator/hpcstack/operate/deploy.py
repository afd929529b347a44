"""`hpcstack deploy cloud`: copy the cloud site's bundle to the controller and start it.

The controller sits in a private subnet; the copy goes over SFTP through the bastion's sshd
(ProxyJump), skipping unchanged files. Before compose starts, cloud-init must have finished
installing Docker: a failed cloud-init stops the deploy with what to read, instead of a
confusing "docker: not found" later.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hpcstack.errors import StateError
from hpcstack.operate.bundle import bundle_files
from hpcstack.plan.topology import Plan
from hpcstack.run.ssh import Endpoint, FileToSend, Remote, RunResult, SshSettings

REMOTE_ROOT = "/opt/hpcstack"
CLOUD_INIT_LOG = "/var/log/cloud-init-output.log"
CLOUD_INIT_ABSENT = "status: absent"

# `cloud-init status --wait` blocks until cloud-init is done; exit 0 done, 1 error, 2 done with
# recoverable errors ("degraded"). A host without cloud-init (a lab machine) reports "absent".
WAIT_FOR_CLOUD_INIT = [
    "sh",
    "-c",
    "if command -v cloud-init >/dev/null 2>&1; then exec cloud-init status --wait --long; "
    f"else echo '{CLOUD_INIT_ABSENT}'; fi",
]

Progress = Callable[[str, int, int], None]  # (remote path, done, total)


@dataclass(frozen=True)
class DeployResult:
    changed: int
    total: int
    cloud_init: str  # "done", "degraded", "absent"


class CloudInitError(StateError):
    """cloud-init failed on the controller: Docker may be missing."""


def cloud_init_state(result: RunResult, host: str) -> str:
    """Read `cloud-init status --wait`: 'done', 'degraded', 'absent'; raise on an error."""
    text = result.stdout + result.stderr
    if CLOUD_INIT_ABSENT in text:
        return "absent"
    if result.returncode == 1 or "status: error" in text:
        detail = " ".join(line.strip() for line in text.splitlines() if line.strip())[:400]
        raise CloudInitError(
            f"cloud-init failed on {host} ({detail or f'exit {result.returncode}'}): "
            f"read `sudo tail -50 {CLOUD_INIT_LOG}` there, fix the cause (often no network "
            "during apt), then `sudo cloud-init clean --reboot` or replace the instance"
        )
    if result.returncode == 2:
        return "degraded"
    if result.returncode != 0:
        raise CloudInitError(f"`cloud-init status` on {host} exited {result.returncode}: {text}")
    return "done"


def up_command(plan: Plan, remote_root: str) -> list[str]:
    compose_file = posixpath.join(remote_root, "compose", f"{plan.controller.name}.yml")
    return ["docker", "compose", "-f", compose_file, "up", "-d", "--wait"]


def deploy_cloud(
    plan: Plan,
    out_dir: Path,
    bastion: Endpoint | None,
    controller: Endpoint,
    settings: SshSettings,
    remote_root: str = REMOTE_ROOT,
    progress: Progress | None = None,
) -> DeployResult:
    """Wait for cloud-init, copy the bundle (through the bastion), start the cloud site."""
    # Directories such as slurm/ are bind-mounted whole and read inside by non-root users
    # (slurmctld as slurm): 0755, not 0750, as the login user owns them on the controller.
    files = [
        FileToSend(f.path, f.rel, f.mode, dir_mode=0o700 if f.secret else 0o755)
        for f in bundle_files(plan, plan.controller, out_dir)
    ]
    done = 0

    def advance(item: FileToSend, changed: bool) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(item.remote, done, len(files))

    with Remote(controller, settings, jump=bastion) as remote:
        state = cloud_init_state(remote.run(WAIT_FOR_CLOUD_INIT, check=False), controller.host)
        changed = remote.sync(remote_root, files, advance)
        remote.run(up_command(plan, remote_root))
    return DeployResult(changed, len(files), state)
