"""The ``compress`` stage: apply a compressor, within an accuracy budget if one is set, and report what changed."""

from __future__ import annotations

import copy
import json
import random
import time
from typing import Any

import torch
from hone.components import CompressionContext
from hone.errors import ComponentError, HoneError
from hone_plugins.formats.compressed import STEPS_ATTRIBUTE, compression_steps
from hone.run.context import RunContext
from hone.run.devices import to_device
from hone.run.results import scalars

from hone_plugins.stages.evaluation import check_metric_labels, evaluate
from hone_plugins.stages.sizes import latency_ms, model_report
from hone_plugins.stages.specs import CompressStage


class BudgetError(HoneError):
    """No setting of a compressor keeps the model within the stage's accuracy budget."""


def evaluate_model(ctx: Any, model: torch.nn.Module, split: str, metrics: list[tuple[str, Any]], batch_size: int) -> dict[str, Any]:
    """Evaluate ``model`` on ``split`` as the run would, without making it the run's model."""
    previous = ctx.model
    ctx.model = model
    try:
        return evaluate(ctx, split, metrics, batch_size)
    finally:
        ctx.model = previous


def compression_context(ctx: Any, index: int, split: str = "validation", metrics: list[tuple[str, Any]] | None = None,
                        batch_size: int = 64) -> CompressionContext:
    """The context a compressor receives in a run: training data, calibration batches, loss and evaluation."""
    train = ctx.features.get("train") or []
    metric_list = metrics if metrics is not None else ctx.metrics(None)

    def calibration_batches(count: int = 8, batch_size: int = 16) -> list[dict[str, Any]]:
        chosen = random.Random(ctx.seed * 1000 + index).sample(range(len(train)), min(len(train), count * batch_size))
        return [to_device(ctx.task.collate([train[i] for i in chosen[s : s + batch_size]], ctx.tokenizer), ctx.device)
                for s in range(0, len(chosen), batch_size)]

    def evaluate_on_split(model: torch.nn.Module) -> dict[str, float]:
        return scalars(evaluate_model(ctx, model, split, metric_list, batch_size))

    has_split = bool(ctx.features.get(split))
    return CompressionContext(
        train_features=train, tokenizer=ctx.tokenizer, device=ctx.device, seed=ctx.seed,
        calibration_batches=calibration_batches if train else None, loss=ctx.loss if train else None,
        evaluate=evaluate_on_split if has_split else None,
    )


def apply_compressor(ctx: Any, name: str, params: dict[str, Any], model: torch.nn.Module,
                     context: CompressionContext) -> tuple[torch.nn.Module, dict[str, Any], Any]:
    """Build compressor ``name`` and run it: (model, its report without the recipe, the recipe or None)."""
    where = f"compressor '{name}' from {ctx.host.describe('compressor', name)}"
    compressor = ctx.host.build("compressor", {"name": name, **params})
    try:
        compressed, report = compressor.compress(model, context)
    except HoneError:
        raise
    except Exception as error:
        raise ComponentError(f"{where} failed: {type(error).__name__}: {error}") from error
    if not isinstance(report, dict):
        raise ComponentError(f"{where} returned a {type(report).__name__} report; a dict is expected")
    report = dict(report)
    recipe = report.pop("recipe", None)
    if recipe is not None and not hasattr(compressor, "restore"):
        raise ComponentError(f"{where} returned a recipe but has no restore(model, recipe) to rebuild the model from it")
    try:
        json.dumps(recipe)
    except (TypeError, ValueError) as error:
        raise ComponentError(f"{where} returned a recipe that is not JSON ({error})") from None
    return compressed, report, recipe


def _drop(stage: CompressStage, baseline: float, value: float) -> float:
    budget = stage.max_drop
    assert budget is not None
    drop = baseline - value if budget.mode == "max" else value - baseline
    if budget.relative:
        return drop / abs(baseline) if baseline else (0.0 if drop <= 0 else float("inf"))
    return drop


def _main_metric(stage: CompressStage, results: dict[str, float], name: str) -> str:
    """The budget's metric (resolved with its direction when the spec was validated), checked against what was reported."""
    assert stage.max_drop is not None and stage.max_drop.metric is not None
    if stage.max_drop.metric not in results:  # a metric that declares nothing may still not report it
        raise HoneError(f"stage '{name}': max_drop.metric '{stage.max_drop.metric}' is not reported; "
                        f"available: {', '.join(sorted(results))}")
    return stage.max_drop.metric


def _budget_search(ctx: Any, index: int, stage: Any, core: torch.nn.Module, context: CompressionContext,
                   metrics: list[tuple[str, Any]]) -> tuple[torch.nn.Module, dict[str, Any], Any, dict[str, Any], dict[str, Any]]:
    """Try the candidates strongest first; keep the first within budget, or refuse naming the best point tried."""
    name, split, budget = ctx.stage_names[index], stage.budget_split, stage.max_drop
    if not ctx.features.get(split):
        raise HoneError(f"stage '{name}': max_drop needs a '{split}' split to measure the drop on")
    baseline_results = evaluate_model(ctx, core, split, metrics, stage.batch_size)
    metric = _main_metric(stage, scalars(baseline_results), name)
    baseline = scalars(baseline_results)[metric]
    param = stage.search.param if stage.search else None
    candidates = stage.search.candidates if stage.search else [None]
    tried: list[dict[str, Any]] = []
    sentences = len(ctx.features[split])
    for candidate in candidates:
        params = {**stage.compressor.settings(), **({param: candidate} if param else {})}
        model, changes, recipe = apply_compressor(ctx, stage.compressor.name, params, copy.deepcopy(core), context)
        start = time.perf_counter()
        results = evaluate_model(ctx, model, split, metrics, stage.batch_size)
        seconds = time.perf_counter() - start
        value = scalars(results)[metric]
        drop = _drop(stage, baseline, value)
        point = {
            **({param: candidate} if param else {}), metric: value, "drop": drop, "within_budget": drop <= budget.value + 1e-12,
            **{k: v for k, v in model_report(model, layers=False).items() if k in ("parameters", "nonzero", "size_bytes")},
            "sentences_per_s": round(sentences / max(seconds, 1e-9), 2),
        }
        tried.append(point)
        ctx.events.emit("compression_point", stage=name, compressor=stage.compressor.name, **point)
        if point["within_budget"]:
            record = {"metric": metric, "mode": budget.mode, "split": split, "baseline": baseline,
                      "max_drop": budget.value, "relative": budget.relative, "tried": tried,
                      "chosen": candidate if param else params}
            return model, changes, recipe, record, results
        del model
    best = min(tried, key=lambda p: p["drop"])
    setting = f"{param}={best[param]}" if param else f"{stage.compressor.name} {stage.compressor.settings() or ''}".strip()
    kind = "relative drop" if budget.relative else "drop"
    raise BudgetError(
        f"stage '{name}': no setting of compressor '{stage.compressor.name}' keeps {metric} within max_drop {budget.value} "
        f"({kind}) of the uncompressed model's {baseline:.4f} on '{split}'; tried {len(tried)} "
        f"({', '.join(f'{param}={p[param]}: {p[metric]:.4f}' if param else f'{p[metric]:.4f}' for p in tried)}); "
        f"the best, {setting}, gives {metric} {best[metric]:.4f} ({kind} {best['drop']:.4f}). "
        "No model was saved: allow a larger max_drop or add weaker candidates."
    )


class Compress:
    def __init__(self, spec: CompressStage) -> None:
        self.spec = spec

    def check(self, ctx: RunContext, index: int) -> None:
        check_metric_labels(ctx, index, self.spec.metrics)

    def run(self, ctx: RunContext, index: int, resume: dict[str, Any] | None = None) -> dict[str, Any]:
        return compress_stage(ctx, index, self.spec)


def compress_stage(ctx: RunContext, index: int, stage: CompressStage) -> dict[str, Any]:
    """Run one compress stage; the compressed model becomes the run's model."""
    name = ctx.stage_names[index]
    if ctx.world_size > 1:
        raise HoneError(f"stage '{name}': compress stages run in a single process (no data-parallel launch)")
    core = ctx.model
    ctx.events.emit("stage_start", stage=name, type="compress", compressor=stage.compressor.name)
    metrics = ctx.metrics(stage.metrics)
    context = compression_context(ctx, index, stage.budget_split, metrics, stage.batch_size)
    previous_steps = compression_steps(core)
    before = model_report(core, layers=False)
    latency = {"before": latency_ms(ctx, core, stage.budget_split)}  # wall-clock: in the event, not in metrics.json
    result: dict[str, Any] = {"compressor": stage.compressor.name}
    if stage.max_drop is None:
        params = stage.compressor.settings()
        model, changes, recipe = apply_compressor(ctx, stage.compressor.name, params, core, context)
    else:
        model, changes, recipe, budget, validation = _budget_search(ctx, index, stage, core, context, metrics)
        params = {**stage.compressor.settings(), **({stage.search.param: budget["chosen"]} if stage.search else {})}
        result.update(budget=budget, validation=validation)
    setattr(model, STEPS_ATTRIBUTE, [*previous_steps, {"stage": name, "compressor": stage.compressor.name,
                                                        "params": params, "recipe": recipe}])
    ctx.model = model
    after = model_report(model)
    latency["after"] = latency_ms(ctx, model, stage.budget_split)
    result.update(params=params, before=before, after=after, changes=changes)
    ctx.events.emit("compression_done", stage=name, compressor=stage.compressor.name, params=params, changes=changes,
                    before={**before, "latency_ms": latency["before"]},
                    after={**{k: v for k, v in after.items() if k != "layer_sparsity"}, "latency_ms": latency["after"]})
    return result
