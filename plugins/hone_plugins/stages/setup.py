"""What a train stage sets up before its first step: frozen parameters, dropout, weight-decay groups, early stopping,
gradient checkpointing."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from hone.atomic import write_with
from hone.errors import HoneError
from hone_plugins.stages.specs import TrainStage


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


def decays(param: torch.Tensor) -> bool:
    """Weight decay (and an L1 penalty) apply to matrices, not to biases and norm scales: whatever the model calls them."""
    return param.dim() >= 2


def param_groups(model: torch.nn.Module) -> list[dict[str, Any]]:
    """The trainable parameters in two optimizer groups: with weight decay, and without (``weight_decay: 0.0``)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in trainable if decays(p)]}, {"params": [p for p in trainable if not decays(p)], "weight_decay": 0.0}]
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
        value, sign = metrics[name], (1 if self.config.mode == "max" else -1)
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


def best_path(ctx: Any, index: int) -> Path:
    """Where early stopping keeps stage ``index``'s best weights (``checkpoints.after_run: best`` keeps them)."""
    return ctx.run_dir / "checkpoints" / f"best-stage{index}.safetensors"


def save_best(ctx: Any, index: int, model: torch.nn.Module) -> None:
    from safetensors.torch import save_file

    write_with(best_path(ctx, index), lambda path: save_file(ctx.model_format.tensors(model), str(path)))


def restore_best(ctx: Any, index: int, model: torch.nn.Module) -> None:
    from safetensors.torch import load_file

    if ctx.world_size > 1:
        torch.distributed.barrier()
    model.load_state_dict(ctx.model_format.fit(model.state_dict(), load_file(str(best_path(ctx, index)))), strict=False)


def check_checkpointing(model: Any, stage: str) -> None:
    """Refuse ``gradient_checkpointing`` for a model that cannot recompute its activations."""
    if not (getattr(model, "supports_gradient_checkpointing", False) and hasattr(model, "gradient_checkpointing_enable")):
        raise TrainingError(f"stage '{stage}': gradient_checkpointing: {type(model).__name__} does not support it "
                            "(it is no transformers model with supports_gradient_checkpointing); remove the option")


def is_checkpointing(model: Any) -> bool:
    model = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft's wrapper forwards the old name
    name = "is_activation_checkpointing" if hasattr(type(model), "is_activation_checkpointing") else "is_gradient_checkpointing"
    return bool(getattr(model, name, False))


@contextmanager
def gradient_checkpointing(model: Any, enabled: bool, stage: str) -> Iterator[None]:
    """While a stage trains: recompute activations in the backward pass (non-reentrant, so frozen inputs and
    ``torch.no_grad`` parts behave as without it); the model is left as it was found."""
    if not enabled:
        yield
        return
    check_checkpointing(model, stage)
    was = is_checkpointing(model)
    if hasattr(model, "activation_checkpointing_enable"):  # newer transformers 5 name; the old one warns
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    try:
        yield
    finally:
        if not was:
            (getattr(model, "activation_checkpointing_disable", None) or model.gradient_checkpointing_disable)()
