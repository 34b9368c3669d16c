"""hone's training loop: one train stage, resumable at any optimizer step."""

from __future__ import annotations

import fnmatch
import math
import time
from collections.abc import Callable
from typing import Any

import torch

from hone.run.batching import train_batches
from hone.run.checkpoint import rng_state, set_rng_state
from hone.run.devices import autocast, model_inputs, to_device
from hone.errors import HoneError, Interrupted
from hone.run.evaluation import evaluate, scalars
from hone.run.predictions import predictions_name
from hone.run.context import RunContext
from hone.run.results import plain, scalars_tree
from hone_plugins.stages.gradual import finish_hooks, gradual_hooks
from hone_plugins.stages.specs import TrainStage

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


class TrainingError(HoneError):
    """Training cannot go on (non-finite loss, bad freeze pattern, ...)."""


def apply_freezing(model: torch.nn.Module, stage: TrainStage) -> list[str]:
    """Set ``requires_grad`` by the stage's patterns; return the trainable parameter names."""
    names = [name for name, _ in model.named_parameters()]
    for pattern in [*stage.freeze, *stage.train_only]:
        if not fnmatch.filter(names, pattern):
            raise TrainingError(f"pattern '{pattern}' matches no parameter; names look like: {', '.join(names[:3])}, ..., {names[-1]}")
    trainable = []
    for name, param in model.named_parameters():
        frozen = any(fnmatch.fnmatch(name, p) for p in stage.freeze)
        if stage.train_only:
            frozen = frozen or not any(fnmatch.fnmatch(name, p) for p in stage.train_only)
        param.requires_grad_(not frozen)
        if not frozen:
            trainable.append(name)
    if not trainable:
        raise TrainingError("every parameter is frozen: check `freeze` / `train_only`")
    return trainable


def set_dropout(model: torch.nn.Module, p: float) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p


def param_groups(model: torch.nn.Module) -> list[dict[str, Any]]:
    """Weight decay on weights only, not on biases and norms."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if name.endswith(NO_DECAY) else decay).append(param)
    groups = [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


class EarlyStopper:
    def __init__(self, stage: TrainStage) -> None:
        self.config = stage.early_stopping
        self.best: float | None = None
        self.bad_evals = 0

    def update(self, metrics: dict[str, float]) -> tuple[bool, bool]:
        """Return (improved, should_stop)."""
        if self.config is None:
            return False, False
        name = self.config.metric
        if name not in metrics:
            raise TrainingError(f"early_stopping.metric '{name}' is not reported; available: {', '.join(sorted(metrics))}")
        value, sign = metrics[name], (1 if self.config.direction == "max" else -1)
        if self.best is None or sign * (value - self.best) > self.config.min_delta:
            self.best, self.bad_evals = value, 0
            return True, False
        self.bad_evals += 1
        return False, self.bad_evals >= self.config.patience

    def stopped(self) -> bool:
        """Whether patience ran out (read back from a checkpoint on resume)."""
        return self.config is not None and self.bad_evals >= self.config.patience

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "bad_evals": self.bad_evals}

    def load(self, state: dict[str, Any]) -> None:
        self.best, self.bad_evals = state["best"], state["bad_evals"]


LossFn = Callable[[torch.nn.Module, dict[str, Any]], torch.Tensor]
"""``loss_fn(model, batch)``: one batch's training loss, forward pass included."""


def task_loss(ctx: Any, stage: TrainStage) -> LossFn:
    """The default loss: the task's loss on the model's outputs."""

    def loss(model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        with autocast(ctx.device, ctx.precision):
            outputs = model(**model_inputs(batch))
        return ctx.task.loss(outputs, batch, stage.label_smoothing)

    return loss


class Train:
    def __init__(self, spec: TrainStage) -> None:
        self.spec = spec

    def run(self, ctx: RunContext, index: int, resume: dict[str, Any] | None = None) -> dict[str, Any]:
        return train_stage(ctx, index, self.spec, resume)


def train_stage(ctx: RunContext, index: int, stage: TrainStage, resume: dict[str, Any] | None = None,
                loss_fn: LossFn | None = None, extra: torch.nn.Module | None = None) -> dict[str, Any]:
    """Run one train stage (from ``resume`` state if given); return its validation results.

    ``loss_fn`` replaces the task loss; ``extra`` holds modules trained beside the model (a distiller's
    projections): optimised with it and kept in the checkpoints' training state, not in the model.
    """
    model, task = ctx.model, ctx.task
    name = ctx.stage_names[index]
    core = model.module if hasattr(model, "module") else model
    apply_freezing(core, stage)
    if stage.dropout is not None:
        set_dropout(core, stage.dropout)
    features = ctx.features["train"]
    lengths = [f["length"] for f in features]
    world, rank = ctx.world_size, ctx.rank
    batches_per_epoch = len(train_batches(lengths, stage.batch_size, 0, False)) // world
    steps_per_epoch = max(1, math.ceil(batches_per_epoch / stage.gradient_accumulation_steps))
    total_steps = steps_per_epoch * stage.epochs if stage.max_steps is None else min(stage.max_steps, steps_per_epoch * stage.epochs)
    optimizer = ctx.host.build("optimizer", stage.optimizer, param_groups(core) + (param_groups(extra) if extra is not None else []))
    trained = [p for p in core.parameters() if p.requires_grad] + (list(extra.parameters()) if extra is not None else [])
    compute_loss = loss_fn or task_loss(ctx, stage)
    scheduler = ctx.host.build("scheduler", stage.scheduler, optimizer, total_steps)
    step_hooks = gradual_hooks(ctx, index, stage, core, total_steps)  # e.g. gradual pruning
    metrics = ctx.metrics(stage.metrics)
    stopper = EarlyStopper(stage)
    # fp16 gradients underflow without loss scaling; for bf16/fp32 the scaler is a no-op
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=ctx.precision == "fp16")
    has_eval = stage.eval_split in ctx.features and ctx.features[stage.eval_split]
    save_predictions = hasattr(task, "generate") if stage.save_predictions is None else stage.save_predictions
    if stage.early_stopping is not None and not has_eval:
        raise TrainingError(f"stage '{name}': early_stopping needs a '{stage.eval_split}' split")
    if stage.on_nonfinite == "skip" and world > 1:
        raise TrainingError(f"stage '{name}': on_nonfinite 'skip' needs a single process (ranks would disagree on which batches to skip)")
    epoch, start_batch, step, skipped = 0, 0, 0, 0
    last_metrics: dict[str, Any] = {}
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        if resume.get("scaler"):
            scaler.load_state_dict(resume["scaler"])
        scheduler.load_state_dict(resume["scheduler"])
        stopper.load(resume["early_stopping"])
        epoch, start_batch, step = resume["epoch"], resume["batch"], resume["step"]
        last_metrics = resume.get("last_metrics", {})
        skipped = resume.get("skipped", 0)
        if extra is not None:
            extra.load_state_dict(resume["extra"])
        set_rng_state(resume["rng"])

    def checkpoint(tag: str, epoch_: int, batch_: int) -> None:
        if ctx.checkpoints is None or rank != 0:
            return
        state = {
            "stage": index, "done": False, "epoch": epoch_, "batch": batch_, "step": step,
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
            "early_stopping": stopper.state(), "rng": rng_state(), "last_metrics": plain(scalars_tree(last_metrics)),
            "skipped": skipped, **({"extra": extra.state_dict()} if extra is not None else {}),
        }
        folder = ctx.checkpoints.save(tag, core, state)
        ctx.events.emit("checkpoint_saved", stage=name, epoch=epoch_, step=step, path=str(folder))

    accumulation = stage.gradient_accumulation_steps
    l1_params = [p for n, p in core.named_parameters() if p.requires_grad and not n.endswith(NO_DECAY)] if stage.l1 else []
    ctx.events.emit("stage_start", stage=name, type=stage.type, total_steps=total_steps, resumed_at_step=step or None)
    model.train()
    if extra is not None:
        extra.train()
    # a step checkpoint (start_batch > 0) still owes its epoch's end: the evaluation and the epoch checkpoint
    done, stop = step >= total_steps and start_batch == 0, stopper.stopped()
    while epoch < stage.epochs and not done and not stop:
        batches = train_batches(lengths, stage.batch_size, ctx.seed * 1000 + index * 100 + epoch, stage.group_by_length)
        batches = batches[rank::world][:batches_per_epoch]
        ctx.events.emit("epoch_start", stage=name, epoch=epoch, batches=len(batches))
        progress = ctx.progress(f"{name} epoch {epoch + 1}/{stage.epochs}", len(batches), start_batch)
        window_loss, window_count, window_start, seen = 0.0, 0, time.perf_counter(), 0
        epoch_start, epoch_samples, epoch_skipped, epoch_finite = time.perf_counter(), 0, 0, 0
        for b in range(start_batch, len(batches)):
            if step >= total_steps:  # resumed at the step that ended the stage: only the epoch's end is left
                break
            batch = to_device(task.collate([features[i] for i in batches[b]], ctx.tokenizer), ctx.device)
            loss = compute_loss(model, batch)
            if stage.l1:
                loss = loss + stage.l1 * sum(p.abs().sum() for p in l1_params)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                if stage.on_nonfinite == "stop":
                    raise TrainingError(
                        f"stage '{name}': loss is {loss_value} at epoch {epoch}, batch {b} (step {step}); "
                        "lower the learning rate or check the data. The last good checkpoint is kept."
                    )
                skipped, epoch_skipped = skipped + 1, epoch_skipped + 1
                ctx.events.emit("batch_skipped", stage=name, epoch=epoch, batch=b, step=step, loss=str(loss_value))
            else:
                scaler.scale(loss / accumulation).backward()
                window_loss += loss_value
                window_count, epoch_finite = window_count + 1, epoch_finite + 1
            seen += len(batches[b])
            epoch_samples += len(batches[b])
            if (b + 1) % accumulation and b + 1 != len(batches):
                progress.advance(loss_value)
                continue
            if stage.max_grad_norm is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(trained, stage.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            if scheduler.interval == "step":
                scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            for hook in step_hooks:
                hook.after_step(core, step)
            progress.advance(loss_value)
            if step % stage.logging_steps == 0:
                elapsed = time.perf_counter() - window_start
                ctx.events.emit(
                    "step_end", stage=name, epoch=epoch, step=step,
                    metrics={**({"loss": window_loss / window_count} if window_count else {}),
                             "lr": optimizer.param_groups[0]["lr"], "samples_per_s": seen / elapsed},
                )
                window_loss, window_count, window_start, seen = 0.0, 0, time.perf_counter(), 0
            done = step >= total_steps
            if ctx.interrupted() or (stage.checkpoint_steps and step % stage.checkpoint_steps == 0):
                checkpoint(f"stage{index}-step{step:07d}", epoch, b + 1)
                if ctx.interrupted():
                    progress.close()
                    raise Interrupted(f"stage '{name}' stopped at step {step}; a checkpoint was saved: run again with --resume")
            if done:
                break
        progress.close()
        if epoch_skipped and not epoch_finite:
            raise TrainingError(f"stage '{name}': every batch of epoch {epoch} had a non-finite loss (all skipped); "
                                "the weights may hold NaN: lower the learning rate. The last good checkpoint is kept.")
        train_seconds = time.perf_counter() - epoch_start
        start_batch = 0
        epoch += 1
        if has_eval:
            batch_size = stage.eval_batch_size or stage.batch_size * 2
            saved = predictions_name(index, name, stage.eval_split, epoch) if save_predictions else None
            last_metrics = evaluate(ctx, stage.eval_split, metrics, batch_size, saved)
            ctx.events.emit("evaluation_done", stage=name, epoch=epoch, step=step, split=stage.eval_split, metrics=scalars(last_metrics))
            improved, stop = stopper.update(scalars(last_metrics))
            if improved and stage.early_stopping and stage.early_stopping.restore_best and ctx.run_dir is not None and rank == 0:
                ctx.save_best(index, core)
            if scheduler.interval == "eval":
                scheduler.step(scalars(last_metrics))
        ctx.events.emit("epoch_end", stage=name, epoch=epoch, step=step, train_seconds=train_seconds,
                        samples_per_s=epoch_samples / max(train_seconds, 1e-9), skipped_batches=epoch_skipped)
        checkpoint(f"stage{index}-epoch{epoch:03d}", epoch, 0)
        if stop:
            break
    restored = bool(stage.early_stopping and stage.early_stopping.restore_best and stopper.best is not None)
    if restored:
        ctx.restore_best(index, core)
    return {"validation": last_metrics, "steps": step, "early_stopped": stop if has_eval else False, "best": stopper.best,
            "restored_best": restored, "skipped_batches": skipped, **finish_hooks(ctx, index, stage, core, step_hooks)}

