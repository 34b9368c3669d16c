"""The run spec: pydantic models of a whole job, validated against the installed plugins."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from hone.registry import Registries, UnknownComponentError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComponentRef(BaseModel):
    """``{name: <registered name>, <param>: <value>, ...}``; params are checked by the plugin's model."""

    model_config = ConfigDict(extra="allow")
    kind: ClassVar[str] = ""
    name: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _check_plugin(self, info: ValidationInfo) -> ComponentRef:
        registries: Registries | None = (info.context or {}).get("registries")
        if registries is None:
            return self
        try:
            component = registries.get(self.kind, self.name)
        except UnknownComponentError as error:
            detail = InitErrorDetails(type=PydanticCustomError("unknown_component", str(error)), loc=("name",), input=self.name)
            raise ValidationError.from_exception_data(type(self).__name__, [detail]) from None
        component.params.model_validate(self.params)  # its ValidationError keeps nested locations
        return self


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
        if (self.path is None) == (self.train is None):
            raise ValueError("give either `train` (with optional `validation`/`test`) or `path` (split by ratio)")
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


class TrainStage(Strict):
    type: Literal["train"]
    name: str | None = None
    epochs: int = Field(1, ge=1)
    max_steps: int | None = Field(None, gt=0, description="Stop after this many optimizer steps.")
    batch_size: int = Field(32, gt=0)
    eval_batch_size: int | None = Field(None, gt=0)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_grad_norm: float | None = Field(1.0, gt=0)
    optimizer: OptimizerRef = Field(default_factory=lambda: OptimizerRef(name="adamw"))  # type: ignore[valid-type]
    scheduler: SchedulerRef = Field(default_factory=lambda: SchedulerRef(name="linear"))  # type: ignore[valid-type]
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


class EvaluateStage(Strict):
    type: Literal["evaluate"]
    name: str | None = None
    split: str = "test"
    batch_size: int = Field(64, gt=0)
    metrics: list[MetricRef] | None = None  # type: ignore[valid-type]


Stage = Annotated[Union[TrainStage, EvaluateStage], Field(discriminator="type")]


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
        source = self.model.source
        if source.startswith((".", "/")) or (base / source).exists():
            source = resolve(source) or source
        return self.model_copy(
            update={
                "data": data,
                "plugins_dir": [resolve(p) for p in self.plugins_dir],
                "output_dir": resolve(self.output_dir),
                "model": self.model.model_copy(update={"source": source}),
            }
        )
