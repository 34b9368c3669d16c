"""``hone compare``: chosen metrics, speed, size and cost of several runs side by side, and a plot."""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hone.errors import HoneError
from hone_plugins.report.render import fmt
from hone.report import RunData
from hone.run.results import scalars
from hone_plugins.report.rundata import (eval_speed, evaluations, final_evaluation, find_metric, load_run, model_size, train_speed,
                                         wall_seconds)

MEASURES = (
    ("train_samples_per_s", "train samples/s"), ("eval_examples_per_s", "eval examples/s"),
    ("parameters", "parameters"), ("nonzero", "non-zero parameters"), ("size_mb", "size (MB)"), ("wall_s", "wall time (s)"),
)


@dataclass
class Comparison:
    runs: list[str]
    metrics: list[str]
    rows: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)  # chosen metrics that no run reports, with the names that exist

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


def _labels(runs: Sequence[RunData], names: Sequence[str | None]) -> list[str]:
    labels = [name or run.path.name or run.name for run, name in zip(runs, names)]
    return [f"{label} ({run.path})" if labels.count(label) > 1 else label for label, run in zip(labels, runs)]


def expand(paths: Sequence[Path]) -> list[tuple[Path, str | None]]:
    """Each run directory, and for a search directory each of its trials' run directories (labelled ``trial N``)."""
    found: list[tuple[Path, str | None]] = []
    for path in map(Path, paths):
        trials = _search_trials(path)
        if trials is None:
            found.append((path, None))
        elif not trials:
            raise HoneError(f"{path}: a search directory without any trial run directory yet")
        else:
            found += trials
    return found


def _search_trials(path: Path) -> list[tuple[Path, str | None]] | None:
    """The trials of a search directory (from trials.json, else its trials/ folder), or None if it holds no search."""
    listed = path / "trials.json"
    if not listed.exists() and not (path / "search.yaml").exists():
        return None
    trials: dict[Path, str] = {}
    try:
        rows = json.loads(listed.read_text(encoding="utf-8")) if listed.exists() else []
    except (OSError, ValueError) as error:
        raise HoneError(f"{listed}: cannot read it ({error})") from None
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and isinstance(row.get("run_dir"), str) and Path(row["run_dir"]).is_dir():
            trials.setdefault(Path(row["run_dir"]), f"trial {row.get('number')}")  # a duplicate trial shares its original's
    if not trials and (path / "trials").is_dir():
        numbered = sorted((p for p in (path / "trials").iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
        trials = {p: f"trial {p.name}" for p in numbered}
    return list(trials.items())


def available_metrics(runs: Sequence[RunData]) -> list[str]:
    """What ``--metric`` can name in these runs: the final results' names, then ``split.name`` and ``stage.split.name``."""
    names: list[str] = []
    for run in runs:
        final = final_evaluation(run)
        names += [n for n in (scalars(final[2]) if final else {}) if n not in names]
    for run in runs:
        for stage, split, values in evaluations(run):
            names += [name for n in scalars(values) for name in (f"{split}.{n}", f"{stage}.{split}.{n}") if name not in names]
    return names


def metric_warning(metric: str, names: Sequence[str]) -> str:
    """``no run reports 'f1'. Did you mean 'f1_macro'? Available: ...``."""
    tail = metric.split(".")[-1]
    plain = [n for n in names if "." not in n]
    close = ([n for n in plain if n.startswith(tail)] or [n for n in plain if tail in n.split("_")]
             or difflib.get_close_matches(metric, names, n=1))
    hint = f" Did you mean '{close[0]}'?" if close else ""
    shown = plain or list(names)
    return f"no run reports '{metric}'.{hint} Available: {', '.join(shown) or 'none'} (or split.NAME, stage.split.NAME)"


def compare(paths: Sequence[Path], metrics: Sequence[str] = ()) -> Comparison:
    """One row per run (per trial of a search directory): the metrics (``name``, ``split.name`` or
    ``stage.split.name``), then speed, size and cost."""
    found = expand(paths)
    runs = [load_run(path) for path, _ in found]
    if not runs:
        raise HoneError("compare needs at least one run directory")
    chosen = list(metrics) or default_metrics(runs)
    rows = []
    for label, run in zip(_labels(runs, [name for _, name in found]), runs):
        size = model_size(run)
        wall = wall_seconds(run)
        rows.append({
            "run": label, "status": run.status, **{m: find_metric(run, m) for m in chosen},
            "train_samples_per_s": _round(train_speed(run), 1), "eval_examples_per_s": _round(eval_speed(run), 1),
            "parameters": size.get("parameters"), "nonzero": size.get("nonzero"),
            "size_mb": _round(size["size_bytes"] / 1e6, 3) if "size_bytes" in size else None, "wall_s": _round(wall, 2),
        })
    names = available_metrics(runs)
    warnings = [metric_warning(m, names) for m in chosen if all(row[m] is None for row in rows)]
    return Comparison([row["run"] for row in rows], chosen, rows, warnings)


def _round(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None


def column_format(values: Sequence[Any]) -> Any:
    """One way to write every number of a column: the same decimals for all (4 below 1, fewer as values grow,
    thousands separators from 1,000), integers as integers; anything else as ``fmt`` writes it."""
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    if not numbers or all(isinstance(v, int) for v in numbers):
        return fmt
    largest = max(abs(v) for v in numbers)
    decimals = 4 if largest < 1 else max(0, 3 - int(math.floor(math.log10(largest))))

    def write(value: Any) -> str:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return f"{value:,.{decimals}f}"
        return fmt(value)

    return write


def render(comparison: Comparison, form: str = "table") -> str:
    """``table`` (aligned text), ``markdown`` or ``csv`` (raw numbers)."""
    columns, headers = comparison.columns, comparison.headers
    if form == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["" if row[c] is None else row[c] for c in columns] for row in comparison.rows])
        return buffer.getvalue()
    formats = [column_format([row[c] for row in comparison.rows]) for c in columns]
    cells = [[form_(row[c]) for c, form_ in zip(columns, formats)] for row in comparison.rows]
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
