"""One command at a time in a folder: ``hone search`` and ``hone select`` lock theirs while they work in it."""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO

from hone.errors import HoneError

LOCK = ".lock"


def lock_folder(directory: Path, command: str) -> IO[str]:
    """Create ``directory`` if needed and hold its lock file (closing the returned file releases it)."""
    directory.mkdir(parents=True, exist_ok=True)
    lock = open(directory / LOCK, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise HoneError(f"{directory}: another `{command}` is running on it") from None
    return lock
