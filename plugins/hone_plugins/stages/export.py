"""The ``export`` stage: an exporter writes the run's model to ``export/<name>/`` in the run directory,
checked against the model on batches of the run's own data; its report is the stage's results."""

from __future__ import annotations

import random
from typing import Any

from hone.errors import ComponentError, HoneError, Interrupted
from hone_plugins.formats.compressed import compression_steps
from hone.run.context import RunContext
from hone_plugins.exporters.folders import EXPORT_DIR
from hone_plugins.stages.specs import ExportStage

CHECK_SPLITS = ("validation", "test", "train")  # where the check batches come from unless the stage names a split


def batch_sizes(stage: ExportStage) -> list[int]:
    """``check_batches`` batches of ``batch_size``, the last one smaller: the batch axis varies."""
    if stage.check_batches == 1:
        return [stage.batch_size]
    return [stage.batch_size] * (stage.check_batches - 1) + [max(2, stage.batch_size // 2)]


def check_batches(ctx: RunContext, index: int, stage: ExportStage) -> tuple[list[dict[str, Any]] | None, dict[str, Any]]:
    """Collated batches of a split, longest examples first (so the sequence axis varies too), and what they are;
    ``None`` where the run has no split of two examples (the exporter then uses its own samples)."""
    name = ctx.stage_names[index]
    if stage.check_split is not None:
        split: str | None = stage.check_split
        found = len(ctx.features.get(stage.check_split) or [])
        if found < 2:
            raise HoneError(f"stage '{name}': check_split '{split}' has {found} example(s); the export check needs at least 2")
    else:
        split = next((s for s in CHECK_SPLITS if len(ctx.features.get(s) or []) >= 2), None)
    if split is None:
        return None, {"split": None, "data": "the exporter's own samples"}
    features = ctx.features[split]
    sizes = batch_sizes(stage)
    chosen = random.Random(ctx.seed * 1000 + index).sample(range(len(features)), min(len(features), sum(sizes)))
    chosen.sort(key=lambda i: -len(features[i].get("input_ids") or ()))
    batches, start = [], 0
    for size in sizes:
        if part := chosen[start : start + size]:
            batches.append(ctx.task.collate([features[i] for i in part], ctx.tokenizer))
        start += size
    return batches, {"split": split, "examples": len(chosen), "batches": len(batches)}


def refuse_early(ctx: RunContext, name: str, exporter_name: str, exporter: Any) -> None:
    """The exporter's own ``check(model)``, before any work; the error names the compressions the model went through."""
    check = getattr(exporter, "check", None)
    if check is None:
        return
    try:
        check(ctx.core)
    except (HoneError, ValueError) as error:
        steps = compression_steps(ctx.core)
        by = "; the model was compressed by " + ", ".join(f"stage '{s['stage']}' ({s['compressor']})" for s in steps) \
            if steps else ""
        raise HoneError(f"stage '{name}': the {exporter_name} exporter cannot export the run's model: {error}{by}") from None


class Export:
    def __init__(self, spec: ExportStage) -> None:
        self.spec = spec

    def run(self, ctx: RunContext, index: int, resume: dict[str, Any] | None = None) -> dict[str, Any]:
        stage, name = self.spec, ctx.stage_names[index]
        exporter_name = stage.exporter.name
        if ctx.world_size > 1:
            raise HoneError(f"stage '{name}': export stages run in a single process (no data-parallel launch)")
        if ctx.run_dir is None:
            raise HoneError(f"stage '{name}': an export stage writes into the run directory, and this run has none")
        if ctx.interrupted():
            raise Interrupted(f"stage '{name}' did not start: interrupted; run again with --resume")
        exporter = ctx.host.build("exporter", stage.exporter)  # a missing extra (onnx...) is named here
        refuse_early(ctx, name, exporter_name, exporter)
        relative = f"{EXPORT_DIR}/{stage.folder()}"
        batches, check = check_batches(ctx, index, stage)
        ctx.events.emit("stage_start", stage=name, type=stage.type, exporter=exporter_name, folder=relative)
        where = f"exporter '{exporter_name}' from {ctx.host.describe('exporter', exporter_name)}"
        try:
            report = exporter.export(ctx.core, ctx.tokenizer, ctx.run_dir / relative, task=ctx.spec.task.name,
                                     task_params=ctx.spec.task.settings(), labels=list(ctx.labels), sample_batches=batches)
        except Interrupted:
            raise
        except HoneError as error:
            raise HoneError(f"stage '{name}': {error}") from error
        except Exception as error:
            raise ComponentError(f"{where} failed: {type(error).__name__}: {error}") from error
        if not isinstance(report, dict):
            raise ComponentError(f"{where} returned a {type(report).__name__} report; a dict is expected")
        ours = {"exporter": exporter_name, "folder": relative, "params": stage.exporter.settings(), "check_data": check}
        return {**ours, **{key: value for key, value in report.items() if key not in ours}}
