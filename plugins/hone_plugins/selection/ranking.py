"""Scores and the ranking of a selection: selection.json, ranking.md, ranking.csv and ranking.png."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from hone.atomic import write_json, write_text, write_with

STATE, MARKDOWN, CSV, PLOT = "selection.json", "ranking.md", "ranking.csv", "ranking.png"
MEASURES = {"latency_ms": ("latency (ms)", 2), "size_mb": ("size (MB)", 2), "parameters_m": ("parameters (M)", 3),
            "wall_s": ("wall time (s)", 1)}


def score(measures: dict[str, Any], objective: dict[str, Any]) -> float | None:
    """``metric - sum(weight * measure)``, the metric negated when lower is better; None without a metric."""
    metric = measures.get("metric")
    if not isinstance(metric, (int, float)):
        return None
    sign = 1.0 if objective["direction"] == "maximize" else -1.0
    return sign * metric - sum(weight * measures[name] for name, weight in objective["penalties"].items())


def ranked(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The candidates best first, each with its score and rank (None for one not measured, or not yet this time)."""
    rows = [dict(row, score=score(row["measures"], state["objective"]) if row["status"] == "measured" else None)
            for row in state["candidates"]]
    rows.sort(key=lambda row: (row["score"] is None, -(row["score"] or 0.0)))
    for index, row in enumerate(rows):
        row["rank"] = index + 1 if row["score"] is not None else None
    return rows


def table(state: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows of the ranking: raw numbers (None where a candidate has no result yet)."""
    metric = state["objective"]["metric"]
    headers = ["rank", "candidate", "score", metric, *MEASURES, "status"]
    rows = []
    for row in ranked(state):
        measures = row.get("measures") or {}
        status = row["status"] if row["status"] != "failed" else f"failed: {row.get('error', '')}"
        rows.append([row["rank"], row["name"], row["score"], measures.get("metric"),
                     *(measures.get(m) for m in MEASURES), status])
    return headers, rows


def cells(headers: list[str], row: list[Any]) -> list[str]:
    """A ranking row as text: one number format per column."""
    digits = {"score": 4, headers[3]: 4, **{m: d for m, (_, d) in MEASURES.items()}}  # one format per column
    return ["" if value is None else f"{value:.{digits[h]}f}" if h in digits and isinstance(value, (int, float))
            else str(value) for h, value in zip(headers, row)]


def markdown(state: dict[str, Any]) -> str:
    headers, rows = table(state)
    lines = [f"score = {state['objective']['formula']} (higher is better)", "",
             "| " + " | ".join(headers) + " |", "|" + "|".join("---:" if h not in ("candidate", "status") else "---"
                                                          for h in headers) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(headers, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_text(state: dict[str, Any]) -> str:
    headers, rows = table(state)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*headers, "run_dir"])
    dirs = {row["name"]: row["run_dir"] for row in state["candidates"]}
    writer.writerows([*["" if v is None else v for v in row], dirs[row[1]]] for row in rows)
    return buffer.getvalue()


def plot(state: dict[str, Any]) -> bytes | None:
    """Score and metric per candidate, then the metric against latency, size and wall time."""
    from hone_plugins.report import plots

    rows = [row for row in ranked(state) if row["score"] is not None]
    if not rows:
        return None
    metric = state["objective"]["metric"]
    metrics = {metric: [row["measures"]["metric"] for row in rows], "score": [row["score"] for row in rows]}
    measures = [(m, title, [row["measures"][m] for row in rows])
                for m, (title, _) in MEASURES.items() if m != "parameters_m"]
    return plots.comparison([row["name"] for row in rows], metrics, measures)


def write_ranking(directory: Path, state: dict[str, Any]) -> None:
    """selection.json with every candidate's score and rank, the ranking as Markdown and CSV, and its plot."""
    rows = {row["name"]: row for row in ranked(state)}
    best = next((row["name"] for row in rows.values() if row["rank"] == 1), None)
    candidates = [{**row, "score": rows[row["name"]]["score"], "rank": rows[row["name"]]["rank"]}
                  for row in state["candidates"]]
    state = {**state, "best": best, "candidates": candidates}
    write_json(directory / STATE, state)
    write_text(directory / MARKDOWN, markdown(state))
    write_text(directory / CSV, csv_text(state))
    image = plot(state)
    if image is not None:
        write_with(directory / PLOT, lambda path: path.write_bytes(image))


def read_state(directory: Path) -> dict[str, Any] | None:
    """A selection directory's selection.json, None where it has none (or it cannot be read)."""
    try:
        state = json.loads((directory / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and isinstance(state.get("candidates"), list) else None
