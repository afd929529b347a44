"""The one local atomic write: stage beside the target with its final mode, then rename.

A reader never sees half a file, and a secret is never readable by others, not even briefly:
the staged file is created with its mode before any byte is written. `exclusive=True` never
replaces an existing file (link(2) fails if the target exists), for secrets made once.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def stage(target: Path, data: bytes, mode: int, sync: bool = True) -> Path:
    """Write `data` to a new file beside `target` (mode `mode`, fsynced); returns its path.

    `sync=False` leaves the flush to the caller, who stages many files and then calls
    `os.sync()` once before renaming any: one flush instead of one per file (thousands for a
    large cluster), with the same guarantee that no rename lands before its data."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def write_atomic(target: Path, data: bytes, mode: int = 0o644, exclusive: bool = False) -> bool:
    """Put `data` at `target` in one step. With `exclusive`, leave an existing file alone.

    Returns True when the file was written (always, unless `exclusive` found one there).
    """
    tmp = stage(target, data, mode)
    try:
        if exclusive:
            try:
                os.link(tmp, target)
            except FileExistsError:
                return False
        else:
            os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return True
