"""The run spec: pydantic models of a whole job, validated against the installed plugins."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (BaseModel, ConfigDict, Field, SerializationInfo, SerializeAsAny, ValidationError, ValidationInfo,
                      field_validator, model_serializer, model_validator)
from pydantic_core import InitErrorDetails, PydanticCustomError

from hone.registry import Registries, UnknownComponentError
from hone.space import SearchSpace, SpaceError, parse_entry, parse_path


AS_WRITTEN = "as_written"  # a dump context key: component params as the spec wrote them


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComponentRef(BaseModel):
    """``{name: <registered name>, <param>: <value>, ...}``, or just the name; ``params`` is the plugin's own
    params model, validated once, with every default filled in (a spec dumps it back flat, as it is written)."""

    model_config = ConfigDict(extra="forbid")
    kind: ClassVar[str] = ""
    name: str
    params: SerializeAsAny[BaseModel]

    @model_validator(mode="wrap")
    @classmethod
    def _check_plugin(cls, data: Any, handler: Any, info: ValidationInfo) -> Any:
        if isinstance(data, str):
            data = {"name": data}
        if isinstance(data, ComponentRef) or not isinstance(data, Mapping):
            return handler(data)  # pydantic reports the wrong type
        if not isinstance(data.get("name"), str):
            error = InitErrorDetails(type="missing" if "name" not in data else "string_type", loc=("name",), input=data.get("name", data))
            raise ValidationError.from_exception_data(cls.__name__, [error])
        registries: Registries | None = (info.context or {}).get("registries")
        if registries is None:
            raise ValueError("a component is validated against the installed plugins: use hone.spec.loading.validate_spec")
        try:
            component = registries.get(cls.kind, data["name"])
        except UnknownComponentError as error:
            detail = InitErrorDetails(type=PydanticCustomError("unknown_component", str(error)), loc=("name",), input=data["name"])
            raise ValidationError.from_exception_data(cls.__name__, [detail]) from None
        raw = {key: value for key, value in data.items() if key != "name"}
        return cls.model_construct(name=data["name"], params=strict(component.params).model_validate(raw, context=info.context))

    @model_serializer(mode="wrap")
    def _flat(self, handler: Any, info: SerializationInfo) -> dict[str, Any]:
        dumped = handler(self)
        if (info.context or {}).get(AS_WRITTEN):  # the params the spec gave, without the plugin's defaults
            return {"name": self.name, **self.params.model_dump(mode="json", exclude_unset=True)}
        return {"name": dumped["name"], **dumped["params"]}

    def settings(self) -> dict[str, Any]:
        """The params as a plain dict (every default included)."""
        return self.params.model_dump(mode="json")


@functools.cache
def strict(model: type[BaseModel]) -> type[BaseModel]:
    """``model``, or a subclass refusing unknown keys where it does not: a misspelt parameter is always an error."""
    if model.model_config.get("extra") == "forbid":
        return model
    return type(model.__name__, (model,), {"model_config": ConfigDict(**{**model.model_config, "extra": "forbid"}),
                                           "__module__": model.__module__})


def _ref(kind: str) -> type[ComponentRef]:
    return type(f"{kind.capitalize()}Ref", (ComponentRef,), {"kind": kind, "__doc__": f"A {kind} chosen by name."})


TaskRef, ReaderRef, OptimizerRef, SchedulerRef, MetricRef, CallbackRef = (
    _ref(k) for k in ("task", "reader", "optimizer", "scheduler", "metric", "callback")
)
CompressorRef, DistillerRef, SearcherRef = (_ref(k) for k in ("compressor", "distiller", "searcher"))


class ModelSpec(Strict):
    source: str = Field(description="Hub name, local folder, or 'pkg:<module>' whose get_model_path() gives a folder.")
    revision: str | None = None
    trust_remote_code: bool = Field(False, description="Run the model repository's own code. Off unless you trust it.")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"source": data} if isinstance(data, str) else data


class DataSpec(Strict):
    reader: ReaderRef  # type: ignore[valid-type]
    train: str | None = None
    validation: str | None = None
    test: str | None = None
    path: str | None = Field(None, description="One file split into train/validation/test by `split`.")
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    limit: int | None = Field(None, gt=0, description="Use at most this many examples of each split.")

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        if self.path is not None and self.train is not None:
            raise ValueError("give either `train` (with optional `validation`/`test`) or `path` (split by ratio), not both")
        if self.path is None and self.train is None and self.validation is None and self.test is None:
            raise ValueError("give `train` (with optional `validation`/`test`), `path` (one file split by ratio), "
                             "or, for a run that only evaluates, `validation` and/or `test`")
        if self.path is not None and (abs(sum(self.split) - 1.0) > 1e-6 or min(self.split) < 0):
            raise ValueError(f"`split` must be three non-negative ratios summing to 1, got {list(self.split)}")
        return self


class EarlyStopping(Strict):
    metric: str = Field("loss", description="A validation metric name, e.g. entity_f1, accuracy, loss.")
    mode: Literal["min", "max"] | None = Field(None, description="Default: min for loss-like names, else max.")
    patience: int = Field(3, ge=1)
    min_delta: float = Field(0.0, ge=0)
    restore_best: bool = True

    @property
    def direction(self) -> Literal["min", "max"]:
        if self.mode:
            return self.mode
        return "min" if any(k in self.metric for k in ("loss", "perplexity", "mse", "error")) else "max"


class GradualPruning(Strict):
    """Compress while training: e.g. magnitude sparsity rising on Zhu & Gupta's cubic schedule."""

    compressor: CompressorRef = Field(  # type: ignore[valid-type]
        "magnitude", validate_default=True,
        description="A compressor with gradual(); its params give the final state, e.g. {name: magnitude, sparsity: 0.5}.")
    start: float = Field(0.0, ge=0, lt=1, description="Fraction of the stage's optimizer steps before the first update.")
    end: float = Field(0.75, gt=0, le=1, description="Fraction of the stage's optimizer steps by which full strength is reached.")
    every: int = Field(10, ge=1, description="Optimizer steps between updates of the pruning masks.")

    @model_validator(mode="after")
    def _ordered(self) -> GradualPruning:
        if self.end <= self.start:
            raise ValueError(f"`end` ({self.end}) must come after `start` ({self.start})")
        return self


class TrainStage(Strict):
    type: Literal["train"]
    name: str | None = None
    epochs: int = Field(1, ge=1)
    max_steps: int | None = Field(None, gt=0, description="Stop after this many optimizer steps.")
    batch_size: int = Field(32, gt=0)
    eval_batch_size: int | None = Field(None, gt=0)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_grad_norm: float | None = Field(1.0, gt=0)
    optimizer: OptimizerRef = Field("adamw", validate_default=True)  # type: ignore[valid-type]
    scheduler: SchedulerRef = Field("linear", validate_default=True)  # type: ignore[valid-type]
    freeze: list[str] = Field(default_factory=list, description="Parameter-name patterns (fnmatch) to freeze.")
    train_only: list[str] = Field(default_factory=list, description="If set, freeze every parameter not matching these.")
    l1: float = Field(0.0, ge=0, description="L1 penalty on trainable weights.")
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    dropout: float | None = Field(None, ge=0, lt=1, description="Override every dropout probability.")
    early_stopping: EarlyStopping | None = None
    metrics: list[MetricRef] | None = None  # type: ignore[valid-type]
    eval_split: str = "validation"
    group_by_length: bool = True
    checkpoint_steps: int | None = Field(None, gt=0, description="Also checkpoint every N optimizer steps.")
    logging_steps: int = Field(20, gt=0)
    on_nonfinite: Literal["stop", "skip"] = Field(
        "stop", description="A NaN/inf loss: stop the stage (the last good checkpoint is kept) or skip that batch.")
    pruning: GradualPruning | None = Field(None, description="Prune gradually during this stage (made permanent at its end).")


class EvaluateStage(Strict):
    type: Literal["evaluate"]
    name: str | None = None
    split: str = "test"
    batch_size: int = Field(64, gt=0)
    metrics: list[MetricRef] | None = None  # type: ignore[valid-type]


class MaxDrop(Strict):
    """A compress stage's accuracy budget: how far a validation metric may fall below the uncompressed model's."""

    metric: str | None = Field(None, description="A metric key, e.g. entity_f1, accuracy; default: the task's first default metric.")
    value: float = Field(ge=0, description="Largest allowed drop in the metric's units (entity_f1 is 0-1: one F1 point is 0.01), "
                         "or a fraction of the uncompressed value with `relative: true`.")
    relative: bool = False
    mode: Literal["min", "max"] | None = Field(None, description="Default: min for loss-like names, else max.")

    def direction(self, metric: str) -> Literal["min", "max"]:
        """Whether higher (max) or lower (min) values of ``metric`` are better."""
        if self.mode:
            return self.mode
        return "min" if any(k in metric for k in ("loss", "perplexity", "mse", "error")) else "max"


class BudgetSearch(Strict):
    """The settings a compress stage tries against its budget, strongest first."""

    param: str = Field(description="The compressor parameter to vary, e.g. sparsity.")
    candidates: list[Any] = Field(min_length=1, description="Values to try, strongest first; the first within budget is kept.")


class CompressStage(Strict):
    type: Literal["compress"]
    name: str | None = None
    compressor: CompressorRef  # type: ignore[valid-type]
    max_drop: MaxDrop | None = None
    search: BudgetSearch | None = None
    budget_split: str = Field("validation", description="The split the budget is measured on.")
    metrics: list[MetricRef] | None = None  # type: ignore[valid-type]
    batch_size: int = Field(64, gt=0, description="Batch size of the budget's evaluations.")

    @model_validator(mode="after")
    def _search_fits(self, info: ValidationInfo) -> CompressStage:
        if self.search is None:
            return self
        if self.max_drop is None:
            raise ValueError("`search` tries settings against an accuracy budget: set `max_drop` too")
        registries: Registries | None = (info.context or {}).get("registries")
        if registries is None or self.compressor.name not in registries["compressor"]:
            return self
        params = registries.get("compressor", self.compressor.name).params
        if self.search.param not in params.model_fields:
            raise ValueError(f"search.param '{self.search.param}' is not a parameter of compressor '{self.compressor.name}'; "
                             f"its parameters: {', '.join(params.model_fields) or 'none'}")
        for candidate in self.search.candidates:
            try:
                params.model_validate({**self.compressor.settings(), self.search.param: candidate})
            except ValidationError as error:
                raise ValueError(f"search.candidates: {candidate!r} is not a valid '{self.search.param}' for compressor "
                                 f"'{self.compressor.name}': {error.errors()[0]['msg']}") from None
        return self


class StudentSpec(Strict):
    layers: list[int] | None = Field(
        None, min_length=1, description="Keep these transformer layers of the (first) teacher, with its embeddings and head.")
    source: str | None = Field(None, description="Start from this model (Hub name, folder, pkg:<module>); it must share the run's tokenizer.")
    revision: str | None = None
    config: dict[str, Any] = Field(
        default_factory=dict, description="Config overrides (num_hidden_layers, hidden_size, ...) of `source` or the teacher; "
        "the student then starts from random weights.")

    @model_validator(mode="after")
    def _one_kind(self) -> StudentSpec:
        if self.layers is not None and (self.source is not None or self.config):
            raise ValueError("give `layers` (keep some of the teacher's layers) or `source` / `config`, not both")
        if self.layers is None and self.source is None and not self.config:
            raise ValueError("give `layers: [0, 2, 4]`, `source: <model>` or `config: {num_hidden_layers: 3}`")
        if self.layers is not None and (len(set(self.layers)) != len(self.layers) or min(self.layers) < 0):
            raise ValueError(f"`layers` must be distinct layer indices from 0, got {self.layers}")
        return self


class DistillStage(TrainStage):
    """A train stage whose loss comes from a distiller; the student replaces the model."""

    type: Literal["distill"]  # type: ignore[assignment]
    teacher: str | list[str] | None = Field(
        None, description="Run directory, model folder, Hub name or pkg:<module>, or a list of them (multi-teacher); "
        "default: the current model.")
    student: StudentSpec | None = Field(
        None, description="The model to train; leave it out to train the current model (a pruned one, say) on a "
        "named `teacher`'s outputs.")
    distiller: DistillerRef = Field("logits", validate_default=True)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _teachers(self) -> DistillStage:
        if isinstance(self.teacher, list) and not self.teacher:
            raise ValueError("`teacher: []` names no teacher; leave it out to distil the current model")
        if self.student is None and self.teacher is None:
            raise ValueError("give a `student` to train, or a `teacher` for the current model to learn from "
                             "(without either the model would learn from itself)")
        return self

    def teachers(self) -> list[str]:
        """The teachers named by the spec; empty: the current model."""
        return [] if self.teacher is None else [self.teacher] if isinstance(self.teacher, str) else list(self.teacher)

    def resolve_paths(self, local: Callable[[str], str]) -> DistillStage:
        teacher = self.teacher if self.teacher is None or isinstance(self.teacher, list) else [self.teacher]
        update: dict[str, Any] = {"student": self.student and self.student.model_copy(
            update={"source": self.student.source and local(self.student.source)})}
        if teacher is not None:
            resolved = [local(t) for t in teacher]
            update["teacher"] = resolved if isinstance(self.teacher, list) else resolved[0]
        return self.model_copy(update=update)


Stage = Annotated[Union[TrainStage, EvaluateStage, DistillStage, CompressStage], Field(discriminator="type")]


MINIMIZED = ("loss", "perplexity", "mse", "error", "latency", "seconds", "size", "bytes", "parameters", "nonzero")


class Objective(Strict):
    """A result to optimise: ``<stage name>.<metric>``, or ``validation.<metric>`` for the last validation result."""

    metric: str = Field(description="e.g. test.entity_f1, all.validation.accuracy, compress.after.sparsity, validation.loss.")
    direction: Literal["maximize", "minimize"] | None = Field(None, description="Default: minimize loss-, error-, size- and latency-like names.")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"metric": data} if isinstance(data, str) else data

    @property
    def goal(self) -> Literal["maximize", "minimize"]:
        if self.direction:
            return self.direction
        return "minimize" if any(k in self.metric.rsplit(".", 1)[-1] for k in MINIMIZED) else "maximize"


class PrunerSpec(Strict):
    """Stops unpromising trials early from their per-epoch validation results."""

    name: Literal["none", "median", "hyperband"] = "none"
    startup_trials: int = Field(3, ge=0, description="median: finished trials before any trial is pruned.")
    warmup_evals: int = Field(0, ge=0, description="median: evaluations a trial gets before it may be pruned.")
    min_evals: int = Field(1, ge=1, description="hyperband: evaluations every trial gets (min_resource).")
    reduction_factor: int = Field(3, ge=2, description="hyperband: 1/reduction_factor of the trials go on at each rung.")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data


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
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
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

    def parsed_space(self) -> SearchSpace:
        return SearchSpace.parse(self.space)


class RunSpec(Strict):
    name: str = Field("run", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    seed: int = 42
    output_dir: str = "runs"
    plugins_dir: list[str] = Field(default_factory=list, description="Folders of plain .py plugin modules.")
    model: ModelSpec
    task: TaskRef  # type: ignore[valid-type]
    data: DataSpec
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    callbacks: list[CallbackRef] = Field(default_factory=list)  # type: ignore[valid-type]
    stages: list[Stage] = Field(min_length=1)
    search: SearchSpec | None = Field(None, description="Used by `hone search`; `hone run` runs the spec as it is.")

    @model_validator(mode="after")
    def _training_data(self) -> RunSpec:
        if self.data.train is None and self.data.path is None:
            for name, stage in zip(self.stage_names(), self.stages):
                if stage.type in ("train", "distill"):
                    raise ValueError(f"stage '{name}' ({stage.type}) needs training data: give `data.train` or `data.path`")
        return self

    def stage_names(self) -> list[str]:
        return [s.name or f"{i}-{s.type}" for i, s in enumerate(self.stages)]

    def resolve_paths(self, base: Path) -> RunSpec:
        """Make data, plugin and local model paths relative to the spec file's folder."""

        def resolve(value: str | None) -> str | None:
            if value is None or Path(value).is_absolute():
                return value
            return str((base / value).resolve())

        data = self.data.model_copy(
            update={k: resolve(getattr(self.data, k)) for k in ("train", "validation", "test", "path")}
        )
        def local(source: str) -> str:
            """A model source: a folder relative to the spec, or a Hub / pkg: name left as it is."""
            if source.startswith((".", "/")) or (base / source).exists():
                return resolve(source) or source
            return source

        return self.model_copy(
            update={
                "data": data,
                "plugins_dir": [resolve(p) for p in self.plugins_dir],
                "output_dir": resolve(self.output_dir),
                "model": self.model.model_copy(update={"source": local(self.model.source)}),
                "stages": [s.resolve_paths(local) if isinstance(s, DistillStage) else s for s in self.stages],
            }
        )
