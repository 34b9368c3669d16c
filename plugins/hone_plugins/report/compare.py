"""``hone compare``: chosen metrics, speed, size and cost of several runs side by side, and a plot."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hone.errors import HoneError
from hone_plugins.report.render import fmt
from hone.report import RunData, load_run
from hone.run.results import scalars
from hone_plugins.report.rundata import eval_speed, final_evaluation, find_metric, model_size, train_speed, wall_seconds

MEASURES = (
    ("train_samples_per_s", "train samples/s"), ("eval_examples_per_s", "eval examples/s"),
    ("parameters", "parameters"), ("size_mb", "size (MB)"), ("wall_s", "wall time (s)"),
)


@dataclass
class Comparison:
    runs: list[str]
    metrics: list[str]
    rows: list[dict[str, Any]]

    @property
    def columns(self) -> list[str]:
        return ["run", "status", *self.metrics, *(key for key, _ in MEASURES)]

    @property
    def headers(self) -> list[str]:
        return ["run", "status", *self.metrics, *(title for _, title in MEASURES)]


def default_metrics(runs: Sequence[RunData]) -> list[str]:
    """The scalars of every run's headline results, the loss only when there is nothing else."""
    names: list[str] = []
    for run in runs:
        final = final_evaluation(run)
        names += [n for n in (scalars(final[2]) if final else {}) if n not in names]
    return [n for n in names if n != "loss"] or names


def _labels(runs: Sequence[RunData]) -> list[str]:
    labels = [run.path.name or run.name for run in runs]
    return [f"{label} ({run.path})" if labels.count(label) > 1 else label for label, run in zip(labels, runs)]


def compare(paths: Sequence[Path], metrics: Sequence[str] = ()) -> Comparison:
    """One row per run: the metrics (``name``, ``split.name`` or ``stage.split.name``), then speed, size and cost."""
    runs = [load_run(Path(p)) for p in paths]
    if not runs:
        raise HoneError("compare needs at least one run directory")
    chosen = list(metrics) or default_metrics(runs)
    rows = []
    for label, run in zip(_labels(runs), runs):
        size = model_size(run)
        wall = wall_seconds(run)
        rows.append({
            "run": label, "status": run.status, **{m: find_metric(run, m) for m in chosen},
            "train_samples_per_s": _round(train_speed(run), 1), "eval_examples_per_s": _round(eval_speed(run), 1),
            "parameters": size.get("nonzero", size.get("parameters")),
            "size_mb": _round(size["size_bytes"] / 1e6, 3) if "size_bytes" in size else None, "wall_s": _round(wall, 2),
        })
    return Comparison([row["run"] for row in rows], chosen, rows)


def _round(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None


def render(comparison: Comparison, form: str = "table") -> str:
    """``table`` (aligned text), ``markdown`` or ``csv`` (raw numbers)."""
    columns, headers = comparison.columns, comparison.headers
    if form == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["" if row[c] is None else row[c] for c in columns] for row in comparison.rows])
        return buffer.getvalue()
    cells = [[fmt(row[c]) for c in columns] for row in comparison.rows]
    if form == "markdown":
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" if i < 2 else "---:" for i in range(len(headers))) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        return "\n".join(lines) + "\n"
    if form != "table":
        raise HoneError(f"unknown format '{form}': use table, markdown or csv")
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    align = lambda text, i: text.ljust(widths[i]) if i < 2 else text.rjust(widths[i])
    lines = ["  ".join(align(h, i) for i, h in enumerate(headers)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(align(c, i) for i, c in enumerate(row)) for row in cells]
    return "\n".join(lines) + "\n"


def plot(comparison: Comparison, path: Path) -> Path:
    """Bars of the metrics per run, and the first metric against size, speed and wall time."""
    from hone_plugins.report import plots
    from hone.atomic import write_with

    # the scatter panels show the first metric: put the headline one (an F1, else an accuracy) first
    order = sorted(comparison.metrics, key=lambda m: 0 if "f1" in m else 1 if "accuracy" in m else 2)
    metrics = {m: [row[m] for row in comparison.rows] for m in order}
    measures = [(key, title, [row[key] for row in comparison.rows]) for key, title in MEASURES
                if key in ("size_mb", "eval_examples_per_s", "wall_s")]
    image = plots.comparison(comparison.runs, metrics, measures)
    if image is None:
        raise HoneError("nothing to plot: the runs have none of the chosen metrics")
    write_with(Path(path), lambda p: p.write_bytes(image))
    return Path(path)
