"""The run spec: pydantic models of a whole job, validated against the installed plugins."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (BaseModel, ConfigDict, Field, SerializationInfo, SerializeAsAny, ValidationError, ValidationInfo,
                      create_model, field_validator, model_serializer, model_validator)
from pydantic_core import InitErrorDetails, PydanticCustomError

from hone.registry import Registries, UnknownComponentError
from hone.spec.results import Catalog, ResultError, Results


DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:\d+)?)$"
DEVICE_SYNONYMS = {"gpu": "cuda", "nvidia": "cuda", "cuda0": "cuda", "apple": "mps", "metal": "mps", "cpus": "cpu"}
SPLITS = ("train", "validation", "test")
"""The data splits a spec can name (``data.train`` ...), in the order a run reads them."""
AS_WRITTEN = "as_written"  # a dump context key: component params as the spec wrote them
SPEC_DIR = "spec_dir"  # a validation context key: the spec file's folder, where load_spec gives it


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
        return cls.model_construct(name=component.name, params=strict(component.params).model_validate(raw, context=info.context))

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


@functools.cache
def ref(kind: str) -> type[ComponentRef]:
    """The spec field type of a component of ``kind`` chosen by name (``OptimizerRef = ref("optimizer")``)."""
    title = "".join(part.capitalize() for part in kind.split("_"))
    return type(f"{title}Ref", (ComponentRef,), {"kind": kind, "__doc__": f"A {kind} chosen by name."})


TaskRef, ReaderRef, OptimizerRef, SchedulerRef, MetricRef, CallbackRef = (
    ref(k) for k in ("task", "reader", "optimizer", "scheduler", "metric", "callback")
)
CompressorRef, DistillerRef, SearcherRef, ModelFormatRef = (ref(k) for k in ("compressor", "distiller", "searcher", "model_format"))


class StageSpec(Strict):
    """The base of a stage kind's spec model; hone sets ``type`` to the kind's registered name."""

    type: str
    name: str | None = Field(None, description="The stage's name in results and objectives; default: <index>-<type>.")

    def data_splits(self) -> list[str]:
        """The data splits the stage cannot run without (``train`` for training stages)."""
        return []

    def resolve_paths(self, local: SpecPaths) -> StageSpec:
        """The stage with the model sources (``local(source)``) and local files or folders (``local.path(value)``)
        it names made absolute against the spec's folder."""
        return self

    def results(self, catalog: Catalog) -> Results:
        """The results the stage will report (paths inside its entry of metrics.json), with their directions."""
        return Results(complete=False)

    def resolve(self, catalog: Catalog) -> StageSpec:
        """The stage with what it can only know from the catalog filled in (a metric's direction, say); raise
        :class:`hone.spec.results.ResultError` for a result name the stage uses that it will not report."""
        return self

    def check_in_run(self, spec: RunSpec, index: int, registries: Registries) -> None:
        """Raise ``ValueError`` (what to change) if this stage cannot run as ``spec``'s stage ``index``, e.g.
        after a stage whose output it cannot take; ``hone validate`` reports it at the stage."""


@dataclass(frozen=True)
class SpecPaths:
    """Resolves what a spec names against the spec file's folder ``base``."""

    base: Path

    def path(self, value: str) -> str:
        """A local file or folder: relative to the spec's folder unless absolute."""
        return value if Path(value).is_absolute() else str((self.base / value).resolve())

    def __call__(self, source: str) -> str:
        """A model source: a folder relative to the spec, or a Hub / pkg: name left as it is."""
        if source.startswith((".", "/")) or (self.base / source).exists():
            return self.path(source)
        return source


def spec_dir(info: ValidationInfo) -> Path | None:
    """The spec file's folder during validation, for a validator that checks files the spec names; ``None`` where the
    spec is not validated from a file (its paths are then absolute or relative to the working directory)."""
    found = (info.context or {}).get(SPEC_DIR)
    return Path(found) if found is not None else None


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

    def given_splits(self) -> list[str]:
        """The splits this section provides (all three where ``path`` is split by ratio)."""
        return list(SPLITS) if self.path is not None else [s for s in SPLITS if getattr(self, s) is not None]

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


def _device_hint(value: str) -> str:
    """`` Did you mean 'cuda:1'?`` for ``gpu:1``; ``''`` when nothing is close."""
    head, colon, index = value.strip().lower().partition(":")
    close = DEVICE_SYNONYMS.get(head) or next(iter(difflib.get_close_matches(head, ["auto", "cpu", "cuda", "mps"], 1)), None)
    if close is None:
        return ""
    return f" Did you mean '{close}{colon + index if close == 'cuda' and index.isdigit() else ''}'?"


class CheckpointSpec(Strict):
    """What the run keeps of ``checkpoints/``: the newest few while it runs, and what is left once it has succeeded."""

    keep: int = Field(2, ge=1, description="Checkpoints kept while the run goes on, the newest ones (HF's save_total_limit); "
                                           "2 lets a resume fall back when the newest is damaged.")
    after_run: Literal["none", "last", "best", "all"] = Field(
        "none", description="What stays after a successful run: none (the final model in model/ is all a finished run "
                            "needs), last (the newest checkpoint, with its training state), best (the best weights "
                            "of each early-stopping stage), all.")


class RunSpec(Strict):
    name: str = Field("run", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    seed: int = 42
    output_dir: str = "runs"
    plugins_dir: list[str] = Field(default_factory=list, description="Folders of plain .py plugin modules.")
    model: ModelSpec
    task: TaskRef  # type: ignore[valid-type]
    data: DataSpec
    device: str = Field("auto", pattern=DEVICE_PATTERN, description="auto, cpu, cuda, cuda:N or mps.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field("auto", description=(
        "auto: bf16 (else fp16) on GPUs and on CPUs with AMX (training 1.35x, evaluation 1.7x fp32); "
        "fp32 elsewhere. A named precision is used for training and evaluation."))
    threads: int | None = Field(None, ge=1, description="torch's intra-op threads (default: torch's choice); "
                                "`hone run --threads` overrides it.")
    callbacks: list[CallbackRef] = Field(default_factory=list)  # type: ignore[valid-type]
    checkpoints: CheckpointSpec = Field(default_factory=CheckpointSpec)
    model_format: ModelFormatRef = Field("safetensors", validate_default=True, description=(  # type: ignore[valid-type]
        "How checkpoints and the final model are saved: safetensors (never pickle; a compressed model with its recipe)."))
    stages: list[StageSpec] = Field(min_length=1, description="What the run does, in order; `type` picks a stage kind.")

    @field_validator("device", mode="before")
    @classmethod
    def _known_device(cls, value: Any) -> Any:
        if isinstance(value, str) and not re.fullmatch(DEVICE_PATTERN, value):
            raise ValueError(f"unknown device '{value}': use auto (a CUDA GPU, else Apple's MPS, else the CPU), cpu, "
                             f"cuda (the first CUDA GPU), cuda:N (GPU number N) or mps (Apple GPUs).{_device_hint(value)}")
        return value

    @model_validator(mode="after")
    def _known_results(self, info: ValidationInfo) -> RunSpec:
        registries: Registries | None = (info.context or {}).get("registries")
        if registries is None or "task" not in self.__dict__:
            return self
        catalog, errors = Catalog(registries, self.task), []

        def resolved(value: Any, where: tuple[Any, ...], *args: Any) -> Any:
            try:
                return value.resolve(catalog, *args)
            except ResultError as error:
                errors.append(InitErrorDetails(type=PydanticCustomError("unknown_result", "{message}", {"message": str(error)}),
                                               loc=(*where, *error.loc), input=None))
                return value

        self.stages = [resolved(stage, ("stages", index)) for index, stage in enumerate(self.stages)]
        for name in sorted(set(type(self).model_fields) - set(RunSpec.model_fields)):  # plugins' sections (search: ...)
            if hasattr(section := getattr(self, name), "resolve"):
                setattr(self, name, resolved(section, (name,), self))
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self

    @model_validator(mode="after")
    def _stages_fit(self, info: ValidationInfo) -> RunSpec:
        registries: Registries | None = (info.context or {}).get("registries")
        if registries is None:
            return self
        errors = []
        for index, stage in enumerate(self.stages):
            try:
                stage.check_in_run(self, index, registries)
            except ValueError as error:
                errors.append(InitErrorDetails(type=PydanticCustomError("stage_order", "{message}", {"message": str(error)}),
                                               loc=("stages", index), input=stage.type))
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self

    def stage_names(self) -> list[str]:
        return [s.name or f"{i}-{s.type}" for i, s in enumerate(self.stages)]

    def resolve_paths(self, base: Path) -> RunSpec:
        """Make data, plugin and local model paths relative to the spec file's folder."""
        local = SpecPaths(base)

        def resolve(value: str | None) -> str | None:
            return None if value is None else local.path(value)

        data = self.data.model_copy(
            update={k: resolve(getattr(self.data, k)) for k in (*SPLITS, "path")}
        )
        return self.model_copy(
            update={
                "data": data,
                "plugins_dir": [local.path(p) for p in self.plugins_dir],
                "output_dir": local.path(self.output_dir),
                "model": self.model.model_copy(update={"source": local(self.model.source)}),
                "stages": [s.resolve_paths(local) for s in self.stages],
            }
        )


def spec_model(registries: Registries) -> type[RunSpec]:
    """The RunSpec of these plugins: its stages a union of the registered stage kinds, picked by ``type``."""
    key = ("spec_model", *((c.kind, c.name, c.aliases, c.params) for kind in ("stage", "spec_section") for c in registries[kind]))
    cached = registries.cache.get(key)
    if cached is None:
        kinds = [_stage_model(component) for component in registries["stage"]]
        item: Any = StageSpec if not kinds else kinds[0] if len(kinds) == 1 else \
            Annotated[Union[tuple(kinds)], Field(discriminator="type")]
        fields: dict[str, Any] = {"stages": (list[item], Field(min_length=1, description=RunSpec.model_fields["stages"].description))}
        for section in registries["spec_section"]:
            if section.name in RunSpec.model_fields:
                raise UnknownComponentError(f"spec section '{section.name}' from {section.origin.describe()} takes the name of a "
                                            "field of every spec; the plugin must rename it")
            fields[section.name] = (strict(section.params) | None, Field(None, description=section.doc))
        cached = registries.cache[key] = create_model("RunSpec", __base__=RunSpec, __module__=__name__, **fields)
    return cached


def _stage_model(component: Any) -> type[StageSpec]:
    """A stage kind's spec model with ``type`` fixed to its name and aliases."""
    if not (isinstance(component.params, type) and issubclass(component.params, StageSpec)):
        raise TypeError(f"stage '{component.name}': its params model must derive from hone.StageSpec")
    tag = Literal[tuple([component.name, *component.aliases])]  # type: ignore[valid-type]
    return create_model(component.params.__name__, __base__=strict(component.params), __module__=component.params.__module__,
                        type=(tag, ...))
