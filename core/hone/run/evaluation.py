"""One evaluation pass: loss, decoded predictions and every requested metric."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from hone.run.batching import eval_batches
from hone.components import EvalOutput
from hone.run.devices import forward, to_device
from hone.errors import ComponentError


def predict_split(ctx: Any, features: Sequence[dict[str, Any]], batch_size: int) -> tuple[float, EvalOutput]:
    """Run the model over ``features``; return the mean loss and predictions in the original order."""
    model, task = ctx.model, ctx.task
    was_training = model.training
    model.eval()
    total_loss, total_weight = 0.0, 0
    slots: list[tuple[int, Any, Any, Any]] = []
    with torch.inference_mode():
        for indices in eval_batches([f["length"] for f in features], batch_size):
            batch = to_device(task.collate([features[i] for i in indices], ctx.tokenizer), ctx.device)
            outputs = forward(model, batch, ctx.device, ctx.precision)
            loss = task.loss(outputs, batch)
            labels = batch["labels"]
            weight = int((labels != -100).sum()) if not labels.is_floating_point() else len(indices)
            total_loss += float(loss) * weight
            total_weight += weight
            predictions, references, scores = task.decode(outputs, batch, ctx.labels)
            for k, i in enumerate(indices):
                if predictions:
                    slots.append((i, predictions[k], references[k], scores[k] if scores else None))
    model.train(was_training)
    slots.sort(key=lambda slot: slot[0])
    output = EvalOutput(
        predictions=[s[1] for s in slots],
        references=[s[2] for s in slots],
        label_names=list(ctx.labels),
        loss=total_loss / max(total_weight, 1),
        scores=[s[3] for s in slots],
    )
    return output.loss or 0.0, output


def compute_metrics(metrics: Sequence[tuple[str, Any]], output: EvalOutput, origins: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """Every metric's results; ``origins`` (name -> plugin and distribution) goes into error messages."""
    results: dict[str, Any] = {"loss": output.loss}
    for name, metric in metrics:
        try:
            found = metric.compute(output)
        except Exception as error:
            origin = f" from {origins[name]}" if origins and origins.get(name) else ""
            raise ComponentError(f"metric '{name}'{origin} failed: {type(error).__name__}: {error}") from error
        results.update(without_clashes(name, found, results))
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


def evaluate(ctx: Any, split: str, metrics: Sequence[tuple[str, Any]], batch_size: int) -> dict[str, Any]:
    _, output = predict_split(ctx, ctx.features[split], batch_size)
    host = getattr(ctx, "host", None)
    origins = {name: host.describe("metric", name) for name, _ in metrics} if hasattr(host, "describe") else None
    return compute_metrics(metrics, output, origins)
