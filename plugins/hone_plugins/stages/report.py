"""The compression section of a run report: each compress stage's model before and after, the settings tried
against its accuracy budget, and their trade-off plot."""

from __future__ import annotations

import json
from typing import Any

from hone.report import Code, Details, Image, RunData, Section, Table, Text
from hone_plugins.report import plots
from hone_plugins.report.render import fmt
from hone_plugins.report.rundata import compress_results

POINT_AXES = (("size_bytes", "size (MB)"), ("nonzero", "non-zero parameters"), ("sentences_per_s", "examples / s"))
MEASURED = {"drop", "within_budget", "parameters", "nonzero", "size_bytes", "sentences_per_s"}


def _image(blocks: list[Any], data: bytes | None, alt: str) -> None:
    if data:
        blocks.append(Image(data, alt))


def _points(run: RunData, stage: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    budget = result.get("budget") if isinstance(result.get("budget"), dict) else {}
    tried = budget.get("tried")
    if isinstance(tried, list) and tried:
        return [p for p in tried if isinstance(p, dict)]
    skip = {"event", "time", "stage", "compressor"}
    return [{k: v for k, v in e.items() if k not in skip} for e in run.of("compression_point") if e.get("stage") == stage]


def compression_blocks(run: RunData, stage: str, result: dict[str, Any]) -> list[Any]:
    """One compress stage: before/after, the settings tried against the budget, and their trade-off plot."""
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
        if baseline is not None and isinstance(budget.get("max_drop"), (int, float)) and budget.get("mode") in ("min", "max"):
            allowed = budget["max_drop"] * (abs(baseline) if budget.get("relative") else 1.0)
            threshold = baseline + allowed if budget["mode"] == "min" else baseline - allowed
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
