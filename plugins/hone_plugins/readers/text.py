"""What every reader shares: text decoded with line numbers, lines split as files are, numbers checked."""

from __future__ import annotations

import codecs
import json
import math
from pathlib import Path
from typing import Any

from hone.errors import DataError


def read_text(path: Path) -> str:
    """The file decoded as UTF-8 (a leading BOM dropped); bad bytes raise DataError with their line."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise DataError(path, None, f"cannot read file: {error.strerror or error}") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        bad = data[error.start:error.end].hex(" ")
        raise DataError(path, line, f"not valid UTF-8 (byte(s) {bad}); re-save the file as UTF-8") from None


def lines_of(text: str) -> list[str]:
    """Lines split on LF only (CR of CRLF dropped): ``str.splitlines`` also breaks on form feeds etc."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def lf_lines(text: str) -> list[str]:
    """Lines ending at LF only, each with its ending: csv's line numbers then match the other readers' (a lone CR is data)."""
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def parse_float(value: Any, path: Path, line: int) -> float:
    """``value`` as a finite float, or DataError naming the line."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise DataError(path, line, f"label {value!r} is not a finite number (label_type is 'float')")
    return number


def located(path: Path, line: int) -> dict[str, Any]:
    """The keys that let a task report a bad example as ``file:line`` (``hone_plugins.tasks.common.data_error``)."""
    return {"_source": str(path), "_line": line}


def json_object(line: str, where: str | Path, number: int) -> dict[str, Any]:
    """One JSONL line as a JSON object; a DataError at ``where``:``number`` for anything else."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(where, number, f"invalid JSON: {error.msg} (column {error.colno})") from None
    except RecursionError:
        raise DataError(where, number, "JSON nested too deeply") from None
    except ValueError as error:  # an integer of more than 4300 digits
        raise DataError(where, number, f"invalid JSON: {error}") from None
    if not isinstance(record, dict):
        raise DataError(where, number, f"expected a JSON object (one a line, e.g. {{\"text\": \"...\"}}), "
                                       f"got {type(record).__name__}")
    return record
