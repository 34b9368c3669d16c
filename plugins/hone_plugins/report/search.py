"""The search part of the report: trials, optimisation history, Pareto front, read tolerantly from a search directory."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hone.report import Code, Details, Image, Section, Table, Text

NUMBER_COLUMNS = ("number", "trial", "trial_number", "id")
STATE_COLUMNS = ("state", "status")
SECONDS_COLUMNS = ("seconds", "wall_s", "duration_s", "duration")
NOTE_COLUMNS = ("run_dir", "note", "worker")
DONE = {"COMPLETE", "COMPLETED", "TrialState.COMPLETE"}
DURATION = re.compile(r"^(?:(\d+) days? )?(\d+):(\d+):(\d+(?:\.\d*)?)$")


@dataclass
class Objective:
    name: str
    column: str
    direction: str = "maximize"


@dataclass
class Trials:
    """trials.csv as rows of parsed cells, with the columns that play a part named."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    number: str | None = None
    state: str | None = None
    seconds: str | None = None


def _cell(text: str | None) -> Any:
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        pass
    if match := DURATION.match(text.strip()):  # pandas' timedelta, as optuna's trials_dataframe writes it
        days, hours, minutes, seconds = match.groups()
        return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return text


def read_trials(path: Path) -> Trials:
    if not path.exists():
        return Trials()
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = [{k: _cell(v) for k, v in row.items() if k is not None} for row in reader]
        columns = list(reader.fieldnames or [])
    pick = lambda names: next((c for c in columns if c.lower() in names), None)
    return Trials(rows, columns, pick(NUMBER_COLUMNS), pick(STATE_COLUMNS), pick(SECONDS_COLUMNS))


def _objective_specs(info: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, direction) pairs from search.json, whichever of the usual shapes it uses."""
    raw = info.get("objectives", info.get("objective", info.get("metrics", info.get("metric"))))
    if isinstance(raw, (str, dict)):
        raw = [raw]
    directions = info.get("directions") or ([info["direction"]] if isinstance(info.get("direction"), str) else [])
    pairs = []
    for i, item in enumerate(raw or []):
        if isinstance(item, str):
            pairs.append((item, directions[i] if i < len(directions) else "maximize"))
        elif isinstance(item, dict):
            name = item.get("metric") or item.get("name")
            if name:
                direction = item.get("direction") or (directions[i] if i < len(directions) else "maximize")
                pairs.append((str(name), str(direction)))
    return pairs


def find_objectives(info: dict[str, Any], trials: Trials) -> list[Objective]:
    """Match search.json's objectives to trials.csv columns; fall back on optuna's value / values_N columns."""
    specs, columns = _objective_specs(info), trials.columns
    value_columns = [c for c in columns if c == "value" or re.fullmatch(r"values?_\d+", c)]
    found = []
    for i, (name, direction) in enumerate(specs):
        candidates = [name, f"value_{name}", f"values_{name}", f"user_attrs_{name}"]
        column = next((c for c in candidates if c in columns), None)
        if column is None and i < len(value_columns):
            column = value_columns[i]
        if column is not None:
            found.append(Objective(name, column, "minimize" if direction.lower().startswith("min") else "maximize"))
    if not found:
        found = [Objective(c, c) for c in value_columns]
    return found


def _numbers(trials: Trials) -> list[int]:
    return [row.get(trials.number) if trials.number and isinstance(row.get(trials.number), int) else i
            for i, row in enumerate(trials.rows)]


def _done(trials: Trials, row: dict[str, Any]) -> bool:
    return trials.state is None or str(row.get(trials.state, "")).upper() in {s.upper() for s in DONE}


def pareto_mask(points: list[tuple[float, ...]], directions: list[str]) -> list[bool]:
    """True for each point no other point is at least as good on every objective and better on one."""
    signs = [1 if d == "maximize" else -1 for d in directions]
    scored = [tuple(s * v for s, v in zip(signs, p)) for p in points]
    return [not any(all(o >= m for o, m in zip(other, mine)) and other != mine for other in scored) for mine in scored]


def param_columns(trials: Trials, objectives: list[Objective]) -> list[str]:
    taken = {o.column for o in objectives} | {trials.number, trials.state, trials.seconds}
    meta = ("datetime_", "system_attrs_", "user_attrs_")
    return [c for c in trials.columns if c not in taken and c not in NOTE_COLUMNS and not c.startswith(meta)]


def importance_sets(path: Path, info: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Parameter importances per objective, from importances.json ({"objectives": {metric: {param: value}}}) or search.json."""
    try:
        found: Any = json.loads((path / "importances.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        found = info.get("importances") or info.get("param_importances") or {}
    if not isinstance(found, dict):
        return {}
    per_objective = found.get("objectives") if isinstance(found.get("objectives"), dict) else {"": found}
    sets = {}
    for metric, values in per_objective.items():
        numbers = {k: float(v) for k, v in (values or {}).items() if isinstance(v, (int, float))} if isinstance(values, dict) else {}
        if numbers:
            sets[f"parameter importance ({metric})" if metric else "parameter importance"] = numbers
    return sets


def search_sections(path: Path) -> tuple[str, str, list[Section]]:
    """(title, subtitle, sections) of a search directory's report."""
    from hone_plugins.report import plots

    try:
        info = json.loads((path / "search.json").read_text(encoding="utf-8")) if (path / "search.json").exists() else {}
    except (OSError, ValueError):
        info = {}
    info = info if isinstance(info, dict) else {}
    trials = read_trials(path / "trials.csv")
    objectives = find_objectives(info, trials)
    numbers = _numbers(trials)
    done = [_done(trials, row) for row in trials.rows]
    states: dict[str, int] = {}
    for row in trials.rows:
        state = str(row.get(trials.state, "COMPLETE")) if trials.state else "COMPLETE"
        states[state] = states.get(state, 0) + 1

    summary: list[list[Any]] = [["search directory", str(path)], ["trials", len(trials.rows)]]
    summary += [[f"trials {state.lower()}", count] for state, count in sorted(states.items())]
    for key in ("searcher", "sampler", "pruner", "storage", "study", "study_name", "status"):
        value = info.get(key)
        if isinstance(value, dict) and isinstance(value.get("name"), str):
            value = value["name"]
        if isinstance(value, (str, int, float)):
            summary.append([key, value])
    for o in objectives:
        values = [row.get(o.column) for row, ok in zip(trials.rows, done) if ok and isinstance(row.get(o.column), (int, float))]
        if values:
            summary.append([f"best {o.name} ({o.direction})", (min if o.direction == "minimize" else max)(values)])
    if trials.seconds or isinstance(info.get("compute_s"), (int, float)):
        total = info.get("compute_s") if isinstance(info.get("compute_s"), (int, float)) else \
            sum(v for row in trials.rows if isinstance(v := row.get(trials.seconds), (int, float)))
        summary.append(["compute (sum of trial wall times, s)", round(float(total), 1)])
    if isinstance(info.get("wall_s"), (int, float)):
        summary.append(["wall time (s)", round(float(info["wall_s"]), 1)])
    sections = [Section("Summary", [Table(["", ""], summary)])]

    history: list[Any] = []
    values = {o.name: [row.get(o.column) if ok and isinstance(row.get(o.column), (int, float)) else None
                       for row, ok in zip(trials.rows, done)] for o in objectives}
    if image := plots.history(numbers, values, {o.name: o.direction for o in objectives}):
        history.append(Image(image, "optimisation history"))
    for title, found in importance_sets(path, info).items():
        if image := plots.bars(found, title):
            history.append(Image(image, title))
    sections.append(Section("Optimisation history", history or [Text("No finished trial yet.")]))

    params = param_columns(trials, objectives)
    shown = [c for c in ([trials.number] if trials.number else []) + [o.column for o in objectives] + params
             + ([trials.state] if trials.state else []) + ([trials.seconds] if trials.seconds else [])
             + [c for c in ("note",) if c in trials.columns] if c]
    names = {**{c: c.removeprefix("params_") for c in params}, **{o.column: o.name for o in objectives}}
    headers = [names.get(c, c) for c in shown]
    finished = [(row, n) for row, n, ok in zip(trials.rows, numbers, done) if ok
                and all(isinstance(row.get(o.column), (int, float)) for o in objectives)]
    if len(objectives) >= 2 and finished:
        pair = objectives[:2]
        points = [tuple(float(row[o.column]) for o in objectives) for row, _ in finished]
        mask = pareto_mask(points, [o.direction for o in objectives])
        image = plots.pareto_front([p[0] for p in points], [p[1] for p in points], mask, (pair[0].name, pair[1].name),
                                   [f"#{n}" for _, n in finished])
        front = [row for (row, _), on in zip(finished, mask) if on]
        blocks: list[Any] = [Image(image, "Pareto front"), Table(headers, [[row.get(c) for c in shown] for row in front],
                                                                    caption="Pareto-optimal trials")]
        sections.append(Section("Pareto front", blocks))
    elif objectives and finished:
        first = objectives[0]
        best = sorted(finished, key=lambda item: item[0][first.column], reverse=first.direction == "maximize")[:10]
        sections.append(Section("Best trials", [Table(headers, [[row.get(c) for c in shown] for row, _ in best])]))

    files = sorted(p.relative_to(path).as_posix() for p in (path / "pareto").rglob("*") if p.is_file()) \
        if (path / "pareto").is_dir() else []
    extra: list[Any] = []
    if files:
        extra.append(Text("Runnable specs of the Pareto-optimal trials (pareto/):"))
        extra.append(Code("\n".join(files)))
    if (path / "search.yaml").exists():
        spec_text = (path / "search.yaml").read_text(encoding="utf-8", errors="replace")
        extra.append(Details("search.yaml (the search's spec)", [Code(spec_text)]))
    if (path / "best.yaml").exists():
        extra.append(Details("best.yaml (the best trial's spec, runnable with hone run)",
                             [Code((path / "best.yaml").read_text(encoding="utf-8", errors="replace"))]))
    if trials.rows:
        everything = Table(headers, [[row.get(c) for c in shown] for row in trials.rows[:1000]])
        extra.append(Details(f"All {len(trials.rows)} trials", [everything]))
    if info:
        extra.append(Details("search.json", [Code(json.dumps(info, indent=2, default=str))]))
    if extra:
        sections.append(Section("Trials and files", extra))
    name = info.get("name") or info.get("study") or info.get("study_name") or path.name
    subtitle = f"{len(trials.rows)} trials · {', '.join(f'{o.name} ({o.direction})' for o in objectives) or 'no objective found'}"
    return f"hone search report: {name}", subtitle, sections
