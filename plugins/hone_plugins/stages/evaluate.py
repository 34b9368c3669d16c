"""The ``evaluate`` stage: score the model on one split."""

from __future__ import annotations

from typing import Any

from hone.errors import HoneError
from hone.run.context import RunContext
from hone.run.results import scalars

from hone_plugins.stages.evaluation import check_metric_labels, evaluate
from hone_plugins.stages.predictions import predictions_name
from hone_plugins.stages.specs import EvaluateStage


class Evaluate:
    def __init__(self, spec: EvaluateStage) -> None:
        self.spec = spec

    def check(self, ctx: RunContext, index: int) -> None:
        check_metric_labels(ctx, index, self.spec.metrics)

    def run(self, ctx: RunContext, index: int, resume: dict[str, Any] | None = None) -> dict[str, Any]:
        name, split = ctx.stage_names[index], self.spec.split
        if split not in ctx.features:
            raise HoneError(f"stage '{name}': there is no '{split}' split; available: {', '.join(ctx.features)}")
        ctx.events.emit("stage_start", stage=name, type=self.spec.type, split=split)
        saved = predictions_name(index, name, split) if self.spec.save_predictions else None
        results = evaluate(ctx, split, ctx.metrics(self.spec.metrics), self.spec.batch_size, saved)
        ctx.events.emit("evaluation_done", stage=name, split=split, metrics=scalars(results))
        return {split: results}
