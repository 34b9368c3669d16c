"""Read a run directory back: spec, events, metrics and what follows from them (timings, curves, size)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import yaml

from hone.errors import HoneError
from hone.report import RunData
from hone.run.events import read_events
from hone.run.rundir import EVENTS, METRICS, SPEC, STATE
from hone.run.results import scalars
from hone.spec.models import SPLITS

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def _read(path: Path, parse: Any) -> Any:
    try:
        value = parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError):
        return {}
    return value if isinstance(value, dict) else {}


def load_run(path: Path) -> RunData:
    """Read ``path``; a HoneError if it holds no run at all."""
    path = Path(path)
    if not path.is_dir():
        raise HoneError(f"{path}: not a directory")
    if not any((path / name).exists() for name in (SPEC, EVENTS, METRICS, STATE)):
        raise HoneError(f"{path}: not a hone run directory (no spec.yaml, events.jsonl, metrics.json or state.json)")
    return RunData(
        path=path,
        spec=_read(path / SPEC, yaml.safe_load),
        events=read_events(path / EVENTS),
        metrics=_read(path / METRICS, json.loads),
        state=_read(path / STATE, json.loads),
    )


def stage_names(run: RunData) -> list[str]:
    """Stage names in spec order, then any others the results or events mention."""
    names: list[str] = []
    for index, stage in enumerate(run.spec.get("stages") or []):
        if isinstance(stage, dict):
            names.append(str(stage.get("name") or f"{index}-{stage.get('type', 'stage')}"))
    for name in [*run.metrics, *(e.get("stage") for e in run.events if e.get("stage"))]:
        if name not in names:
            names.append(str(name))
    return names


def stage_types(run: RunData) -> dict[str, str]:
    types = {name: str(stage.get("type", "")) for name, stage in zip(stage_names(run), run.spec.get("stages") or [])
             if isinstance(stage, dict)}
    for event in run.of("stage_start"):
        types.setdefault(str(event.get("stage")), str(event.get("type", "")))
    return types


def split_names(run: RunData) -> set[str]:
    """Every name a stage result may use for a split's metrics."""
    names = set(SPLITS)
    for event in run.of("run_start"):
        names.update((event.get("sizes") or {}).keys())
    for stage in run.spec.get("stages") or []:
        if isinstance(stage, dict):
            names.update(str(stage[k]) for k in ("split", "eval_split", "budget_split") if isinstance(stage.get(k), str))
    return names


def environment(run: RunData) -> dict[str, Any]:
    """What the last run_start recorded (device, precision, versions), with the data sizes."""
    starts = run.of("run_start")
    if not starts:
        return {}
    skip = {"event", "time", "labels", "name"}
    return {k: v for k, v in starts[-1].items() if k not in skip}


def stage_timings(run: RunData) -> list[dict[str, Any]]:
    """Wall seconds per stage (summed over resumed attempts), in spec order."""
    seconds: dict[str, float] = {}
    open_stage: tuple[str, float] | None = None
    last_time = None
    for event in run.events:
        kind, time_ = event.get("event"), event.get("time")
        if not isinstance(time_, (int, float)):
            continue
        if kind in ("run_start", "run_failed") and open_stage is not None:  # an attempt that ended inside a stage
            end = time_ if kind == "run_failed" else last_time
            seconds[open_stage[0]] = seconds.get(open_stage[0], 0.0) + max(0.0, (end or open_stage[1]) - open_stage[1])
            open_stage = None
        if kind == "stage_start":
            open_stage = (str(event.get("stage")), time_)
        elif kind == "stage_end" and open_stage is not None:
            seconds[open_stage[0]] = seconds.get(open_stage[0], 0.0) + max(0.0, time_ - open_stage[1])
            open_stage = None
        last_time = time_
    types = stage_types(run)
    return [{"stage": name, "type": types.get(name, ""), "seconds": seconds[name]} for name in stage_names(run) if name in seconds]


def wall_seconds(run: RunData) -> float | None:
    """Seconds the run's attempts took, from each run_start to its last event (the run's cost)."""
    total, start, last = 0.0, None, None
    for event in run.events:
        time_ = event.get("time")
        if not isinstance(time_, (int, float)):
            continue
        if event.get("event") == "run_start":
            if start is not None and last is not None:
                total += last - start
            start = time_
        last = time_
    if start is None or last is None:
        return None
    return total + last - start


def _stage_offsets(run: RunData) -> dict[str, int]:
    """Global step at which each training stage starts: stages' steps follow one another on one axis."""
    offsets: dict[str, int] = {}
    last_step: dict[str, int] = {}
    for event in run.events:
        stage, step = event.get("stage"), event.get("step")
        if event.get("event") in ("step_end", "evaluation_done", "epoch_end") and stage and isinstance(step, int):
            last_step[stage] = max(last_step.get(stage, 0), step)
    total = 0
    for name in stage_names(run):
        if name in last_step:
            offsets[name] = total
            total += last_step[name]
    return offsets


def stage_boundaries(run: RunData) -> list[tuple[int, str]]:
    """(global step, stage name) where each training stage starts."""
    return [(offset, name) for name, offset in _stage_offsets(run).items()]


def step_series(run: RunData) -> dict[str, list[tuple[int, float]]]:
    """Each scalar of step_end events (loss, lr, ...) against the global step; a resumed step counts once."""
    offsets = _stage_offsets(run)
    points: dict[str, dict[int, float]] = {}
    for event in run.of("step_end"):
        stage, step = event.get("stage"), event.get("step")
        if stage not in offsets or not isinstance(step, int):
            continue
        for name, value in (event.get("metrics") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                points.setdefault(name, {})[offsets[stage] + step] = float(value)
    return {name: sorted(values.items()) for name, values in points.items()}


def eval_series(run: RunData) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Per split, each scalar of training stages' evaluation_done events against the global step."""
    offsets = _stage_offsets(run)
    series: dict[str, dict[str, dict[int, float]]] = {}
    for event in run.of("evaluation_done"):
        stage, step = event.get("stage"), event.get("step")
        if stage not in offsets or not isinstance(step, int):
            continue
        split = str(event.get("split", "validation"))
        for name, value in (event.get("metrics") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                series.setdefault(split, {}).setdefault(name, {})[offsets[stage] + step] = float(value)
    return {split: {name: sorted(v.items()) for name, v in metrics.items()} for split, metrics in series.items()}


def evaluations(run: RunData) -> list[tuple[str, str, dict[str, Any]]]:
    """(stage, split, results) for every split's results in metrics.json, in stage order."""
    splits = split_names(run)
    out = []
    for stage, result in run.metrics.items():
        if not isinstance(result, dict):
            continue
        for key, value in result.items():
            if key in splits and isinstance(value, dict) and scalars(value):
                out.append((stage, key, value))
    return out


def final_evaluation(run: RunData) -> tuple[str, str, dict[str, Any]] | None:
    """The run's headline results: the last test-split results, else the last results of any split."""
    found = evaluations(run)
    tests = [item for item in found if item[1] == "test"]
    return (tests or found or [None])[-1]


def find_metric(run: RunData, name: str) -> float | None:
    """``name`` from the final results, or ``stage.split.name`` / ``split.name`` for other results."""
    final = final_evaluation(run)
    if final and isinstance(final[2].get(name), (int, float)):
        return float(final[2][name])
    parts = name.split(".")
    for stage, split, values in reversed(evaluations(run)):
        if (len(parts) == 3 and parts[:2] == [stage, split]) or (len(parts) == 2 and parts[0] == split):
            value = values.get(parts[-1])
            if isinstance(value, (int, float)):
                return float(value)
    return None


def compress_results(run: RunData) -> list[tuple[str, dict[str, Any]]]:
    """(stage, result) of every compress stage that finished."""
    types = stage_types(run)
    return [(stage, result) for stage, result in run.metrics.items()
            if isinstance(result, dict) and (types.get(stage) == "compress" or "compressor" in result)]


def _safetensors_parameters(path: Path) -> int:
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        if length > 100_000_000:
            raise ValueError("implausible safetensors header")
        header = json.loads(handle.read(length))
    total = 0
    for name, info in header.items():
        if name != "__metadata__" and isinstance(info, dict):
            count = 1
            for dim in info.get("shape", []):
                count *= int(dim)
            total += count
    return total


def model_size(run: RunData) -> dict[str, Any]:
    """Parameters (non-zero ones after compression) and bytes of the final model's weights."""
    size: dict[str, Any] = {}
    compressed = compress_results(run)
    after = compressed[-1][1].get("after") if compressed else None
    if isinstance(after, dict):
        size.update({k: after[k] for k in ("parameters", "nonzero", "size_bytes") if isinstance(after.get(k), (int, float))})
    model = run.path / "model"
    weights = [p for p in model.glob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file()] if model.is_dir() else []
    if weights:
        size.setdefault("size_bytes", sum(p.stat().st_size for p in weights))
        try:
            counted = sum(_safetensors_parameters(p) for p in weights if p.suffix == ".safetensors")
        except (OSError, ValueError, struct.error):
            counted = 0
        if counted:
            size.setdefault("parameters", counted)
    return size


def train_speed(run: RunData) -> float | None:
    """Mean training throughput (samples/s) over the run's epochs."""
    rates = [e["samples_per_s"] for e in run.of("epoch_end") if isinstance(e.get("samples_per_s"), (int, float))]
    return sum(rates) / len(rates) if rates else None


def eval_speed(run: RunData) -> float | None:
    """Examples per second of the last evaluate stage (its split's size over the stage's wall time)."""
    sizes: dict[str, int] = {}
    for event in run.of("run_start"):
        sizes.update(event.get("sizes") or {})
    start: dict[str, float] = {}
    speed = None
    for event in run.events:
        stage = event.get("stage")
        if event.get("event") == "stage_start" and event.get("type") == "evaluate":
            start[stage] = event.get("time", 0.0)
        elif event.get("event") == "evaluation_done" and stage in start and sizes.get(event.get("split", "")):
            seconds = event.get("time", 0.0) - start.pop(stage)
            if seconds > 0:
                speed = sizes[event["split"]] / seconds
    return speed
