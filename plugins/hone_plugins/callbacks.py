"""Built-in callbacks: a CSV log of every scalar metric (always available)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hone.hookspecs import hookimpl
from hone.paths import RunFileName, inside_run_dir
from hone.registry import Register


class CsvLoggerParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filename: RunFileName = Field("metrics.csv", description="File name inside the run directory.")


class CsvLogger:
    """Appends one row per step_end / evaluation_done event: stage, step, name, value."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _write(self, data: dict[str, Any]) -> None:
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(["stage", "epoch", "step", "split", "name", "value"])
            for name, value in sorted(data.get("metrics", {}).items()):
                if isinstance(value, (int, float)):
                    writer.writerow([data.get("stage"), data.get("epoch"), data.get("step"), data.get("split", "train"), name, value])

    def on_step_end(self, event: str, data: dict[str, Any]) -> None:
        self._write(data)

    def on_evaluation_done(self, event: str, data: dict[str, Any]) -> None:
        self._write(data)


def csv_logger(params: CsvLoggerParams, run_dir: Path) -> CsvLogger:
    """Log scalar metrics to a CSV file in the run directory."""
    return CsvLogger(inside_run_dir(Path(run_dir), params.filename))


@hookimpl
def register_callbacks(register: Register) -> None:
    register("csv-logger", csv_logger, CsvLoggerParams)
