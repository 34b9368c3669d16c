"""What each stage type does. A stage runner takes ``(ctx, index, stage, resume_state)`` and
returns its results; stage types that change the model get a checkpoint when they end."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hone.run.checkpoint import STATE
from hone.compression import compress_stage
from hone.distillation import distill_stage, student_for_resume
from hone.errors import HoneError
from hone.run.evaluation import evaluate, scalars
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


STAGE_RUNNERS: dict[str, StageRunner] = {
    "train": train_stage, "evaluate": evaluate_stage, "distill": distill_stage, "compress": compress_stage,
}
MODIFIES_MODEL: set[str] = {"train", "distill", "compress"}
REPLACES_MODEL: dict[str, Callable[[Any, int], Any]] = {"distill": student_for_resume}
"""Stage types that swap in another architecture: ``rebuild(ctx, index)`` gives the model stage ``index``
started with, for the weights of its checkpoints and of every later stage's."""


def model_for_checkpoint(ctx: Any, folder: Path) -> Any | None:
    """The model a checkpoint's weights fit when a stage up to its own replaced the spec's; ``None``: the spec's."""
    replacing = [i for i, s in enumerate(ctx.spec.stages) if s.type in REPLACES_MODEL]
    if not replacing:
        return None
    stage = int(torch.load(folder / STATE, weights_only=True, map_location="cpu")["stage"])
    earlier = [i for i in replacing if i <= stage]
    return REPLACES_MODEL[ctx.spec.stages[earlier[-1]].type](ctx, earlier[-1]) if earlier else None
