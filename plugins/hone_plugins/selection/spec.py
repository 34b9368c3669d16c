"""The ``selection:`` section of a spec: candidate models, the composite objective and how latency is measured."""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from hone.spec.models import ModelSpec, Strict
from hone.spec.results import Catalog, ResultError
from hone_plugins.search.spec import Objective

MEASURES = ("latency_ms", "size_mb", "parameters_m", "wall_s")
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"


class Candidate(Strict):
    """One model to fine-tune with the spec: any model source, optionally cut to some of its transformer layers."""

    name: str | None = Field(None, pattern=NAME, description="Its folder under runs/ and its row in the ranking; "
                             "default: the model's last path part, with -l<N> for a cut.")
    model: ModelSpec | None = Field(None, description="Hub name, local folder (relative to the spec) or pkg:<module>; "
                                    "default: the spec's `model`.")
    layers: int | list[int] | None = Field(None, description="Keep only these transformer layers before fine-tuning: "
                                           "N (the first N) or a list of indices such as [0, 2, 4].")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"model": data} if isinstance(data, str) else data

    @field_validator("layers")
    @classmethod
    def _layers(cls, layers: int | list[int] | None) -> int | list[int] | None:
        if isinstance(layers, int) and layers < 1:
            raise ValueError(f"keep at least one layer, got {layers}")
        if isinstance(layers, list):
            if not layers or min(layers) < 0 or len(set(layers)) != len(layers):
                raise ValueError(f"give distinct layer indices from 0, got {layers}")
        return layers

    def kept(self, total: int) -> list[int]:
        """The indices of the layers kept out of ``total``."""
        return list(range(self.layers)) if isinstance(self.layers, int) else list(self.layers or range(total))

    def default_name(self, spec_model: ModelSpec) -> str:
        source = (self.model or spec_model).source
        last = PurePath(source.removeprefix("pkg:")).name or source
        base = re.sub(r"[^A-Za-z0-9_.\-]", "-", last).strip("-.") or "model"
        if self.layers is not None:
            base += f"-l{self.layers if isinstance(self.layers, int) else len(self.layers)}"
        return base


class Penalties(Strict):
    """What one unit of each measure costs, in points of the metric (0: the measure does not count)."""

    latency_ms: float = Field(0.0, ge=0, description="Per millisecond of median latency of one example "
                              "(batch size 1).")
    size_mb: float = Field(0.0, ge=0, description="Per megabyte of the final model's weights on disk.")
    parameters_m: float = Field(0.0, ge=0, description="Per million parameters of the final model.")
    wall_s: float = Field(0.0, ge=0, description="Per second of the candidate's fine-tuning wall time (its cost).")

    def weights(self) -> dict[str, float]:
        return {measure: getattr(self, measure) for measure in MEASURES if getattr(self, measure)}


class SelectionObjective(Objective):
    """``score = metric - sum(weight * measure)``, ``-metric`` for one to minimize (a loss): the highest score wins."""

    penalties: Penalties = Field(default_factory=Penalties)

    def formula(self) -> str:
        head = self.metric if self.goal == "maximize" else f"-{self.metric}"
        return " - ".join([head, *(f"{w:g} * {m}" for m, w in self.penalties.weights().items())])


class Latency(Strict):
    """How each candidate's latency is measured once it is fine-tuned: ``hone predict`` one example at a time."""

    examples: int = Field(20, gt=0, description="Examples of `split` timed one by one, after `warmup` untimed calls.")
    warmup: int = Field(3, ge=0)
    split: Literal["train", "validation", "test"] | None = Field(None, description="Default: test, else validation, "
                                                                 "else train.")
    device: str = Field("cpu", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$", description="Where predictions are timed.")
    max_new_tokens: int = Field(20, gt=0, description="Generative tasks: tokens generated per example.")


class SelectionSpec(Strict):
    """``hone select``: fine-tune each candidate with this spec (the same task, data and budget), then rank them."""

    candidates: list[Candidate] = Field(min_length=1, description="The models to compare.")
    objective: SelectionObjective
    latency: Latency = Field(default_factory=Latency)

    @model_validator(mode="after")
    def _unique_names(self) -> SelectionSpec:
        seen: dict[str, int] = {}
        details = []
        for index, candidate in enumerate(self.candidates):
            if candidate.name is None:
                continue
            if candidate.name in seen:
                details.append(InitErrorDetails(type=PydanticCustomError(
                    "duplicate_candidate",
                    "candidate '{name}' is named twice (also candidates[{first}]): names must differ",
                    {"name": candidate.name, "first": seen[candidate.name]}), loc=("candidates", index, "name"),
                    input=candidate.name))
            seen.setdefault(candidate.name, index)
        if details:
            raise ValidationError.from_exception_data(type(self).__name__, details)
        return self

    def resolve(self, catalog: Catalog, spec: Any) -> SelectionSpec:
        """Candidates named, the objective with its direction from the results catalogue (a ResultError, located at
        the objective, for a result the spec's stages will not report)."""
        names = [c.name or c.default_name(spec.model) for c in self.candidates]
        taken = {c.name for c in self.candidates if c.name}
        candidates = []
        for index, (candidate, name) in enumerate(zip(self.candidates, names)):
            if candidate.name is None and (name in taken or names.count(name) > 1):
                name = f"{name}-{index}"
            candidates.append(candidate.model_copy(update={"name": name}))
        try:
            objective = self.objective.resolve(catalog, spec)
        except ResultError as error:
            raise ResultError(("objective", *error.loc), str(error)) from None
        return self.model_copy(update={"candidates": candidates, "objective": objective})
