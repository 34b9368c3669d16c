"""What each kind of component's factory must return: the contracts between core and plugins.

These are typing protocols only; nothing here imports torch.
"""

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
    """Receives lifecycle events; implement only the ``on_<event>`` methods you need.

    Events: run_start, stage_start, epoch_start, step_end, evaluation_done, checkpoint_saved,
    epoch_end, stage_end, run_end, run_failed, batch_skipped, compression_point (one setting tried
    against an accuracy budget), compression_done. Each method receives ``(event: str, data: dict)``.
    """


class Task(Protocol):
    """A kind of problem: how to load a model for it, encode data, compute loss and decode.

    ``load`` gets the training data's labels; a task may keep a fine-tuned head's own labels instead
    (hone's tasks do where the head names every label of the data) and then defines the optional
    ``model_labels(model) -> list[str]``, which hone calls after ``load`` to learn the labels in id order.

    A generative task also defines the optional ``generate(model, batch, labels) -> (predictions, references)``
    or ``(predictions, references, details)``: evaluation calls it on each collated batch instead of ``decode``
    (after the forward pass that gives the loss), with the model outside any DDP wrapper. It returns one entry
    per example in batch order (``details``: one JSON-able dict each, written to the predictions file beside
    prediction and reference, e.g. the raw generated text), or empty lists where the batch has nothing to
    generate (loss and perplexity only).

    ``label_shift`` (optional, 0 when absent) says which label the logits at position ``t`` are scored against:
    ``t + label_shift``. Causal LMs have 1 (labels are the input ids; the loss shifts them), so the first
    ``label_shift`` labels of a row are never scored: evaluation leaves them out of its token counts and
    distillers align logits and labels with it.
    """

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
    """What a compressor may use besides the model; in a run hone fills every field.

    ``calibration_batches(count, batch_size)`` gives collated training batches on the model's
    device (what the task's ``collate`` returns: ``input_ids``, ``attention_mask``, ``labels``...);
    ``loss(model, batch)`` runs the model on one of them and returns the task's scalar loss tensor;
    ``evaluate(model)`` returns the validation metrics (floats) of a model. Each is ``None`` where
    the run has no such data (e.g. no train split) and in a bare ``CompressionContext()``.
    """

    train_features: Sequence[dict[str, Any]] = ()  # encoded training examples: input_ids, ..., labels
    tokenizer: Any = None
    device: Any = None  # the torch.device the model lives on
    seed: int = 0
    calibration_batches: Callable[[int, int], list[dict[str, Any]]] | None = None
    loss: Callable[[Any, Mapping[str, Any]], Any] | None = None
    evaluate: Callable[[Any], dict[str, float]] | None = None


class Compressor(Protocol):
    """Makes a model smaller or faster; chosen by name in a ``compress`` stage.

    ``compress`` returns the (possibly new) model and a report of what changed. hone adds the
    parameters, non-zero parameters, size and sparsity per layer itself. If the compressed
    model's structure differs from what its config builds (new shapes, quantized or custom
    modules, another dtype), put a JSON-able ``"recipe"`` in the report and implement
    ``restore(model, recipe) -> model``: it re-applies the structural change to a freshly built
    model of the original config, and hone then loads the saved weights into it (safetensors,
    never pickle). A recipe may set ``"cpu_only": true`` (e.g. quantized CPU kernels).
    """

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
        """A hook reaching full strength at step ``end``, updating every ``every`` steps from ``start``.

        Called when the stage starts or resumes (``model`` holds the weights it starts from)."""
        ...


class Distiller(Protocol):
    """Teacher-to-student training loss; used by ``distill`` stages (see ``hone.distillation``)."""

    needs_hidden_states: bool  # the models are run with output_hidden_states=True
    needs_attentions: bool  # ... and output_attentions=True (hone switches them to eager attention)

    def prepare(self, student: Any, teachers: Sequence[Any]) -> Mapping[str, Any]:
        """Check the models fit; return extra trainable modules by name (e.g. projections), ``{}`` if none.

        hone optimises and checkpoints them with the student; they are not part of the saved model.
        """
        ...

    def loss(self, student_outputs: Any, teacher_outputs: Sequence[Any], batch: Mapping[str, Any], task_loss: Any) -> Any:
        """The training loss (a scalar tensor) from the student's outputs, each teacher's and the task loss.

        ``batch`` is the collated batch; where the task has a ``label_shift`` (causal LMs: 1), the stage adds it
        as ``batch["_label_shift"]``: the logits at position ``t`` are scored against ``labels[t + shift]``."""
        ...


class Exporter(Protocol):
    """Writes the run's model in a serving format (an ONNX graph...) into a folder; chosen by name in an ``export`` stage.

    ``export`` writes ``folder`` whole or not at all (a temporary folder renamed into place), checks
    what it wrote against the model on ``sample_batches`` (collated batches of the run's data, on the
    model's device; ``None``: the exporter's own samples) and returns a JSON-able report (sizes,
    the difference it measured, seconds). ``task``, ``task_params`` and ``labels`` go into the folder
    so that a runtime (``hone predict --runtime``) serves it with the task's post-processing. The
    optional ``check(model)`` raises, in an instant, for a model it cannot export (hone calls it
    before any work).
    """

    def export(self, model: Any, tokenizer: Any, folder: Path, *, task: str | None = None,
               task_params: Mapping[str, Any] | None = None, labels: Sequence[str] | None = None,
               sample_batches: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]: ...


class Stage(Protocol):
    """What a stage kind's factory returns. ``run`` returns the stage's results (JSON-able; they go into metrics.json
    under the stage's name); ``resume`` is the checkpoint state of this stage when a run continues inside it.
    An optional ``check(ctx, index)`` raises ``HoneError`` for a run it cannot work with, before any stage runs."""

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
    """Trains a few added weights beside the frozen model (LoRA...); chosen in a train or distill stage's ``adapter:``.

    ``check(model)`` raises ``ValueError`` (what to change) for a model it cannot adapt, in an instant, before any work.
    ``apply(model)`` returns the model with the adapter added and only the adapter and the task's head trainable;
    ``trained(model)`` names the tensors of that model's state dict a checkpoint must keep (the rest are the
    frozen weights the run loads again); ``save(model, folder)`` writes the adapter alone; ``merge(model)`` returns
    the plain model with the adapter folded into its weights.
    """

    def check(self, model: Any) -> None: ...
    def apply(self, model: Any) -> Any: ...
    def trained(self, model: Any) -> list[str]: ...
    def save(self, model: Any, folder: Path) -> None: ...
    def merge(self, model: Any) -> Any: ...


class ModelFormat(Protocol):
    """How a run saves its model and reads it back: checkpoints, best weights and the final ``model/`` (the spec's
    ``model_format``). ``tensors(model)``: its weights as plain tensors for safetensors; ``fit(template, tensors)``:
    the reverse, a state dict for a model of the same structure (``template``: its state dict); ``write_structure(model,
    folder)`` writes what rebuilding the structure takes (a compression recipe) and returns the files' names;
    ``rebuild(model, folder)``: the model built from the spec with that structure re-applied; ``save(model, folder)``:
    a model folder that ``hone predict`` loads."""

    def tensors(self, model: Any) -> dict[str, Any]: ...
    def fit(self, template: Mapping[str, Any], tensors: Mapping[str, Any]) -> dict[str, Any]: ...
    def write_structure(self, model: Any, folder: Path) -> list[str]: ...
    def rebuild(self, model: Any, folder: Path) -> Any: ...
    def save(self, model: Any, folder: Path) -> None: ...
