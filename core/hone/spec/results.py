"""The results a spec's stages will report, known before any work from what metrics and stages declare."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hone.registry import Registries

MAXIMIZE, MINIMIZE = "max", "min"


@dataclass
class Results:
    """Result paths (``validation.accuracy``, ``after.nonzero``) and which way each improves (None: neither).

    ``complete`` is False where a component declared nothing, so results of other names may appear too."""

    directions: dict[str, str | None] = field(default_factory=dict)
    complete: bool = True

    def under(self, prefix: str) -> Results:
        return Results({f"{prefix}.{name}": d for name, d in self.directions.items()}, self.complete)

    def __or__(self, other: Results) -> Results:
        return Results({**self.directions, **other.directions}, self.complete and other.complete)


class ResultError(ValueError):
    """A name a spec uses that its stages will not report, or whose direction nothing declares; ``loc`` is in the stage."""

    def __init__(self, loc: tuple[Any, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


@dataclass
class Catalog:
    """What a spec's components declare: the task's default metrics, each metric's results and their directions."""

    registries: Registries
    task: Any  # the spec's TaskRef

    def default_metrics(self) -> list[str] | None:
        """The task's default metric names; None where the task does not declare them."""
        declared = self.registries.get("task", self.task.name).info.get("default_metrics")
        return None if declared is None else list(declared)

    def metrics(self, refs: Sequence[Any] | None) -> Results:
        """The results an evaluation with ``refs`` (None: the task's default metrics) reports, the loss included."""
        results = Results({"loss": MINIMIZE})
        names = [(ref, None) if isinstance(ref, str) else (ref.name, ref.params) for ref in refs] if refs is not None else \
            [(name, None) for name in self.default_metrics() or []]
        if refs is None and self.default_metrics() is None:
            results.complete = False
        for name, params in names:
            component = self.registries.get("metric", name)
            if "results" in component.info:
                results.directions.update(component.results(params))
            else:
                results.complete = False
        return results


def direction(results: Results, name: str, loc: tuple[Any, ...], mode: str | None = None, where: str = "this stage") -> str:
    """``mode``, or the declared direction of result ``name``; a ResultError if ``name`` will not be reported."""
    if name not in results.directions and results.complete:
        close = difflib.get_close_matches(name, list(results.directions), n=1, cutoff=0.5)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ResultError(loc, f"'{name}' is not among the results {where} reports.{hint} "
                               f"Reported: {', '.join(sorted(results.directions))}")
    found = mode or results.directions.get(name)
    if found is None:
        why = "nothing declares which way it improves" if name in results.directions else \
            "a metric of the stage does not declare its results"
        raise ResultError(loc, f"cannot tell whether higher or lower '{name}' is better ({why}): set `mode: max` or `mode: min`")
    return found
