"""``hone report``: a run's (or a search's) self-contained ``report.html`` and ``report.md``."""

from __future__ import annotations

import datetime as dt
import json
import platform
from pathlib import Path
from typing import Any

import yaml

from hone import __version__
from hone_plugins.report.render import Code, Details, Image, Section, Table, Text, fmt
from hone_plugins.report.rundata import (
    REPORT_KEYS, RunData, compress_results, environment, eval_series, evaluations, final_evaluation, load_run,
    model_size, scalars, stage_boundaries, stage_names, stage_timings, stage_types, step_series, wall_seconds,
)

POINT_AXES = (("size_bytes", "size (MB)"), ("nonzero", "non-zero parameters"), ("sentences_per_s", "examples / s"))
MEASURED = {"drop", "within_budget", "parameters", "nonzero", "size_bytes", "sentences_per_s"}


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


def _report_rows(report: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for label, values in report.items():
        if isinstance(values, dict):
            rows.append([label, values.get("precision"), values.get("recall"), values.get("f1", values.get("f1-score")),
                         values.get("support")])
    return rows


def results_section(run: RunData) -> Section:
    from hone_plugins.report import plots

    found = evaluations(run)
    if not found:
        return Section("Results", [Text("No results yet.")])
    names: list[str] = []
    for _, _, values in found:
        names += [n for n in scalars(values) if n not in names]
    blocks: list[Any] = [Table(["stage", "split", *names], [[s, sp, *(scalars(v).get(n) for n in names)] for s, sp, v in found])]
    types, final = stage_types(run), final_evaluation(run)
    chosen = [item for item in found if types.get(item[0]) == "evaluate" or item == final]
    for stage, split, values in chosen:
        for key in [k for k in values if k.startswith(REPORT_KEYS)]:  # also entity_report_strict, ...
            if isinstance(values[key], dict) and values[key]:
                kind = "entity type" if key.startswith("entity_report") else "class"
                variant = key.split("_report", 1)[1].lstrip("_")
                blocks.append(Table([kind, "precision", "recall", "f1", "support"], _report_rows(values[key]),
                                    caption=f"Per {kind}{f' ({variant})' if variant else ''}: {stage} ({split})"))
    matrices = [item for item in chosen if isinstance(item[2].get("confusion_matrix"), dict)] or \
               [item for item in found if isinstance(item[2].get("confusion_matrix"), dict)][-1:]
    for stage, split, values in matrices:
        matrix = values["confusion_matrix"]
        if matrix.get("labels") and matrix.get("matrix"):
            blocks.append(Image(plots.confusion_matrix(matrix["labels"], matrix["matrix"], f"confusion matrix: {stage} ({split})"),
                                f"confusion matrix {stage} {split}"))
            blocks.append(Details(f"Confusion matrix counts: {stage} ({split}); rows are references",
                                  [Table(["reference \\ predicted", *matrix["labels"]],
                                         [[label, *row] for label, row in zip(matrix["labels"], matrix["matrix"])])]))
    return Section("Results", blocks)


def _points(run: RunData, stage: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    budget = result.get("budget") if isinstance(result.get("budget"), dict) else {}
    tried = budget.get("tried")
    if isinstance(tried, list) and tried:
        return [p for p in tried if isinstance(p, dict)]
    skip = {"event", "time", "stage", "compressor"}
    return [{k: v for k, v in e.items() if k not in skip} for e in run.of("compression_point") if e.get("stage") == stage]


def _lower_is_better(run: RunData, stage: str, metric: str) -> bool:
    """The budget's direction as the spec sets it, else as hone infers it from the metric's name."""
    for name, spec in zip(stage_names(run), run.spec.get("stages") or []):
        mode = ((spec or {}).get("max_drop") or {}).get("mode") if isinstance(spec, dict) else None
        if name == stage and mode in ("min", "max"):
            return mode == "min"
    return any(k in metric for k in ("loss", "perplexity", "mse", "error"))


def compression_blocks(run: RunData, stage: str, result: dict[str, Any]) -> list[Any]:
    """One compress stage: before/after, the settings tried against the budget, and their trade-off plot."""
    from hone_plugins.report import plots

    seconds = f", {result['seconds']:.1f} s" if isinstance(result.get("seconds"), (int, float)) else ""
    blocks: list[Any] = [Text(f"Stage '{stage}': compressor '{result.get('compressor', '?')}' with "
                              f"{json.dumps(result.get('params', {}))}{seconds}.")]
    before, after = result.get("before"), result.get("after")
    if isinstance(before, dict) or isinstance(after, dict):
        before, after = before if isinstance(before, dict) else {}, after if isinstance(after, dict) else {}
        keys = [k for k in ("parameters", "nonzero", "sparsity", "size_bytes") if k in before or k in after]
        keys += [k for k in [*before, *after] if k not in keys and k != "layer_sparsity"
                 and isinstance(before.get(k, after.get(k)), (int, float))]
        rows = []
        for key in dict.fromkeys(keys):
            b, a = before.get(key), after.get(key)
            ratio = a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b and key != "sparsity" else None
            rows.append([key.replace("_", " "), b, a, ratio])
        blocks.append(Table(["", "before", "after", "after / before"], rows, caption="Model before and after"))
    budget = result.get("budget") if isinstance(result.get("budget"), dict) else {}
    points = _points(run, stage, result)
    metric = budget.get("metric") or next((k for p in points for k, v in p.items() if isinstance(v, float)
                                           and k not in MEASURED and k != "sparsity"), None)
    if budget:
        kind = "relative drop" if budget.get("relative") else "drop"
        blocks.append(Text(f"Accuracy budget: {metric} on '{budget.get('split', '?')}' may worsen by at most "
                           f"{fmt(budget.get('max_drop'))} ({kind}) from the uncompressed model's {fmt(budget.get('baseline'))}; "
                           f"chosen: {json.dumps(budget.get('chosen'))}."))
    if points:
        headers = list(dict.fromkeys(k for p in points for k in p))
        blocks.append(Table(headers, [[p.get(h) for h in headers] for p in points], caption="Settings tried"))
        baseline = budget.get("baseline") if isinstance(budget.get("baseline"), (int, float)) else None
        threshold = None
        if baseline is not None and isinstance(budget.get("max_drop"), (int, float)):
            allowed = budget["max_drop"] * (abs(baseline) if budget.get("relative") else 1.0)
            threshold = baseline + allowed if _lower_is_better(run, stage, str(metric)) else baseline - allowed
        label = headers[0] if headers[0] not in MEASURED else None  # the searched parameter comes first
        if metric:
            _image(blocks, plots.tradeoff(points, metric, POINT_AXES, baseline, threshold, label), f"{metric} against size and speed")
    if isinstance(after := result.get("after"), dict) and isinstance(after.get("layer_sparsity"), dict):
        layer_plot = plots.layer_sparsity(after["layer_sparsity"])
        if layer_plot:
            blocks.append(Details("Sparsity per layer", [Image(layer_plot, "sparsity per layer")]))
    if result.get("changes"):
        blocks.append(Details("Changes made", [Code(json.dumps(result["changes"], indent=2, default=str))]))
    return blocks


def compression_section(run: RunData) -> Section | None:
    found = compress_results(run)
    if not found:
        return None
    blocks: list[Any] = []
    for stage, result in found:
        blocks += compression_blocks(run, stage, result)
    return Section("Compression", blocks)


def run_sections(run: RunData) -> list[Section]:
    sections = [summary_section(run), spec_section(run), environment_section(run), stages_section(run),
                curves_section(run), results_section(run)]
    compression = compression_section(run)
    if compression is not None:
        sections.append(compression)
    return sections
