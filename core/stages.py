"""What each stage type does. A stage runner takes ``(ctx, index, stage, resume_state)`` and
returns its results; stage types that change the model get a checkpoint when they end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hone.errors import HoneError
from hone.evaluation import evaluate, scalars
from hone.training import metric_objects, train_stage

StageRunner = Callable[[Any, int, Any, "dict[str, Any] | None"], "dict[str, Any]"]


def evaluate_stage(ctx: Any, index: int, stage: Any, resume: dict[str, Any] | None = None) -> dict[str, Any]:
    name = ctx.stage_names[index]
    if stage.split not in ctx.features:
        raise HoneError(f"stage '{name}': there is no '{stage.split}' split; available: {', '.join(ctx.features)}")
    ctx.events.emit("stage_start", stage=name, type="evaluate", split=stage.split)
    results = evaluate(ctx, stage.split, metric_objects(ctx, stage.metrics), stage.batch_size)
    ctx.events.emit("evaluation_done", stage=name, split=stage.split, metrics=scalars(results))
    return {stage.split: results}


STAGE_RUNNERS: dict[str, StageRunner] = {"train": train_stage, "evaluate": evaluate_stage}
MODIFIES_MODEL: set[str] = {"train"}
