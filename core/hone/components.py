"""What each kind of component's factory returns (typing protocols only, no torch); CONTRIBUTING's hook reference has the details."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

Example = dict[str, Any]
"""One data record. Token tasks: ``tokens: list[str]``, ``tags: list[str]``.
Sequence tasks: ``text``, optional ``text_pair``, ``label`` (str, or float for regression).
Causal LM: ``text``, ``prompt`` + ``completion`` or ``messages``. Seq2seq: ``source``, ``target``."""


@dataclass
class EvalOutput:
    """Everything a metric may need about one evaluation pass."""

    predictions: list[Any]
    references: list[Any]
    label_names: list[str] = field(default_factory=list)
    loss: float | None = None
    scores: list[Any] | None = None  # per-example probabilities, where the task has them
    details: list[dict[str, Any]] | None = None  # per-example extras for the predictions file (e.g. raw generated text)


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
    """Receives lifecycle events: ``on_<event>(event, data)`` for the events it needs (``hone.run.events.EVENTS``)."""


class Task(Protocol):
    """A kind of problem: loading a model for it, encoding data, loss, decoding; optional ``model_labels``, ``generate``,
    ``label_shift``, ``loss_scope(model, batch)`` (a context the training loss's forward runs in)."""

    default_metrics: Sequence[str]

    def labels_from(self, examples: Sequence[Example]) -> list[str]: ...
    def load(self, source: str, labels: list[str], *, trust_remote_code: bool = False, revision: str | None = None) -> tuple[Any, Any]: ...
    def encode(self, examples: Sequence[Example], tokenizer: Any, labels: list[str]) -> list[dict[str, Any]]: ...
    def collate(self, features: Sequence[dict[str, Any]], tokenizer: Any) -> dict[str, Any]: ...
    def loss(self, outputs: Any, batch: Mapping[str, Any], label_smoothing: float = 0.0) -> Any: ...
    def decode(self, outputs: Any, batch: Mapping[str, Any], labels: list[str]) -> tuple[list[Any], list[Any], list[Any]]: ...
    def predict(self, model: Any, tokenizer: Any, records: Sequence[dict[str, Any]], labels: list[str], options: Mapping[str, Any]) -> list[dict[str, Any]]: ...


@dataclass
class CompressionContext:
    """What a compressor may use besides the model; a run fills every field, a bare ``CompressionContext()`` none."""

    train_features: Sequence[dict[str, Any]] = ()  # encoded training examples: input_ids, ..., labels
    tokenizer: Any = None
    device: Any = None  # the torch.device the model lives on
    seed: int = 0
    calibration_batches: Callable[[int, int], list[dict[str, Any]]] | None = None
    loss: Callable[[Any, Mapping[str, Any]], Any] | None = None
    evaluate: Callable[[Any], dict[str, float]] | None = None


class Compressor(Protocol):
    """Makes a model smaller or faster (a ``compress`` stage); a structural change puts a ``"recipe"`` in the report."""

    def compress(self, model: Any, context: CompressionContext) -> tuple[Any, dict[str, Any]]: ...


class RestorableCompressor(Compressor, Protocol):
    def restore(self, model: Any, recipe: dict[str, Any]) -> Any: ...


class StepHook(Protocol):
    """Runs after every optimizer step of a train stage (e.g. gradual pruning)."""

    def after_step(self, model: Any, step: int) -> None: ...
    def report(self, model: Any) -> dict[str, Any]: ...


class GradualCompressor(Compressor, Protocol):
    """A compressor that can also be applied step by step while a train stage runs (``pruning:``)."""

    def gradual(self, model: Any, total_steps: int, start: int, end: int, every: int) -> StepHook:
        """A hook reaching full strength at step ``end``, updating every ``every`` steps from ``start`` (built at (re)start)."""
        ...


class Distiller(Protocol):
    """Teacher-to-student training loss; used by ``distill`` stages (see ``hone.distillation``)."""

    needs_hidden_states: bool  # the models are run with output_hidden_states=True
    needs_attentions: bool  # ... and output_attentions=True (hone switches them to eager attention)

    def prepare(self, student: Any, teachers: Sequence[Any]) -> Mapping[str, Any]:
        """Check the models fit; return extra trainable modules by name (e.g. projections), ``{}`` if none."""
        ...

    def loss(self, student_outputs: Any, teacher_outputs: Sequence[Any], batch: Mapping[str, Any], task_loss: Any) -> Any:
        """The training loss (a scalar tensor) from the student's outputs, each teacher's and the task loss."""
        ...


class Exporter(Protocol):
    """Writes the run's model in a serving format (an ONNX graph...) into a folder, checked against the model; optional ``check(model)``."""

    def export(self, model: Any, tokenizer: Any, folder: Path, *, task: str | None = None,
               task_params: Mapping[str, Any] | None = None, labels: Sequence[str] | None = None,
               sample_batches: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]: ...


class Stage(Protocol):
    """A stage kind's runner: ``run`` returns its JSON-able results; optional ``check(ctx, index)`` before any stage runs."""

    def run(self, ctx: Any, index: int, resume: dict[str, Any] | None = None) -> dict[str, Any]: ...


class Command(Protocol):
    """A ``hone <name>`` command; ``arguments=`` at registration adds its options. ``run`` returns the exit status."""

    def run(self, args: Any) -> int: ...


class SpecSection(Protocol):
    """Checks a plugin's spec section against the whole spec (``hone validate``); raises ``SpecError``."""

    def check(self, spec: Any, host: Any, file: Path) -> None: ...


class ReportSection(Protocol):
    """Contributes sections (``hone.report.Section``) to a run's report."""

    def sections(self, run: Any) -> list[Any]: ...


class Runtime(Protocol):
    """Serves an exported model for ``hone predict --runtime``: ``(model, tokenizer, metadata)`` from a folder."""

    def load(self, source: Path) -> tuple[Any, Any, dict[str, Any]]: ...


class Adapter(Protocol):
    """Trains a few added weights beside the frozen model (LoRA...): a train or distill stage's ``adapter:``."""

    def check(self, model: Any) -> None: ...
    def apply(self, model: Any) -> Any: ...
    def trained(self, model: Any) -> list[str]: ...
    def save(self, model: Any, folder: Path) -> None: ...
    def merge(self, model: Any) -> Any: ...


class ModelFormat(Protocol):
    """How a run saves its model (checkpoints, best weights, ``model/``) and reads it back: the spec's ``model_format``."""

    def tensors(self, model: Any) -> dict[str, Any]: ...
    def fit(self, template: Mapping[str, Any], tensors: Mapping[str, Any]) -> dict[str, Any]: ...
    def write_structure(self, model: Any, folder: Path) -> list[str]: ...
    def rebuild(self, model: Any, folder: Path) -> Any: ...
    def save(self, model: Any, folder: Path) -> None: ...
