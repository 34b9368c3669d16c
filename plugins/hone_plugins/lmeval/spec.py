"""The ``lm-eval`` stage's spec: its fields and the checks that run when a spec is validated (imports no torch)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from hone.spec.models import SpecPaths, StageSpec, spec_dir

INSTALL = "pip install 'hone-ml[lm-eval]'"


def installed() -> bool:
    """Whether lm-evaluation-harness can be imported (without importing it)."""
    try:
        return importlib.util.find_spec("lm_eval") is not None
    except (ImportError, ValueError):  # e.g. an import hook that refuses it
        return False


class LMEvalStage(StageSpec):
    """Score the model on lm-evaluation-harness tasks (YAML over local files): log-likelihood multiple choice,
    generate-until, rolling log-likelihood."""

    include_path: str = Field(description="Folder of lm-eval task YAMLs, relative to the spec; relative `data_files` "
                              "in a YAML are relative to the YAML's own folder.")
    tasks: list[str] = Field(min_length=1, description="Names of tasks (or tags, glob patterns) in `include_path`.")
    limit: Annotated[int, Field(gt=0)] | Annotated[float, Field(gt=0, lt=1)] | None = Field(
        None, description="At most this many examples per task, or this fraction of them (below 1).")
    num_fewshot: int | None = Field(None, ge=0, description="Few-shot examples per prompt; default: the task's own "
                                    "(0 where it sets none). A task fixing `num_fewshot: 0` keeps it.")
    batch_size: int = Field(8, gt=0)
    max_length: int | None = Field(None, gt=0, description="Context window in tokens; default: the model config's.")
    backend: Literal["auto", "causal", "seq2seq"] = Field(
        "auto", description="How lm-eval scores the model; auto: from its class (a causal LM, or an encoder-decoder).")
    bootstrap_iters: int = Field(1000, ge=0, description="Bootstrap resamples for the stderr of metrics that are not "
                                 "means (lm-eval's command line uses 100000, slow on a CPU); 0: no stderr at all.")
    log_samples: bool = Field(True, description="Write each example's prompt, responses and scores to "
                              "lm-eval/<stage>/<task>.jsonl in the run directory.")

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, tasks: list[str], info: ValidationInfo) -> list[str]:
        if len(set(tasks)) != len(tasks):
            twice = sorted({t for t in tasks if tasks.count(t) > 1})
            raise ValueError(f"tasks are listed more than once: {', '.join(twice)}")
        folder = _task_folder(info.data.get("include_path"), info)
        if folder is None or not installed() or not folder.is_dir():
            return tasks  # the stage's own check reports these
        from hone_plugins.lmeval import tasks as found

        index = found.folder(folder)
        errors = [InitErrorDetails(type=PydanticCustomError("lm_eval_task", problem), loc=(i,), input=name)
                  for i, name in enumerate(tasks) if (problem := _problem(name, index, found))]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return tasks

    @field_validator("include_path")
    @classmethod
    def _folder(cls, include_path: str, info: ValidationInfo) -> str:
        folder = _task_folder(include_path, info)
        if folder is not None and not folder.is_dir():
            raise ValueError(f"no folder {folder} (a relative path is relative to the spec's folder)")
        return include_path

    @model_validator(mode="after")
    def _installed(self) -> LMEvalStage:
        if not installed():
            raise ValueError(f"the lm-eval stage needs lm-evaluation-harness: {INSTALL}")
        return self

    def resolve_paths(self, local: SpecPaths) -> LMEvalStage:
        return self.model_copy(update={"include_path": local.path(self.include_path)})


def _task_folder(value: Any, info: ValidationInfo) -> Path | None:
    """Where ``include_path`` points, against the spec's folder when validating a spec file."""
    if not isinstance(value, str) or not value:
        return None
    path = Path(value)
    return path if path.is_absolute() else (spec_dir(info) or Path.cwd()) / path


def _problem(name: str, index: Any, found: Any) -> str | None:
    if name == found.SETTINGS_KEY:
        return f"a task named '{name}' would clash with the stage's record of its settings in metrics.json; rename it"
    return found.name_problem(name, index)
