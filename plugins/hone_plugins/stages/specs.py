"""The spec models of hone's built-in stage kinds: train, evaluate, compress, distill (pydantic only, no torch)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, model_validator

from hone.registry import Registries
from hone.spec.models import CompressorRef, DistillerRef, MetricRef, OptimizerRef, SchedulerRef, SpecPaths, StageSpec, Strict


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


class TrainStage(StageSpec):
    """Fine-tune the model: epochs of optimizer steps, validation after each, early stopping, checkpoints."""

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

    def data_splits(self) -> list[str]:
        return ["train"]


class EvaluateStage(StageSpec):
    """Score the model on one split with the stage's (or the task's default) metrics."""

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


class CompressStage(StageSpec):
    """Make the model smaller or faster with a compressor, within an accuracy budget if one is set."""

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

    def resolve_paths(self, local: SpecPaths) -> DistillStage:
        teacher = self.teacher if self.teacher is None or isinstance(self.teacher, list) else [self.teacher]
        update: dict[str, Any] = {"student": self.student and self.student.model_copy(
            update={"source": self.student.source and local(self.student.source)})}
        if teacher is not None:
            resolved = [local(t) for t in teacher]
            update["teacher"] = resolved if isinstance(self.teacher, list) else resolved[0]
        return self.model_copy(update=update)
