"""Search objectives: which stage's result an objective names, and its value in a run's metrics.json."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hone.errors import HoneError

LAST_VALIDATION = "validation"


class ObjectiveError(HoneError):
    """An objective's metric is missing from a run's results, or names no stage."""


def split_metric(metric: str, stages: Sequence[str]) -> tuple[str | None, str]:
    """``test.entity_f1`` -> ``('test', 'entity_f1')``; the stage is the longest matching name, None for ``validation.<m>``."""
    matches = [s for s in stages if metric.startswith(s + ".") and len(metric) > len(s) + 1]
    if matches:
        stage = max(matches, key=len)
        return stage, metric[len(stage) + 1:]
    if metric.startswith(LAST_VALIDATION + ".") and len(metric) > len(LAST_VALIDATION) + 1:
        return None, metric[len(LAST_VALIDATION) + 1:]
    raise ObjectiveError(f"'{metric}' names no stage: write <stage>.<metric> with a stage among {', '.join(stages)}, "
                         f"or {LAST_VALIDATION}.<metric> for the last validation result")


def leaf(metric: str) -> str:
    """The metric's own name (what per-epoch validation reports), e.g. ``entity_f1``."""
    return metric.rsplit(".", 1)[-1]


def _scalar(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _exact(results: Any, keys: list[str]) -> Any:
    for key in keys:
        if not isinstance(results, Mapping) or key not in results:
            return None
        results = results[key]
    return results


def _shallowest(results: Mapping[str, Any], name: str, prefix: str) -> list[tuple[str, Any]]:
    """Every scalar called ``name`` at the smallest depth it occurs, with its full path."""
    level: list[tuple[str, Any]] = [(prefix, results)]
    while level:
        found = [(f"{path}.{name}", value[name]) for path, value in level if _scalar(value.get(name))]
        if found:
            return found
        level = [(f"{path}.{k}", v) for path, value in level for k, v in value.items() if isinstance(v, Mapping)]
    return []


def scalar_paths(results: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every scalar's dotted path (for 'available' lists), per-layer reports left out."""
    out = []
    for key, value in results.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if _scalar(value):
            out.append(path)
        elif isinstance(value, Mapping) and not key.endswith(("report", "sparsity", "layers")):
            out += scalar_paths(value, path)
    return out


def objective_value(results: Mapping[str, Any], metric: str, stages: Sequence[str]) -> float:
    """The value ``metric`` names in ``results`` (a run's metrics.json): an exact dotted path, or a unique shallowest match."""
    stage, rest = split_metric(metric, stages)
    if stage is None:
        for name in reversed(list(results)):
            value = _exact(results[name], ["validation", rest])
            if _scalar(value):
                return float(value)
        raise ObjectiveError(f"objective '{metric}': no stage reported validation '{rest}'; "
                             f"available: {', '.join(scalar_paths(results)) or 'nothing'}")
    if stage not in results:
        raise ObjectiveError(f"objective '{metric}': stage '{stage}' has no results")
    value = _exact(results[stage], rest.split("."))
    if _scalar(value):
        return float(value)
    found = _shallowest(results[stage], rest, stage) if "." not in rest else []
    if len(found) == 1:
        return float(found[0][1])
    if found:
        raise ObjectiveError(f"objective '{metric}' is ambiguous: write one of {', '.join(p for p, _ in found)}")
    raise ObjectiveError(f"objective '{metric}' is not in stage '{stage}''s results; "
                         f"available: {', '.join(scalar_paths(results[stage], stage)) or 'nothing'}")
