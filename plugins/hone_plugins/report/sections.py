"""The built-in sections of a run report: summary, spec, environment, stages, training curves and results."""

from __future__ import annotations

import datetime as dt
import platform
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from hone import __version__
from hone.report import Code, Image, RunData, Section, Table, Text
from hone.run.results import scalars
from hone_plugins.report.rundata import (
    environment, eval_series, evaluations, final_evaluation, model_size, stage_boundaries, stage_timings, step_series, wall_seconds,
)


def _image(blocks: list[Any], data: bytes | None, alt: str) -> None:
    if data:
        blocks.append(Image(data, alt))


def _when(seconds: float | None) -> str:
    return dt.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S") if seconds else "–"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)} min {rest:.1f} s" if minutes else f"{rest:.2f} s"


def summary_section(run: RunData) -> Section:
    starts = run.of("run_start")
    final = final_evaluation(run)
    size = model_size(run)
    rows: list[list[Any]] = [
        ["run directory", str(run.path)], ["status", run.status],
        ["stages completed", f"{len(run.state.get('completed', []))} of {len(run.spec.get('stages') or [])}"],
        ["started", _when(starts[0].get("time") if starts else None)], ["wall time", _duration(wall_seconds(run))],
        ["attempts (runs and resumes)", len(starts)],
    ]
    if final:
        stage, split, values = final
        rows.append(["headline results", f"split '{split}' of stage '{stage}'"])
        rows += [[name, value] for name, value in scalars(values).items()]
    rows += [[k.replace("_", " "), v] for k, v in size.items()]
    if run.state.get("error"):
        rows.append(["error", run.state["error"]])
    return Section("Summary", [Table(["", ""], rows)])


def spec_section(run: RunData) -> Section:
    try:
        text = (run.path / "spec.yaml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = yaml.safe_dump(run.spec, sort_keys=False) if run.spec else "(no spec.yaml)"
    return Section("Spec", [Text("The resolved spec the run used (every default filled in):"), Code(text)])


def environment_section(run: RunData) -> Section:
    env = environment(run)
    rows = [[k.replace("_", " "), ", ".join(f"{a} {b}" for a, b in v.items()) if isinstance(v, dict) else v] for k, v in env.items()]
    rows.append(["report written by", f"hone {__version__}, Python {platform.python_version()}"])
    blocks: list[Any] = [] if env else [Text("No run_start event was recorded.")]
    return Section("Environment", [*blocks, Table(["", ""], rows)])


def stages_section(run: RunData) -> Section:
    timings = stage_timings(run)
    total = sum(t["seconds"] for t in timings) or 1.0
    rows = []
    for timing in timings:
        result = run.metrics.get(timing["stage"]) or {}
        steps = result.get("steps") if isinstance(result, dict) else None
        notes = [k.replace("_", " ") for k in ("early_stopped", "restored_best") if isinstance(result, dict) and result.get(k)]
        rows.append([timing["stage"], timing["type"], round(timing["seconds"], 2), f"{100 * timing['seconds'] / total:.0f}%", steps,
                     ", ".join(notes)])
    blocks: list[Any] = [Table(["stage", "type", "seconds", "share", "steps", "notes"], rows)] if rows else [
        Text("No stage has started.")]
    return Section("Stages", blocks)


def curves_section(run: RunData) -> Section:
    from hone_plugins.report import plots

    steps, evals, boundaries = step_series(run), eval_series(run), stage_boundaries(run)
    blocks: list[Any] = []
    _image(blocks, plots.training_curves(steps, evals, boundaries), "loss and learning rate")
    _image(blocks, plots.metric_curves(evals, boundaries), "validation metrics")
    if not blocks:
        blocks.append(Text("No training step or validation was logged."))
    else:
        blocks.append(Text("Steps run on across stages; dotted lines mark where each training stage starts."))
    return Section("Training curves", blocks)


def results_section(run: RunData) -> Section:
    """Every split's scalar results of every stage, side by side."""
    found = evaluations(run)
    if not found:
        return Section("Results", [Text("No results yet.")])
    names: list[str] = []
    for _, _, values in found:
        names += [n for n in scalars(values) if n not in names]
    return Section("Results", [Table(["stage", "split", *names], [[s, sp, *(scalars(v).get(n) for n in names)] for s, sp, v in found])])


@dataclass
class Sections:
    """A report section plugin made of one function giving its Section (or None where the run has nothing for it)."""

    build: Callable[[RunData], Section | None]

    def sections(self, run: RunData) -> list[Section]:
        return [section for section in [self.build(run)] if section is not None]
