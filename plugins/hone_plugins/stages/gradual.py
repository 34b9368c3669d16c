"""A train stage's gradual compression: per-step hooks that prune while training, and keep earlier zeros."""

from __future__ import annotations

from typing import Any

import torch

from hone.components import StepHook
from hone.errors import HoneError
from hone_plugins.formats.compressed import STEPS_ATTRIBUTE, compression_steps
from hone_plugins.stages.sizes import model_report


def gradual_hooks(ctx: Any, index: int, stage: Any, model: torch.nn.Module, total_steps: int) -> list[StepHook]:
    """The train stage's per-step hooks: weights pruned earlier stay zero (a recovery fine-tune must not revive
    them), and the stage's own ``pruning`` raises sparsity gradually."""
    name, registries = ctx.stage_names[index], ctx.host.registries
    hooks = []
    for step in compression_steps(model):
        if step.get("recipe") is None and step["compressor"] in registries["compressor"]:
            earlier = ctx.host.build("compressor", {"name": step["compressor"], **(step.get("params") or {})})
            if hasattr(earlier, "gradual"):  # from step 0 to 0: only keeps the zeros the stage starts with
                hooks.append(earlier.gradual(model, total_steps, 0, 0, 1))
    pruning = getattr(stage, "pruning", None)
    if pruning is None:
        return hooks
    if stage.early_stopping is not None and stage.early_stopping.restore_best:
        raise HoneError(f"stage '{name}': pruning with early_stopping.restore_best would restore a less sparse epoch; "
                        "set restore_best: false")
    compressor = ctx.host.build("compressor", pruning.compressor)
    if not hasattr(compressor, "gradual"):
        raise HoneError(f"stage '{name}': compressor '{pruning.compressor.name}' cannot compress gradually "
                        "(it has no gradual()); use 'magnitude' or a compress stage")
    first = min(round(pruning.start * total_steps), total_steps - 1)
    last = min(max(first + 1, round(pruning.end * total_steps)), total_steps)
    return [*hooks, compressor.gradual(model, total_steps, first, last, pruning.every)]


def finish_hooks(ctx: Any, index: int, stage: Any, model: torch.nn.Module, hooks: list[StepHook]) -> dict[str, Any]:
    """Record the stage's gradual compression in its result and in the model's compression steps."""
    pruning = getattr(stage, "pruning", None)
    if pruning is None or not hooks:
        return {}
    steps = compression_steps(model)
    step = {"stage": ctx.stage_names[index], "compressor": pruning.compressor.name,
            "params": pruning.compressor.settings(), "recipe": None, "gradual": True}
    if step not in steps:  # a resumed stage must not record itself twice
        setattr(model, STEPS_ATTRIBUTE, [*steps, step])
    return {"pruning": {**hooks[-1].report(model), **model_report(model, layers=False)}}
