"""Errors a user sees: each names the file, field or line and what would be valid."""

from __future__ import annotations

from pathlib import Path


class HoneError(Exception):
    """Base class of errors reported to the user as one clean message (no traceback)."""


class DataError(HoneError):
    """Malformed input data, located by file and line."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        # one line, even when the message quotes data holding line breaks (a quoted CSV header, ...)
        message = message.replace("\r", "\\r").replace("\n", "\\n")
        self.path, self.line, self.message = str(path), line, message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class ComponentError(HoneError):
    """A plugin component raised at run time; names the plugin and its distribution."""


class Interrupted(HoneError):
    """Ctrl-C: a checkpoint was written; ``hone run --resume`` continues."""


def describe(error: BaseException, limit: int | None = None, first_line: bool = True) -> str:
    """``Type: first line of the message`` (the whole message where ``first_line`` is False), cut at ``limit``
    characters: an error inside a one-line report."""
    message = str(error).strip()
    text = f"{type(error).__name__}: {(message.splitlines() or [''])[0] if first_line else message}"
    return text if limit is None or len(text) <= limit else text[:limit] + "..."
