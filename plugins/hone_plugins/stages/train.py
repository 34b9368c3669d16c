"""hone's training loop: one train stage, resumable at any optimizer step.

Read it top to bottom: :class:`Training` sets everything up, ``run`` goes epoch by epoch, each epoch trains
batch by batch (``_batch``, ``_optimizer_step``) and ends with an evaluation and a checkpoint (``_end_epoch``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from hone.errors import Interrupted
from hone.run.checkpoint import rng_state, set_rng_state
from hone.run.context import RunContext
from hone.run.devices import to_device
from hone.run.results import plain, scalars, scalars_tree

from hone_plugins.commands.progress import NoProgress
from hone_plugins.stages import adapting
from hone_plugins.stages.batching import train_batches
from hone_plugins.stages.evaluation import check_metric_labels, evaluate
from hone_plugins.stages.gradual import finish_hooks, gradual_hooks
from hone_plugins.stages.predictions import predictions_name
from hone_plugins.stages.setup import (EarlyStopper, TrainingError, apply_freezing, check_checkpointing, decays,
                                      gradient_checkpointing, param_groups, restore_best, save_best, set_dropout)
from hone_plugins.stages.specs import TrainStage

LossFn = Callable[[torch.nn.Module, dict[str, Any]], torch.Tensor]
"""``loss_fn(model, batch)``: one batch's training loss, forward pass included."""


class Train:
    def __init__(self, spec: TrainStage) -> None:
        self.spec = spec

    def run(self, ctx: RunContext, index: int, resume: dict[str, Any] | None = None) -> dict[str, Any]:
        return train_stage(ctx, index, self.spec, resume)

    def check(self, ctx: RunContext, index: int) -> None:
        """Before any stage runs: the adapter fits the model, and gradient checkpointing is refused for a model
        without it (unless a stage before this one replaces the model, which is then checked when this stage starts)."""
        from hone.run.runner import effect

        adapting.check(ctx, index, self.spec)
        check_metric_labels(ctx, index, self.spec.metrics)
        if self.spec.gradient_checkpointing and all(effect(ctx.host, s) != "replaces" for s in ctx.spec.stages[:index]):
            check_checkpointing(ctx.core, ctx.stage_names[index])

    def checkpoint_model(self, ctx: RunContext, index: int, model: torch.nn.Module) -> torch.nn.Module | None:
        return adapting.checkpoint_model(ctx, index, self.spec, model)


def train_stage(ctx: RunContext, index: int, stage: TrainStage, resume: dict[str, Any] | None = None,
                loss_fn: LossFn | None = None, extra: torch.nn.Module | None = None) -> dict[str, Any]:
    """Run one train stage (from ``resume`` state if given); return its validation results.

    ``loss_fn`` replaces the task loss; ``extra`` holds modules trained beside the model (a distiller's
    projections): optimised with it and kept in the checkpoints' training state, not in the model.
    """
    training = Training(ctx, index, stage, loss_fn, extra)
    if resume is not None:
        training.resume(resume)
    with gradient_checkpointing(ctx.core, stage.gradient_checkpointing, ctx.stage_names[index]):
        return training.run()


@dataclass
class Window:
    """Losses and samples since the last logged step, and over the epoch."""

    loss: float = 0.0
    count: int = 0
    samples: int = 0
    start: float = field(default_factory=time.perf_counter)
    epoch_samples: int = 0
    epoch_skipped: int = 0
    epoch_finite: int = 0


class Training:
    def __init__(self, ctx: RunContext, index: int, stage: TrainStage, loss_fn: LossFn | None = None,
                 extra: torch.nn.Module | None = None) -> None:
        self.ctx, self.index, self.stage, self.extra = ctx, index, stage, extra
        self.adapter = adapting.build(ctx, index, stage)
        if self.adapter is None:
            apply_freezing(ctx.core, stage)
        else:  # frozen but for the adapter and the task's head
            ctx.model = adapting.adapt(ctx, index, self.adapter, ctx.core)
        self.name, self.core = ctx.stage_names[index], ctx.core
        self.sizes = adapting.sizes(self.core)
        # checkpoints of an adapter hold it (and the head) alone where the frozen weights load again on resume
        self.only = self.adapter.trained(self.core) if self.adapter and adapting.only_adapter(ctx, index) else None
        if stage.dropout is not None:
            set_dropout(self.core, stage.dropout)
        self.features = ctx.features["train"]
        self.lengths = [f["length"] for f in self.features]
        self.batches_per_epoch = len(train_batches(self.lengths, stage.batch_size, 0, False)) // ctx.world_size
        steps_per_epoch = max(1, math.ceil(self.batches_per_epoch / stage.gradient_accumulation_steps))
        self.total_steps = min(stage.max_steps or steps_per_epoch * stage.epochs, steps_per_epoch * stage.epochs)
        extras = list(extra.parameters()) if extra is not None else []
        self.optimizer = ctx.host.build("optimizer", stage.optimizer, param_groups(self.core) + (param_groups(extra) if extra else []))
        self.trained = [p for p in self.core.parameters() if p.requires_grad] + extras
        self.scheduler = ctx.host.build("scheduler", stage.scheduler, self.optimizer, self.total_steps)
        self.step_hooks = gradual_hooks(ctx, index, stage, self.core, self.total_steps)  # e.g. gradual pruning
        self.metrics = ctx.metrics(stage.metrics)
        self.stopper = EarlyStopper(stage)
        # fp16 gradients underflow without loss scaling; for bf16/fp32 the scaler is a no-op
        self.scaler = torch.amp.GradScaler(ctx.device.type, enabled=ctx.precision == "fp16")
        self.loss_fn = loss_fn or (lambda model, batch: ctx.loss(model, batch, stage.label_smoothing))
        self.l1_params = [p for p in self.core.parameters() if p.requires_grad and decays(p)] if stage.l1 else []
        self.has_eval = bool(ctx.features.get(stage.eval_split))
        self.save_predictions = hasattr(ctx.task, "generate") if stage.save_predictions is None else stage.save_predictions
        if stage.early_stopping is not None and not self.has_eval:
            raise TrainingError(f"stage '{self.name}': early_stopping needs a '{stage.eval_split}' split")
        if stage.on_nonfinite == "skip" and ctx.world_size > 1:
            raise TrainingError(f"stage '{self.name}': on_nonfinite 'skip' needs a single process (ranks would disagree on "
                                "which batches to skip)")
        self.epoch = self.start_batch = self.step = self.skipped = 0
        self.last_metrics: dict[str, Any] = {}

    def resume(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint's training state (the model's weights are loaded already)."""
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.stopper.load(state["early_stopping"])
        self.epoch, self.start_batch, self.step = state["epoch"], state["batch"], state["step"]
        self.last_metrics, self.skipped = state.get("last_metrics", {}), state.get("skipped", 0)
        if self.extra is not None:
            self.extra.load_state_dict(state["extra"])
        set_rng_state(state["rng"])

    def run(self) -> dict[str, Any]:
        self.ctx.events.emit("stage_start", stage=self.name, type=self.stage.type, total_steps=self.total_steps,
                             resumed_at_step=self.step or None, **self.sizes)
        self.ctx.model.train()
        if self.extra is not None:
            self.extra.train()
        # a step checkpoint (start_batch > 0) still owes its epoch's end: the evaluation and the epoch checkpoint
        done, stop = self.step >= self.total_steps and self.start_batch == 0, self.stopper.stopped()
        while self.epoch < self.stage.epochs and not done and not stop:
            started = time.perf_counter()
            window = self._train_epoch()
            done = self.step >= self.total_steps
            stop = self._end_epoch(window, time.perf_counter() - started)
        stage = self.stage
        restored = bool(stage.early_stopping and stage.early_stopping.restore_best and self.stopper.best is not None)
        if restored:
            restore_best(self.ctx, self.index, self.core)
        stopped = stop if self.has_eval else False
        result = {"validation": self.last_metrics, "steps": self.step, "early_stopped": stopped,
                  "best": self.stopper.best, "restored_best": restored, "skipped_batches": self.skipped, **self.sizes,
                  **finish_hooks(self.ctx, self.index, stage, self.core, self.step_hooks)}
        if self.adapter is not None:  # the run's model goes on as a plain transformers model
            self.ctx.model = adapting.finish(self.ctx, self.index, self.adapter, self.core)
        return result

    def _train_epoch(self) -> Window:
        ctx, stage = self.ctx, self.stage
        seed = ctx.seed * 1000 + self.index * 100 + self.epoch
        batches = train_batches(self.lengths, stage.batch_size, seed, stage.group_by_length)[ctx.rank::ctx.world_size]
        batches = batches[:self.batches_per_epoch]
        ctx.events.emit("epoch_start", stage=self.name, epoch=self.epoch, batches=len(batches))
        progress = (ctx.progress or NoProgress)(f"{self.name} epoch {self.epoch + 1}/{stage.epochs}", len(batches), self.start_batch)
        window = Window()
        for b in range(self.start_batch, len(batches)):
            if self.step >= self.total_steps:  # resumed at the step that ended the stage: only the epoch's end is left
                break
            loss = self._batch(batches[b], b, window)
            if (b + 1) % stage.gradient_accumulation_steps and b + 1 != len(batches):
                progress.advance(loss)
                continue
            self._optimizer_step(window, last=b + 1 == len(batches) or self.step + 1 >= self.total_steps)
            progress.advance(loss)
            if ctx.interrupted() or (stage.checkpoint_steps and self.step % stage.checkpoint_steps == 0):
                self._checkpoint(f"stage{self.index}-step{self.step:07d}", self.epoch, b + 1)
                if ctx.interrupted():
                    progress.close()
                    raise Interrupted(f"stage '{self.name}' stopped at step {self.step}; a checkpoint was saved: run again with --resume")
            if self.step >= self.total_steps:
                break
        progress.close()
        if window.epoch_skipped and not window.epoch_finite:
            raise TrainingError(f"stage '{self.name}': every batch of epoch {self.epoch} had a non-finite loss (all skipped); "
                                "the weights may hold NaN: lower the learning rate. The last good checkpoint is kept.")
        return window

    def _batch(self, indices: list[int], b: int, window: Window) -> float:
        """Forward and backward on one batch; a non-finite loss stops the stage or skips the batch."""
        batch = to_device(self.ctx.task.collate([self.features[i] for i in indices], self.ctx.tokenizer), self.ctx.device)
        loss = self.loss_fn(self.ctx.model, batch)
        if self.stage.l1:
            loss = loss + self.stage.l1 * sum(p.abs().sum() for p in self.l1_params)
        value = loss.item()
        if not math.isfinite(value):
            if self.stage.on_nonfinite == "stop":
                raise TrainingError(f"stage '{self.name}': loss is {value} at epoch {self.epoch}, batch {b} (step {self.step}); "
                                    "lower the learning rate or check the data. The last good checkpoint is kept.")
            self.skipped, window.epoch_skipped = self.skipped + 1, window.epoch_skipped + 1
            self.ctx.events.emit("batch_skipped", stage=self.name, epoch=self.epoch, batch=b, step=self.step, loss=str(value))
        else:
            self.scaler.scale(loss / self.stage.gradient_accumulation_steps).backward()
            window.loss += value
            window.count, window.epoch_finite = window.count + 1, window.epoch_finite + 1
        window.samples += len(indices)
        window.epoch_samples += len(indices)
        return value

    def _optimizer_step(self, window: Window, last: bool = False) -> None:
        """Clip, step the optimizer and the scheduler, run the step hooks, log every ``logging_steps`` and at the
        epoch's ``last`` step (so a short run's curves have a point per epoch)."""
        if self.stage.max_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.trained, self.stage.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler.interval == "step":
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        for hook in self.step_hooks:
            hook.after_step(self.core, self.step)
        if self.step % self.stage.logging_steps == 0 or last:
            elapsed = time.perf_counter() - window.start
            metrics = {**({"loss": window.loss / window.count} if window.count else {}),
                       "lr": self.optimizer.param_groups[0]["lr"], "samples_per_s": window.samples / elapsed}
            self.ctx.events.emit("step_end", stage=self.name, epoch=self.epoch, step=self.step, metrics=metrics)
            window.loss, window.count, window.samples, window.start = 0.0, 0, 0, time.perf_counter()

    def _end_epoch(self, window: Window, seconds: float) -> bool:
        """Evaluate, keep the best weights, let a plateau scheduler see the metrics, checkpoint; whether to stop early."""
        ctx, stage = self.ctx, self.stage
        self.start_batch, self.epoch, stop = 0, self.epoch + 1, False
        if self.has_eval:
            saved = predictions_name(self.index, self.name, stage.eval_split, self.epoch) if self.save_predictions else None
            self.last_metrics = evaluate(ctx, stage.eval_split, self.metrics, stage.eval_batch_size or stage.batch_size * 2, saved)
            improved, stop = self.stopper.update(scalars(self.last_metrics))
            watch = stage.early_stopping
            ctx.events.emit("evaluation_done", stage=self.name, epoch=self.epoch, step=self.step, split=stage.eval_split,
                            metrics=scalars(self.last_metrics),
                            **({"early_stopping": {"metric": watch.metric, "best": self.stopper.best, "improved": improved,
                                                   "bad_evals": self.stopper.bad_evals, "patience": watch.patience,
                                                   "stop": stop}} if watch is not None else {}))
            if improved and stage.early_stopping and stage.early_stopping.restore_best and ctx.run_dir is not None and ctx.rank == 0:
                save_best(ctx, self.index, self.core)
            if self.scheduler.interval == "eval":
                self.scheduler.step(scalars(self.last_metrics))
        ctx.events.emit("epoch_end", stage=self.name, epoch=self.epoch, step=self.step, train_seconds=seconds,
                        samples_per_s=window.epoch_samples / max(seconds, 1e-9), skipped_batches=window.epoch_skipped)
        self._checkpoint(f"stage{self.index}-epoch{self.epoch:03d}", self.epoch, 0)
        return stop

    def _checkpoint(self, tag: str, epoch: int, batch: int) -> None:
        if self.ctx.checkpoints is None or self.ctx.rank != 0:
            return
        state = {
            "stage": self.index, "done": False, "epoch": epoch, "batch": batch, "step": self.step,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
            "early_stopping": self.stopper.state(), "rng": rng_state(), "last_metrics": plain(scalars_tree(self.last_metrics)),
            "skipped": self.skipped, **({"extra": self.extra.state_dict()} if self.extra is not None else {}),
        }
        folder = self.ctx.checkpoints.save(tag, self.core, state, self.only)
        self.ctx.events.emit("checkpoint_saved", stage=self.name, epoch=epoch, step=self.step, path=str(folder))
