#!/bin/bash
# hpcstack-bundle SOURCE BUNDLE: an OCI bundle for `srun --container=BUNDLE` (containers.enabled)
# from an image's root filesystem. SOURCE is a tarball (`docker export`, or compressed: tar
# reads gzip, xz, zstd), `-` for one on stdin, or a directory. BUNDLE/rootfs gets the files,
# BUNDLE/config.json a plain rootless spec; hpcstack-oci-run fits it to each job's user at run
# time, so one bundle on the shared filesystem serves every user on every node.
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/hpcstack/contract.sh

die() { printf 'hpcstack-bundle: error: %s\n' "$*" >&2; exit 1; }
[ $# -eq 2 ] || { printf 'usage: hpcstack-bundle SOURCE(tarball, -, or directory) BUNDLE\n' >&2; exit 2; }
src=$1 dest=$2
[ ! -e "$dest/rootfs" ] || die "$dest/rootfs exists: remove it or choose another BUNDLE"
mkdir -p "$dest/rootfs"
# Device nodes are left out (only root may make them; the runtime gives the container its /dev),
# and owners are the caller's: the container sees its files as the submitting user's.
untar() { tar -x -C "$dest/rootfs" --no-same-owner --exclude='./dev/*' --exclude='dev/*' "$@"; }
if [ "$src" = - ]; then
  untar -f -
elif [ -d "$src" ]; then
  tar -C "$src" -c --exclude='./dev/*' . | untar -f -
elif [ -f "$src" ]; then
  untar -f "$src"
else
  die "$src is neither a tarball nor a directory"
fi
# The mount points the runtime needs in a read-only root: made now, by the bundle's owner.
for dir in dev proc sys tmp "${HPCSTACK_HOME_DIR#/}" "${HPCSTACK_SHARED_DIR#/}"; do
  mkdir -p "$dest/rootfs/$dir"
done
chmod -R a+rX "$dest"
cat >"$dest/config.json" <<'JSON'
{
  "ociVersion": "1.0.0",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": ["sh"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
    "cwd": "/",
    "capabilities": {"bounding": [], "effective": [], "permitted": [], "ambient": []},
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": true},
  "mounts": [
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]}
  ],
  "linux": {
    "namespaces": [{"type": "user"}, {"type": "ipc"}, {"type": "mount"}],
    "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/timer_list",
                    "/proc/sched_debug", "/sys/firmware"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}
JSON
printf 'hpcstack-bundle: %s is ready: srun --container=%s CMD\n' "$dest" "$(cd "$dest" && pwd)"
