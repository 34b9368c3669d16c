"""One evaluation pass: loss, decoded or generated predictions and every requested metric."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from hone.components import EvalOutput
from hone.errors import ComponentError, HoneError
from hone.run.context import unwrap
from hone.run.devices import autocast, forward, to_device

from hone_plugins.stages.batching import eval_batches
from hone_plugins.stages.plain import plain_results
from hone_plugins.stages.predictions import write_predictions


def eval_precision(ctx: Any, model: Any = None) -> str:
    """The precision evaluation of ``model`` runs at: the context's ``eval_precision``, or its one ``precision``."""
    return inference_precision(getattr(ctx, "eval_precision", None) or ctx.precision, model)


def inference_precision(precision: str, model: Any = None) -> str:
    """``precision`` for inference with ``model``, but fp32 for a model with torch.ao quantized layers, whose
    kernels take fp32 inputs only (under bf16 autocast they fail)."""
    if precision != "fp32" and model is not None and any(
            type(module).__module__.startswith(("torch.ao.nn.quantized", "torch.nn.quantized")) for module in model.modules()):
        return "fp32"
    return precision


def check_metric_labels(ctx: Any, index: int, refs: Sequence[Any] | None) -> None:
    """A stage's metrics that can tell they cannot match the data's labels (an optional ``check_labels(labels)``
    raising ValueError) refuse in the stage's ``check``: after the data is read, before any stage runs."""
    for name, metric in ctx.metrics(refs):
        if (check := getattr(metric, "check_labels", None)) is not None:
            try:
                check(list(ctx.labels))
            except ValueError as error:
                raise HoneError(f"stage '{ctx.stage_names[index]}': metric '{name}': {error}") from None


def predict_split(ctx: Any, features: Sequence[dict[str, Any]], batch_size: int,
                  description: str = "evaluating") -> tuple[float, EvalOutput]:
    """Run the model over ``features`` (a progress bar where ``ctx.progress`` makes one); return the mean loss and
    predictions in the original order.

    A task with ``generate`` generates each batch's predictions (after the teacher-forced forward pass that
    gives the loss) instead of decoding the forward pass's outputs."""
    model, task = ctx.model, ctx.task
    generate = getattr(task, "generate", None)
    shift = int(getattr(task, "label_shift", 0) or 0)
    was_training = model.training
    precision = eval_precision(ctx, model)
    model.eval()
    total_loss, total_weight = 0.0, 0
    slots: list[tuple[int, Any, Any, Any, Any]] = []
    batches = eval_batches([f["length"] for f in features], batch_size)
    progress = getattr(ctx, "progress", None)
    bar = progress(description, len(batches)) if callable(progress) else None
    try:
        with torch.inference_mode():
            for indices in batches:
                batch = to_device(task.collate([features[i] for i in indices], ctx.tokenizer), ctx.device)
                outputs = forward(model, batch, ctx.device, precision)
                loss = task.loss(outputs, batch)
                weight = loss_weight(batch["labels"], shift, len(indices))
                total_loss += float(loss) * weight
                total_weight += weight
                if generate is not None:
                    with autocast(ctx.device, precision):
                        generated = generate(unwrap(model), batch, ctx.labels)
                    predictions, references = generated[0], generated[1]
                    details = generated[2] if len(generated) > 2 else None
                    scores = None
                else:
                    predictions, references, scores = task.decode(outputs, batch, ctx.labels)
                    details = None
                if predictions:
                    for k, i in enumerate(indices):
                        slots.append((i, predictions[k], references[k], scores[k] if scores else None,
                                      details[k] if details else None))
                if bar is not None:
                    bar.advance(float(loss))
    finally:
        if bar is not None:
            bar.close()
    model.train(was_training)
    slots.sort(key=lambda slot: slot[0])
    output = EvalOutput(
        predictions=[s[1] for s in slots],
        references=[s[2] for s in slots],
        label_names=list(ctx.labels),
        loss=total_loss / max(total_weight, 1),
        scores=None if generate is not None else [s[3] for s in slots],
        details=[s[4] or {} for s in slots] if any(s[4] for s in slots) else None,
    )
    return output.loss or 0.0, output


def loss_weight(labels: Any, shift: int, examples: int) -> int:
    """How many targets a batch's mean loss averaged over: the labels that are scored (not -100, and not the
    first ``shift`` of a row, which a shifted loss never reaches), or the examples for float (regression) labels."""
    if labels.is_floating_point():
        return examples
    return int((labels[..., shift:] != -100).sum())


def compute_metrics(metrics: Sequence[tuple[str, Any]], output: EvalOutput, origins: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """Every metric's results; ``origins`` (name -> plugin and distribution) goes into error messages."""
    results: dict[str, Any] = {"loss": output.loss}
    for name, metric in metrics:
        origin = origins.get(name) if origins else None
        try:
            found = metric.compute(output)
        except Exception as error:
            where = f" from {origin}" if origin else ""
            raise ComponentError(f"metric '{name}'{where} failed: {type(error).__name__}: {error}") from error
        results.update(without_clashes(name, plain_results(name, found, origin), results))
    return results


def without_clashes(name: str, found: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """``found`` without what an earlier metric already reported alike, and with the keys it reported otherwise
    renamed ``key_2`` (``_3``...), so nothing is lost."""
    found = {key: value for key, value in found.items() if key not in results or results[key] != value}
    clashes = [key for key in found if key in results]
    if not clashes:
        return found
    number = 2
    while any(f"{key}_{number}" in results for key in clashes):
        number += 1
    renamed = {key: f"{key}_{number}" for key in clashes}
    warnings.warn(f"metric '{name}' reports {', '.join(clashes)} like an earlier metric of the same evaluation; "
                  f"its values are kept as {', '.join(renamed.values())}", stacklevel=3)
    return {renamed.get(key, key): value for key, value in found.items()}


def evaluate(ctx: Any, split: str, metrics: Sequence[tuple[str, Any]], batch_size: int,
             predictions: str | None = None) -> dict[str, Any]:
    """The metrics of the model on ``split``; with ``predictions`` (a name from ``predictions_name``), the
    per-example predictions are also written there in the run directory (by rank 0, where there are any)."""
    _, output = predict_split(ctx, ctx.features[split], batch_size, f"evaluating {split}")
    if predictions is not None and ctx.run_dir is not None and getattr(ctx, "rank", 0) == 0:
        write_predictions(ctx.run_dir, predictions, output)
    host = getattr(ctx, "host", None)
    origins = {name: host.describe("metric", name) for name, _ in metrics} if hasattr(host, "describe") else None
    return compute_metrics(metrics, output, origins)
