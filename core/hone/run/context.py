"""What every stage of a run shares: the spec, the plugins, the model and its data, where results go."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hone.components import ModelFormat
from hone.host import PluginHost
from hone.run.events import EventLog
from hone.spec.models import RunSpec

if TYPE_CHECKING:
    import torch

    from hone.run.checkpoint import Checkpoints

Features = list[dict[str, Any]]
"""Encoded examples of one split, as the task's ``encode`` returns them."""


@dataclass
class RunContext:
    """Everything stages share: the model, the data, where results go."""

    spec: RunSpec
    host: PluginHost
    run_dir: Path | None
    task: Any
    model: torch.nn.Module
    tokenizer: Any
    labels: list[str]
    features: dict[str, Features]
    device: torch.device
    precision: str
    events: EventLog
    checkpoints: Checkpoints | None
    progress: Callable[..., Any] | None  # (description, total, completed) -> a bar with advance(loss) and close(); None: no bars
    rank: int = 0
    world_size: int = 1
    eval_precision: str | None = None
    """What evaluation and prediction run at (``precision`` is training's); ``None``: the same as training."""
    model_format: ModelFormat | None = None
    """How the model's weights are saved (the spec's ``model_format``, built)."""
    _interrupt: list[bool] = field(default_factory=lambda: [False])

    @property
    def seed(self) -> int:
        return self.spec.seed

    @property
    def stage_names(self) -> list[str]:
        return self.spec.stage_names()

    @property
    def core(self) -> torch.nn.Module:
        """The model itself, outside a DistributedDataParallel wrapper."""
        return unwrap(self.model)

    def interrupted(self) -> bool:
        return self._interrupt[0]

    def metrics(self, refs: Sequence[Any] | None) -> list[tuple[str, Any]]:
        """A stage's metrics, built; the task's default metrics where it names none."""
        return [(ref if isinstance(ref, str) else ref.name, self.host.build("metric", ref))
                for ref in (refs if refs is not None else self.task.default_metrics)]

    def forward(self, model: Any, batch: dict[str, Any], **flags: Any) -> Any:
        """The model's outputs on a collated batch (labels and ``_`` metadata left out), at the run's training precision."""
        from hone.run.devices import forward

        return forward(model, batch, self.device, self.precision, **flags)

    def loss_forward(self, model: Any, batch: dict[str, Any], **flags: Any) -> Any:
        """The outputs a training loss reads, the forward inside the task's ``loss_scope`` if it has one (a causal LM:
        logits at the labelled positions only)."""
        scope = getattr(self.task, "loss_scope", None)
        with scope(unwrap(model), batch) if scope is not None else nullcontext():
            return self.forward(model, batch, **flags)

    def loss(self, model: Any, batch: dict[str, Any], label_smoothing: float = 0.0) -> torch.Tensor:
        """The task's loss on the model's outputs for a batch (:meth:`loss_forward`)."""
        return self.task.loss(self.loss_forward(model, batch), batch, label_smoothing)


def unwrap(model: Any) -> Any:
    """The model inside a DistributedDataParallel wrapper."""
    return model.module if hasattr(model, "module") else model
