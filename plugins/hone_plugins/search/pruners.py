"""Search pruners: they stop a trial early when its per-epoch validation results fall behind (Optuna's pruners)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from hone.registry import Params


class MedianParams(Params):
    startup_trials: int = Field(3, ge=0, description="Finished trials before any trial is pruned.")
    warmup_evals: int = Field(0, ge=0, description="Evaluations a trial gets before it may be pruned.")


class PercentileParams(MedianParams):
    percentile: float = Field(25.0, gt=0, lt=100, description="Prune a trial below this percentile of the others at the same epoch.")


class HyperbandParams(Params):
    min_evals: int = Field(1, ge=1, description="Evaluations every trial gets (min_resource).")
    reduction_factor: int = Field(3, ge=2, description="1/reduction_factor of the trials go on at each rung.")


class SuccessiveHalvingParams(Params):
    min_evals: int = Field(1, ge=1, description="Evaluations before the first rung (min_resource).")
    reduction_factor: int = Field(4, ge=2, description="1/reduction_factor of the trials go on at each rung.")


def no_pruner(params: Params) -> Any:
    """Every trial runs to the end."""
    import optuna

    return optuna.pruners.NopPruner()


def median(params: MedianParams) -> Any:
    """Stop a trial whose value is below the median of earlier trials at the same epoch."""
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=params.startup_trials, n_warmup_steps=params.warmup_evals)


def percentile(params: PercentileParams) -> Any:
    """Stop a trial below a percentile of earlier trials at the same epoch."""
    import optuna

    return optuna.pruners.PercentilePruner(params.percentile, n_startup_trials=params.startup_trials,
                                           n_warmup_steps=params.warmup_evals)


def hyperband(params: HyperbandParams) -> Any:
    """Hyperband: successive halving over several brackets of budgets."""
    import optuna

    return optuna.pruners.HyperbandPruner(min_resource=params.min_evals, reduction_factor=params.reduction_factor)


def successive_halving(params: SuccessiveHalvingParams) -> Any:
    """Successive halving (ASHA): only the best 1/reduction_factor of trials go on at each rung."""
    import optuna

    return optuna.pruners.SuccessiveHalvingPruner(min_resource=params.min_evals, reduction_factor=params.reduction_factor)
