"""The report of a model selection: its ranking and plot, in the selection's report and in each candidate's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hone.report import Code, Details, Image, RunData, Section, Table, Text
from hone_plugins.selection.ranking import STATE, cells, plot, read_state, table


def ranking_section(state: dict[str, Any], title: str = "Ranking", note: str = "") -> Section:
    headers, rows = table(state)
    blocks: list[Any] = [Text(f"score = {state['objective']['formula']} (higher is better). {note}".strip()),
                         Table(headers, [cells(headers, row) for row in rows])]
    if image := plot(state):
        blocks.append(Image(image, "score and metric per candidate; the metric against latency, size and wall time"))
    return Section(title, blocks)


def selection_of(run: RunData) -> dict[str, Any] | None:
    """The selection a run directory is a candidate of (``<selection>/runs/<candidate>``), if any."""
    if run.path.resolve().parent.name != "runs":
        return None
    state = read_state(run.path.resolve().parent.parent)
    names = {row.get("name") for row in state["candidates"]} if state else set()
    return state if state and run.path.name in names else None


def candidate_section(run: RunData) -> Section | None:
    """A candidate's place in its selection's ranking (None for a run that is no candidate)."""
    state = selection_of(run)
    if state is None:
        return None
    row = next(r for r in state["candidates"] if r.get("name") == run.path.name)
    where = f"ranked {row['rank']} of {len(state['candidates'])}" if row.get("rank") else "not ranked yet"
    return ranking_section(state, "Model selection", f"This run is candidate '{row['name']}', {where}.")


def is_selection_dir(path: Path) -> bool:
    return (path / STATE).exists()


def selection_sections(path: Path) -> tuple[str, str, list[Section]]:
    """(title, subtitle, sections) of a selection directory's report."""
    state = read_state(path)
    if state is None:
        return (f"hone model selection: {path.name}", f"no readable {STATE}",
                [Section("Ranking", [Text(f"{STATE} is missing or damaged.")])])
    rows = [[row["name"], row.get("model"), row.get("layers"), row.get("status"), row.get("run_dir")]
            for row in state["candidates"]]
    sections = [ranking_section(state),
                Section("Candidates", [Table(["candidate", "model", "layers", "status", "run directory"], rows),
                                       Text("Each run directory holds the candidate's own report.html.")]),
                Section("Files", [Details(STATE, [Code(json.dumps(state, indent=2, default=str))])])]
    count, best = len(state["candidates"]), state.get("best") or "–"
    subtitle = f"{state.get('status', 'unknown')} · {count} candidates · best: {best}"
    return f"hone model selection: {state.get('name') or path.name}", subtitle, sections
