"""Removing what the harness made (this run's or a killed run's): engines, containers, the
registry, sshds, namespaces (their veths and iptables rules go with them), routes, certs, data,
the bastion variant's login user."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.multihost.names import (
    CERTS_D,
    CGROUP,
    CLOUD_LINK,
    DATA,
    LOGIN_USER,
    NETNS_DIR,
    PREFIX,
    RUN,
)


def _pid(pidfile: Path) -> int | None:
    with contextlib.suppress(ValueError, OSError):
        return int(pidfile.read_text().strip() or 0) or None
    return None


def alive(pid: int) -> bool:
    """Running (a zombie is not: reaped here when it is our child)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def stop_pids(pids: list[int], grace: float) -> None:
    """SIGTERM them all at once, SIGKILL what still runs after `grace` seconds."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def stop_pid(pidfile: Path, proc: subprocess.Popen[bytes] | None, grace: float) -> None:
    pid = proc.pid if proc is not None else _pid(pidfile)
    if pid is not None:
        stop_pids([pid], grace)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
    pidfile.unlink(missing_ok=True)


def cleanup_stale() -> None:
    """Remove whatever a harness run (this one or a killed one) left: engines, containers,
    the registry, namespaces (with their veths and iptables rules), routes, certs, data."""
    pidfiles = sorted(RUN.glob("*.pid")) if RUN.exists() else []
    stop_pids([p for p in map(_pid, pidfiles) if p is not None], grace=30)
    # Containers whose engine was killed: their processes live in the engine's cgroup parent.
    for procs in CGROUP.glob(f"*/{PREFIX}-*/**/cgroup.procs"):
        for pid in procs.read_text().split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
    for pid in _pids_mentioning(str(RUN)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    for mount in reversed(_mounts_under((str(RUN), str(DATA)))):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
    if NETNS_DIR.exists():
        for ns in sorted(NETNS_DIR.glob(f"{PREFIX}-*")):
            subprocess.run(["ip", "netns", "del", ns.name], capture_output=True, check=False)
    # Gone with hmh-inet, normally.
    subprocess.run(["ip", "link", "del", f"{PREFIX}-root"], capture_output=True, check=False)
    for cg in sorted(CGROUP.glob(f"*/{PREFIX}-*/**/"), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            cg.rmdir()
    for certs in CERTS_D.glob(f"{CLOUD_LINK[1]}:*") if CERTS_D.exists() else []:
        shutil.rmtree(certs, ignore_errors=True)
    shutil.rmtree(RUN, ignore_errors=True)
    shutil.rmtree(DATA, ignore_errors=True)
    if _user_exists(LOGIN_USER):
        subprocess.run(["userdel", "-f", LOGIN_USER], capture_output=True, check=False)


def _user_exists(name: str) -> bool:
    with contextlib.suppress(OSError):
        return any(line.split(":", 1)[0] == name for line in Path("/etc/passwd").open())
    return False


def _pids_mentioning(text: str) -> list[int]:
    out = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if text.encode() in (proc / "cmdline").read_bytes() and int(proc.name) != os.getpid():
                out.append(int(proc.name))
    return out


def _mounts_under(roots: tuple[str, ...]) -> list[str]:
    mounts = []
    for line in Path("/proc/mounts").read_text().splitlines():
        target = line.split()[1]
        if target.startswith(roots):
            mounts.append(target)
    return mounts
