"""Atomic writes: a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from hone.errors import HoneError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _umask()  # read once: os.umask can only be read by setting it


class WriteError(HoneError):
    """A file could not be written (disk full, permissions, ...); the previous version is intact."""

    def __init__(self, path: Path, error: BaseException) -> None:
        detail = error.strerror if isinstance(error, OSError) and error.strerror else f"{type(error).__name__}: {error}"
        super().__init__(f"{path}: cannot write it ({detail}); the previous version of the file is kept")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync and rename it into place."""
    tmp_path: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        os.chmod(tmp_path, 0o666 & ~UMASK)  # mkstemp's 0600 would make every run file private to its writer
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except HoneError:
        raise
    except Exception as error:  # torch.save and safetensors raise their own types when the disk is full
        raise WriteError(path, error) from error
    finally:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_with(path: Path, writer: Callable[[Path], None]) -> None:
    """Atomically write ``path`` with a function that writes to a given path (safetensors, torch.save)."""
    with atomic_path(path) as tmp:
        writer(tmp)
