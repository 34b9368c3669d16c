"""The spec models of hone's built-in stage kinds: train, evaluate, compress, distill, export (pydantic only, no torch)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, ValidationError, ValidationInfo, field_validator, model_validator

from hone.registry import Registries
from hone.spec.models import (ComponentRef, CompressorRef, DistillerRef, MetricRef, OptimizerRef, SchedulerRef, SpecPaths,
                              StageSpec, Strict, ref)
from hone.spec.results import MAXIMIZE, MINIMIZE, Catalog, ResultError, Results, direction

if TYPE_CHECKING:
    from hone.spec.models import RunSpec

ExporterRef, AdapterRef = ref("exporter"), ref("adapter")
FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


class EarlyStopping(Strict):
    metric: str = Field("loss", description="A validation result, e.g. entity_f1, accuracy, loss.")
    mode: Literal["min", "max"] | None = Field(None, description="Default: the direction the metric declares (max for "
                                               "accuracy and F1, min for loss and perplexity).")
    patience: int = Field(3, ge=1)
    min_delta: float = Field(0.0, ge=0)
    restore_best: bool = True


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
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass instead of keeping them: less memory, about a "
        "third more time per step (the model's gradient_checkpointing_enable, non-reentrant).")
    save_predictions: bool | None = Field(
        None, description="Write each validation's predictions (JSONL, one per example, with the reference) to "
        "predictions/<stage>-<split>-epoch<N>.jsonl in the run directory; default: only for generative tasks.")
    adapter: AdapterRef | None = Field(  # type: ignore[valid-type]
        None, description="Train an adapter instead of the whole model, e.g. {name: lora, r: 8, alpha: 16}: the model "
        "is frozen, the adapter and the task's new head train; at the stage's end the adapter is saved to "
        "adapter/<stage>/ and merged into the model.")

    @model_validator(mode="after")
    def _adapter_alone(self) -> TrainStage:
        if self.adapter is not None:
            clash = [name for name in ("freeze", "train_only", "pruning") if getattr(self, name)]
            if clash:
                raise ValueError(f"`adapter` trains only the adapter and the task's head, so {' and '.join(clash)} "
                                 "cannot apply; leave them out, or name extra modules in the adapter's "
                                 "`modules_to_save`")
        return self

    def data_splits(self) -> list[str]:
        return ["train", *([self.eval_split] if self.early_stopping else [])]

    def results(self, catalog: Catalog) -> Results:
        sizes = Results({"trainable_parameters": None, "total_parameters": None, "trainable_fraction": None})
        found = catalog.metrics(self.metrics).under("validation") | Results({"steps": None,
                                                                              "skipped_batches": MINIMIZE})
        return found | sizes

    def resolve(self, catalog: Catalog) -> TrainStage:
        if self.early_stopping is None:
            return self
        stopping = self.early_stopping
        mode = direction(catalog.metrics(self.metrics), stopping.metric, ("early_stopping", "metric"), stopping.mode)
        return self.model_copy(update={"early_stopping": stopping.model_copy(update={"mode": mode})})


class EvaluateStage(StageSpec):
    """Score the model on one split with the stage's (or the task's default) metrics."""

    split: str = "test"

    def results(self, catalog: Catalog) -> Results:
        return catalog.metrics(self.metrics).under(self.split)
    batch_size: int = Field(64, gt=0)
    metrics: list[MetricRef] | None = None  # type: ignore[valid-type]
    save_predictions: bool = Field(
        True, description="Write the predictions (JSONL, one per example, with the reference and any scores) to "
        "predictions/<stage>-<split>.jsonl in the run directory.")

    def data_splits(self) -> list[str]:
        return [self.split]


class MaxDrop(Strict):
    """A compress stage's accuracy budget: how far a validation metric may fall below the uncompressed model's."""

    metric: str | None = Field(None, description="A result of the stage's metrics, e.g. entity_f1, accuracy; default: the first "
                               "result the first metric declares (the task's first default metric where the stage names none).")
    value: float = Field(ge=0, description="Largest allowed drop in the metric's units (entity_f1 is 0-1: one F1 point is 0.01), "
                         "or a fraction of the uncompressed value with `relative: true`.")
    relative: bool = False
    mode: Literal["min", "max"] | None = Field(None, description="Default: the direction the metric declares.")


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

    def data_splits(self) -> list[str]:
        return [self.budget_split] if self.max_drop else []

    def results(self, catalog: Catalog) -> Results:
        model = Results({"parameters": MINIMIZE, "nonzero": MINIMIZE, "size_bytes": MINIMIZE, "sparsity": MAXIMIZE})
        found = model.under("before") | model.under("after")
        return found | catalog.metrics(self.metrics).under("validation") if self.max_drop else found

    def resolve(self, catalog: Catalog) -> CompressStage:
        if self.max_drop is None:
            return self
        metrics, budget = catalog.metrics(self.metrics), self.max_drop
        name = budget.metric or next((n for n in metrics.directions if n != "loss"), None)
        if name is None:
            raise ResultError(("max_drop", "metric"), "the stage's metrics declare no result to budget: name one in `metric` "
                                                      "(and its `mode`)")
        mode = direction(metrics, name, ("max_drop", "metric"), budget.mode)
        return self.model_copy(update={"max_drop": budget.model_copy(update={"metric": name, "mode": mode})})

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

    def results(self, catalog: Catalog) -> Results:
        return super().results(catalog) | Results({"student_parameters": MINIMIZE})

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


def component_refs(value: Any, kind: str) -> Iterator[ComponentRef]:
    """Every component of ``kind`` a stage's spec names, at any depth (a compress stage's compressor, a train stage's pruning)."""
    if isinstance(value, ComponentRef):
        if value.kind == kind:
            yield value
    elif isinstance(value, BaseModel):
        for field in type(value).model_fields:
            yield from component_refs(getattr(value, field), kind)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from component_refs(item, kind)


class ExportStage(StageSpec):
    """Write the run's model in a serving format (ONNX...) to export/<name>/, checked against the model on the run's data."""

    exporter: ExporterRef = Field(  # type: ignore[valid-type]
        "onnx", validate_default=True, description="The exporter and its params, e.g. {name: onnx, opset: 20, atol: 1e-4}.")
    check_split: Literal["train", "validation", "test"] | None = Field(
        None, description="The split whose examples trace and check the export; default: validation, else test, else "
        "train (the exporter's own sample sentences when the run has none).")
    check_batches: int = Field(2, ge=1, le=64, description="Check batches; the last is smaller, and they are sorted by "
                               "length, so that free batch and sequence axes are checked at several shapes.")
    batch_size: int = Field(8, ge=2, description="Examples per check batch (the first one is traced).")

    @field_validator("name")
    @classmethod
    def _folder_name(cls, name: str | None) -> str | None:
        if name is not None and not FOLDER_NAME.fullmatch(name):
            raise ValueError(f"an export stage's name is its folder in the run directory (export/<name>/): letters, "
                             f"digits, '_', '-' and '.', starting with a letter or digit; got {name!r}")
        return name

    def folder(self) -> str:
        """The folder under the run directory's ``export/``: the stage's name, or the exporter's for an unnamed stage."""
        return self.name or self.exporter.name

    def check_in_run(self, spec: RunSpec, index: int, registries: Registries) -> None:
        names = spec.stage_names()
        for other in range(index):
            stage = spec.stages[other]
            if isinstance(stage, ExportStage) and stage.folder() == self.folder():
                raise ValueError(f"stage '{names[other]}' writes export/{self.folder()}/ too; give each export stage "
                                 "its own `name` (its folder), so that neither overwrites the other")
        if self.check_split is not None and spec.data.path is None and getattr(spec.data, self.check_split) is None:
            raise ValueError(f"check_split '{self.check_split}': the spec's data has no {self.check_split} split")
        exporter = registries.get("exporter", self.exporter.name)
        refuses = exporter.info.get("refuses") or {}
        for other in range(index - 1, -1, -1):
            stage = spec.stages[other]
            for compressor in component_refs(stage, "compressor"):
                canonical = registries.get("compressor", compressor.name).name
                if canonical in refuses:
                    raise ValueError(f"the {exporter.name} exporter cannot export a model compressed by '{canonical}' "
                                     f"(stage '{names[other]}'): {refuses[canonical]}")
            if registries.get("stage", stage.type).info.get("model") == "replaces":
                break  # e.g. a distill stage's student: the compressions before it are not in the model
