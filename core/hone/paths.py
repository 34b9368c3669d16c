"""Files a component writes stay inside the run directory: a params type and a check for them."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated

from pydantic import AfterValidator

from hone.errors import HoneError


def check_run_file_name(name: str) -> str:
    """Refuse a file name that could leave the run directory (absolute, ``..``, drive, NUL)."""
    parts = [*PurePosixPath(name).parts, *PureWindowsPath(name).parts]
    if not name.strip() or "\x00" in name:
        raise ValueError(f"{name!r} is not a file name")
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or PureWindowsPath(name).drive:
        raise ValueError(f"{name!r} is an absolute path: give a file name inside the run directory")
    if ".." in parts:
        raise ValueError(f"{name!r} leaves the run directory ('..'): give a file name inside it")
    return name


RunFileName = Annotated[str, AfterValidator(check_run_file_name)]
"""A params field naming a file the component writes inside the run directory."""


def inside_run_dir(run_dir: Path, name: str) -> Path:
    """``run_dir / name``, refused if it (or a symlink on the way) points outside ``run_dir``."""
    try:
        check_run_file_name(name)
    except ValueError as error:
        raise HoneError(str(error)) from None
    path = Path(run_dir) / name
    if not path.resolve().is_relative_to(Path(run_dir).resolve()):
        raise HoneError(f"{path}: resolves to {path.resolve()}, outside the run directory {run_dir}")
    return path


def links_outside(root: Path) -> list[str]:
    """``link -> target`` for every symbolic link under ``root`` (links not followed) that resolves outside it."""
    top, found = Path(root).resolve(), []
    for folder, dirs, files in os.walk(root):
        for path in (Path(folder) / name for name in (*dirs, *files)):
            if path.is_symlink() and not path.resolve().is_relative_to(top):
                found.append(f"{path} -> {path.resolve()}")
    return found
