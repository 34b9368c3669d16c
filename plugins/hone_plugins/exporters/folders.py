"""Where a run keeps its exports: ``export/<name>/``, one folder per export stage, in stage order.

``<name>`` is the stage's ``name``, or its exporter's name for an unnamed stage (``export/onnx/``). The
stages' results in ``metrics.json`` record each folder, so "the last export" is the one the last export
stage wrote. This module imports no torch: ``hone predict`` uses it to pick an export before loading.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from hone.errors import HoneError
from hone.registry import suggest
from hone.run.rundir import METRICS

EXPORT_DIR = "export"


def stage_order(run_dir: Path) -> list[str]:
    """The export folders' names in the order the run's export stages finished them (from ``metrics.json``)."""
    try:
        results = json.loads((run_dir / METRICS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(results, dict):
        return []
    return [Path(result["folder"]).name for result in results.values()
            if isinstance(result, dict) and isinstance(result.get("folder"), str) and "exporter" in result]


def run_exports(run_dir: Path) -> list[Path]:
    """A run directory's export folders, oldest first: by stage order, then any the results do not name, by time."""
    root = run_dir / EXPORT_DIR
    if not root.is_dir():
        return []
    folders = [path for path in root.iterdir() if path.is_dir() and not path.name.startswith(".")]  # not a .tmp in progress
    order = stage_order(run_dir)
    return sorted(folders, key=lambda path: (order.index(path.name), 0.0) if path.name in order
                  else (len(order), path.stat().st_mtime))


def describe(folders: list[Path]) -> str:
    return ", ".join(path.name for path in folders) or "none"


def pick_export(run_dir: Path, name: str) -> Path:
    """The run's export folder ``name`` (``hone predict --export NAME``); an error listing those there are."""
    folders = run_exports(run_dir)
    for folder in folders:
        if folder.name == name:
            return folder
    if not (run_dir / EXPORT_DIR).is_dir():
        raise HoneError(f"{run_dir}: --export {name}: this is not a run directory with exports (no {EXPORT_DIR}/ folder); "
                        "add an export stage to the spec")
    raise HoneError(f"{run_dir}: no export '{name}'.{suggest(name, [f.name for f in folders])}")


def last_export(run_dir: Path, serves: Callable[[Path], bool], what: str) -> Path | None:
    """The newest of a run's exports that ``serves`` accepts; an error naming the others when none does,
    ``None`` when the run has no export at all."""
    folders = run_exports(run_dir)
    usable = [folder for folder in folders if serves(folder)]
    if usable:
        return usable[-1]
    if folders:
        raise HoneError(f"{run_dir}: none of this run's exports ({describe(folders)}) is {what}")
    return None
