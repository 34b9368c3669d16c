"""What each kind of component's factory must return: the contracts between core and plugins.

These are typing protocols only; nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

Example = dict[str, Any]
"""One data record. Token tasks: ``tokens: list[str]``, ``tags: list[str]``.
Sequence tasks: ``text``, optional ``text_pair``, ``label`` (str, or float for regression).
Causal LM: ``text``."""


@dataclass
class EvalOutput:
    """Everything a metric may need about one evaluation pass."""

    predictions: list[Any]
    references: list[Any]
    label_names: list[str] = field(default_factory=list)
    loss: float | None = None
    scores: list[Any] | None = None  # per-example probabilities, where the task has them


class Metric(Protocol):
    def compute(self, output: EvalOutput) -> dict[str, Any]:
        """Return named results; ``float`` values are scalars usable as objectives, others go to reports."""
        ...


class Scheduler(Protocol):
    interval: Literal["step", "eval"]  # stepped after each optimizer step, or after each evaluation

    def step(self, metrics: Mapping[str, float] | None = None) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Reader(Protocol):
    def read(self, path: Path) -> list[Example]:
        """Read every example of ``path``; raise :class:`hone.errors.DataError` with file and line."""
        ...


class Callback(Protocol):
    """Receives lifecycle events; implement only the ``on_<event>`` methods you need.

    Events: run_start, stage_start, epoch_start, step_end, evaluation_done, checkpoint_saved,
    epoch_end, stage_end, run_end, run_failed. Each method receives ``(event: str, data: dict)``.
    """


class Task(Protocol):
    """A kind of problem: how to load a model for it, encode data, compute loss and decode."""

    default_metrics: Sequence[str]

    def labels_from(self, examples: Sequence[Example]) -> list[str]: ...
    def load(self, source: str, labels: list[str], *, trust_remote_code: bool = False, revision: str | None = None) -> tuple[Any, Any]: ...
    def encode(self, examples: Sequence[Example], tokenizer: Any, labels: list[str]) -> list[dict[str, Any]]: ...
    def collate(self, features: Sequence[dict[str, Any]], tokenizer: Any) -> dict[str, Any]: ...
    def loss(self, outputs: Any, batch: Mapping[str, Any], label_smoothing: float = 0.0) -> Any: ...
    def decode(self, outputs: Any, batch: Mapping[str, Any], labels: list[str]) -> tuple[list[Any], list[Any], list[Any]]: ...
    def predict(self, model: Any, tokenizer: Any, records: Sequence[dict[str, Any]], labels: list[str], options: Mapping[str, Any]) -> list[dict[str, Any]]: ...


class Compressor(Protocol):
    def compress(self, model: Any, context: Any) -> tuple[Any, dict[str, Any]]:
        """Return the compressed model and a report (parameters, non-zero, sparsity per layer...)."""
        ...
