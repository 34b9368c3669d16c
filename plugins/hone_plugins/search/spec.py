"""The ``search:`` section of a spec: searcher, objectives, budget, pruner and the space of spec paths."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from hone.spec.models import SearcherRef, Strict, ref
from hone.spec.results import Catalog, ResultError, Results, direction
from hone_plugins.search.objectives import ObjectiveError, split_metric
from hone_plugins.search.space import SearchSpace, SpaceError, parse_entry, parse_path

PrunerRef = ref("pruner")


class Objective(Strict):
    """A result to optimise: ``<stage name>.<metric>``, or ``validation.<metric>`` for the last validation result."""

    metric: str = Field(description="e.g. test.entity_f1, all.validation.accuracy, compress.after.sparsity, validation.loss.")
    direction: Literal["maximize", "minimize"] | None = Field(None, description="Default: the direction the result's metric or "
                                                              "stage declares (maximize accuracy, minimize loss or size).")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"metric": data} if isinstance(data, str) else data

    @property
    def goal(self) -> Literal["maximize", "minimize"]:
        assert self.direction is not None, "objectives get their direction when the spec is validated"
        return self.direction

    def resolve(self, catalog: Catalog, spec: Any) -> Objective:
        """The objective with its direction: as given, or as the stage that reports the result declares it."""
        try:
            stage, path = split_metric(self.metric, spec.stage_names())
        except ObjectiveError as error:
            raise ResultError(("metric",), str(error)) from None
        names, where = spec.stage_names(), f"stage '{stage}'"
        if stage is None:  # validation.<metric>: the last stage that reports it
            path, where = f"validation.{path}", "any stage"
            each = [s.results(catalog) for s in spec.stages]
            owners = [r for r in reversed(each) if path in r.directions]
            results = owners[0] if owners else Results(
                {p: d for r in each for p, d in r.directions.items() if p.startswith("validation.")}, all(r.complete for r in each))
        else:
            results = spec.stages[names.index(stage)].results(catalog)
            deeper = sorted((p for p in results.directions if p.endswith("." + path)), key=lambda p: p.count("."))
            path = path if path in results.directions or not deeper else deeper[0]
        found = direction(results, path, ("metric",), {"maximize": "max", "minimize": "min"}.get(self.direction or ""), where)
        return self.model_copy(update={"direction": "maximize" if found == "max" else "minimize"})


class SearchSpec(Strict):
    """``hone search``: trials of the spec with values from ``space``, chosen by a searcher plugin."""

    searcher: SearcherRef = Field("tpe", validate_default=True)  # type: ignore[valid-type]
    seed: int | None = Field(None, description="Seed of the searcher's proposals; default: the spec's `seed`. Trials "
                             "train with the spec's seed either way, so another value searches the same problem afresh.")
    objectives: list[Objective] = Field(min_length=1, description="One metric, or several for a Pareto front.")
    trials: int | None = Field(None, gt=0, description="Trials in all (across workers and restarts); a grid defaults to its size. "
                               "A repeated point reuses its result and does not count.")
    max_repeats: int = Field(20, gt=0, description="Stop once the searcher has proposed only points already run this many "
                             "times in a row: it has converged, or a finite space is used up.")
    timeout: float | None = Field(None, gt=0, description="Seconds after which no new trial starts (per `hone search` call).")
    pruner: PrunerRef = Field("none", validate_default=True, description="Stops weak trials early from their per-epoch "
                              "validation results: none, median, hyperband, ...")  # type: ignore[valid-type]
    storage: str | None = Field(None, description="Optuna storage URL (postgresql://... for several machines); default: "
                                "SQLite in the search directory.")
    study: str | None = Field(None, description="Study name in the storage; default: the spec's name.")
    keep: Literal["best", "all", "none"] = Field("best", description="Trials whose final model stays in trials/<n>/model: the best "
                                                 "(or Pareto-optimal) ones, all, or none. Checkpoints go once a trial ends.")
    space: dict[str, Any] = Field(min_length=1, description="Spec path -> [values] | {choice: [...]} | {uniform|loguniform|int: "
                                  "[low, high], step?, log?} | {choices: {component: {param: range or value} | null}}.")

    @field_validator("objectives", mode="before")
    @classmethod
    def _one_objective(cls, value: Any) -> Any:
        return value if isinstance(value, list) else [value]

    @field_validator("space")
    @classmethod
    def _space(cls, space: dict[str, Any]) -> dict[str, Any]:
        details = []
        for key, value in space.items():
            try:
                parse_path(key)
                parse_entry(value)
            except SpaceError as error:
                details.append(InitErrorDetails(type=PydanticCustomError("search_space", str(error)), loc=(key, *error.loc), input=value))
        if details:
            raise ValidationError.from_exception_data(cls.__name__, details)
        return space

    @model_validator(mode="after")
    def _objectives(self) -> SearchSpec:
        metrics = [o.metric for o in self.objectives]
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"an objective is named twice: {', '.join(metrics)}")
        if len(metrics) > 1 and self.pruner.name != "none":
            raise ValueError("pruning needs a single objective (Optuna cannot prune multi-objective trials); set `pruner: none`")
        return self

    def resolve(self, catalog: Catalog, spec: Any) -> SearchSpec:
        """Each objective with its direction (see :meth:`Objective.resolve`); one that names no result is left for
        ``hone search`` and ``hone validate`` to report with the section's other problems."""
        objectives = []
        for objective in self.objectives:
            try:
                objectives.append(objective.resolve(catalog, spec))
            except ResultError:
                objectives.append(objective)
        return self.model_copy(update={"objectives": objectives})

    def parsed_space(self) -> SearchSpace:
        return SearchSpace.parse(self.space)
