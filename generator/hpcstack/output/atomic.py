"""The one local atomic write: stage beside the target with its final mode, then rename.

A reader never sees half a file, and a secret is never readable by others, not even briefly:
the staged file is created with its mode (set again if the umask took bits away) before any
byte is written. `exclusive=True` never
replaces an existing file (link(2) fails if the target exists), for secrets made once.

Many files at once (`write_all`, the writer's tree): every one is staged, one flush puts all
their data on disk, and only then is any renamed into place; one flush instead of one per file
(thousands for a large cluster), with the same guarantee that no rename lands before its data.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path


def stage(target: Path, data: bytes, mode: int, sync: bool = True) -> Path:
    """Write `data` to a new file beside `target` (mode `mode`, fsynced); returns its path.

    `sync=False` leaves the flush to the caller (`stage_all`)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return _stage_in(target, data, mode, sync)


# A new file, never one that is there (nor through a link): what tempfile.mkstemp opens, but
# created with its final mode, so that no chmod follows unless the umask took bits away.
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _stage_in(target: Path, data: bytes, mode: int, sync: bool) -> Path:
    directory, name = os.path.split(target)
    while True:
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(4)}")
        try:
            fd = os.open(tmp, _NEW_FILE, mode)
            break
        except FileExistsError:
            continue
    try:
        if os.fstat(fd).st_mode & 0o7777 != mode:
            os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    return Path(tmp)


def stage_all(files: Sequence[tuple[Path, bytes, int]]) -> list[Path]:
    """Stage each (target, data, mode), then flush once; returns the staged paths in order.
    On any failure the files staged so far are removed and the error goes on."""
    staged: list[Path] = []
    made: set[Path] = set()
    try:
        for target, data, mode in files:
            if target.parent not in made:
                target.parent.mkdir(parents=True, exist_ok=True)
                made.add(target.parent)
            staged.append(_stage_in(target, data, mode, sync=False))
        if staged:
            os.sync()  # every staged file's data on disk before any rename
    except BaseException:
        for tmp in staged:
            tmp.unlink(missing_ok=True)
        raise
    return staged


def _put(tmp: Path, target: Path, exclusive: bool) -> bool:
    if not exclusive:
        os.replace(tmp, target)
        return True
    try:
        os.link(tmp, target)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def write_atomic(target: Path, data: bytes, mode: int = 0o644, exclusive: bool = False) -> bool:
    """Put `data` at `target` in one step. With `exclusive`, leave an existing file alone.

    Returns True when the file was written (always, unless `exclusive` found one there).
    """
    tmp = stage(target, data, mode)
    try:
        return _put(tmp, target, exclusive)
    finally:
        tmp.unlink(missing_ok=True)


def write_all(files: Sequence[tuple[Path, bytes, int]], exclusive: bool = False) -> list[bool]:
    """`write_atomic` for each (target, data, mode), with one flush for all of them.

    Returns, in order, whether each file was written. Nothing is renamed into place unless
    every file was staged."""
    staged = stage_all(files)
    written: list[bool] = []
    try:
        for tmp, (target, _, _) in zip(staged, files, strict=True):
            written.append(_put(tmp, target, exclusive))
    except BaseException:
        for tmp in staged[len(written) :]:
            tmp.unlink(missing_ok=True)
        raise
    return written
