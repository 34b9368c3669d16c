"""Metrics over numbers: perplexity (from the evaluation loss), mean squared error and Pearson correlation."""

from __future__ import annotations

import math
from typing import Any

from hone.components import EvalOutput
from hone.registry import NoParams
from hone_plugins.metrics.pairs import check_lengths


class Perplexity:
    """``exp(loss)`` where ``loss`` is the evaluation's mean token cross-entropy (natural log)."""

    def compute(self, output: EvalOutput) -> dict[str, Any]:
        check_lengths(output.predictions, output.references)
        if output.loss is None:
            raise ValueError("perplexity needs the evaluation loss (mean token cross-entropy), but output.loss is None")
        try:
            return {"perplexity": math.exp(output.loss)}
        except OverflowError:
            return {"perplexity": math.inf}


def perplexity(params: NoParams) -> Perplexity:
    """Perplexity of a causal LM: exp of the mean token cross-entropy loss."""
    return Perplexity()


def floats(output: EvalOutput) -> tuple[Any, Any]:
    import numpy as np

    check_lengths(output.predictions, output.references)
    if not output.predictions:
        raise ValueError("no predictions to score")
    try:
        return np.asarray(output.predictions, dtype=float), np.asarray(output.references, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"regression metrics need numeric predictions and references: {error}") from None


class MeanSquaredError:
    """Mean of squared differences between predicted and reference values."""

    def compute(self, output: EvalOutput) -> dict[str, Any]:
        predictions, references = floats(output)
        return {"mse": float(((predictions - references) ** 2).mean())}


def mse(params: NoParams) -> MeanSquaredError:
    """Mean squared error for regression."""
    return MeanSquaredError()


class Pearson:
    """Pearson correlation of predictions with references; NaN when either side is constant."""

    def compute(self, output: EvalOutput) -> dict[str, Any]:
        predictions, references = floats(output)
        if len(predictions) < 2:
            raise ValueError("pearson needs at least 2 predictions")
        dp, dr = predictions - predictions.mean(), references - references.mean()
        denominator = math.sqrt(float((dp**2).sum() * (dr**2).sum()))
        return {"pearson": float((dp * dr).sum()) / denominator if denominator else math.nan}


def pearson(params: NoParams) -> Pearson:
    """Pearson correlation for regression."""
    return Pearson()

