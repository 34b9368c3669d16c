"""Atomic writes: a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from hone.errors import HoneError

TMP = ".tmp"  # every temporary file or folder hone writes is named .<name>...tmp; a resume removes what a kill left


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
        # created like a plain write (0666 less the umask; an existing file's own mode), not mkstemp's 0600
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666
        tmp_path = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TMP}")
        os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
        if path.exists():
            os.chmod(tmp_path, mode)
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


def remove_leftovers(folder: Path) -> None:
    """The temporary files and folders a kill left under ``folder`` (``.<name>...tmp``)."""
    for path in sorted(folder.rglob(f".*{TMP}"), reverse=True):
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)
