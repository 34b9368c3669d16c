"""A train or distill stage's adapter: added before the first step, kept small in checkpoints, saved to
``adapter/<stage>/`` in the run directory and merged into the model at the stage's end."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from hone.atomic import TMP, WriteError
from hone.run.context import RunContext
from hone_plugins.stages.setup import TrainingError
from hone_plugins.stages.specs import TrainStage

ADAPTER_DIR = "adapter"
FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def effects(ctx: RunContext, upto: int) -> list[str]:
    """What each stage up to ``upto`` (included) does to the run's model: keeps, changes or replaces it."""
    registry = ctx.host.registries["stage"]
    return [str(registry.get(s.type).info.get("model", "keeps")) for s in ctx.spec.stages[:upto + 1]]


def build(ctx: RunContext, index: int, stage: TrainStage) -> Any | None:
    """The stage's adapter, or ``None`` where it trains the whole model."""
    if stage.adapter is None:
        return None
    if ctx.world_size > 1:
        raise TrainingError(f"stage '{ctx.stage_names[index]}': adapters train in a single process")
    return ctx.host.build("adapter", stage.adapter)


def check(ctx: RunContext, index: int, stage: TrainStage) -> None:
    """Refuse, before any work, target modules or heads the run's model lacks (where the stage trains that model)."""
    adapter = build(ctx, index, stage)
    if adapter is not None and "replaces" not in effects(ctx, index):
        try:
            adapter.check(ctx.core)
        except ValueError as error:
            raise TrainingError(f"stage '{ctx.stage_names[index]}': {error}") from None


def adapt(ctx: RunContext, index: int, adapter: Any, model: torch.nn.Module) -> Any:
    """``model`` with the adapter added (as it is if it has it already: a resumed stage)."""
    try:
        return adapter.apply(model).to(ctx.device)
    except ValueError as error:  # peft: a layer type it cannot adapt, ...
        raise TrainingError(f"stage '{ctx.stage_names[index]}': {error}") from None


def checkpoint_model(ctx: RunContext, index: int, stage: TrainStage, model: torch.nn.Module) -> Any | None:
    """The model the stage's checkpoints hold weights for: with the adapter; ``None`` without one."""
    adapter = build(ctx, index, stage)
    return None if adapter is None else adapt(ctx, index, adapter, model)


def only_adapter(ctx: RunContext, index: int) -> bool:
    """Whether checkpoints may hold only the adapter: the frozen weights load again on resume (the spec's model, or
    the start a replacing stage saved); after a stage that changed the model they would not."""
    found = effects(ctx, index)
    return found[-1] == "replaces" or all(effect == "keeps" for effect in found[:-1])


def sizes(model: torch.nn.Module) -> dict[str, Any]:
    """Trainable and total parameters (an adapter's and a head's copy counted in the total, as peft counts them)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable_parameters": trainable, "total_parameters": total,
            "trainable_fraction": trainable / max(total, 1)}


def folder(ctx: RunContext, index: int) -> Path:
    assert ctx.run_dir is not None
    name = ctx.stage_names[index]
    return ctx.run_dir / ADAPTER_DIR / (name if FOLDER_NAME.fullmatch(name) else f"stage{index}")


def finish(ctx: RunContext, index: int, adapter: Any, model: Any) -> torch.nn.Module:
    """Save the adapter alone (with the tokenizer), whole or not at all, then return the model with it merged."""
    if ctx.run_dir is not None and ctx.rank == 0:
        final = folder(ctx, index)
        tmp = final.with_name(f".{final.name}{TMP}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir(parents=True)
            adapter.save(model, tmp)
            ctx.tokenizer.save_pretrained(tmp)
        except Exception as error:  # a full disk: safetensors and tokenizers raise their own types
            shutil.rmtree(tmp, ignore_errors=True)
            raise WriteError(final, error) from error
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    return adapter.merge(model)
