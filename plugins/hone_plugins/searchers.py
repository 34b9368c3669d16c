"""Built-in searchers, on Optuna's samplers: grid, random, tpe and nsga2 (multi-objective)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from hone.hookspecs import hookimpl
from hone.registry import NoParams, Register

if TYPE_CHECKING:
    from hone_plugins.search.space import SearchSpace


class TpeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    startup_trials: int = Field(10, ge=0, description="Random trials before TPE models the results.")
    candidates: int = Field(24, ge=1, description="Candidates drawn to pick each point from (n_ei_candidates).")
    multivariate: bool = Field(False, description="Model parameters jointly instead of one by one.")


class Nsga2Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    population_size: int = Field(10, ge=2, description="Trials per generation.")
    crossover_prob: float = Field(0.9, ge=0, le=1, description="Probability of crossing two parents over.")
    mutation_prob: float | None = Field(None, ge=0, le=1, description="Per-parameter mutation probability; default 1/parameters.")


def grid(params: NoParams, seed: int, space: SearchSpace) -> Any:
    """Every combination of the space's values (lists, int ranges, ranges with a step), in seeded order."""
    from optuna.samplers import GridSampler

    return GridSampler(space.grid(), seed=seed)


def random(params: NoParams, seed: int) -> Any:
    """Independent uniform draws from the space."""
    from optuna.samplers import RandomSampler

    return RandomSampler(seed=seed)


def tpe(params: TpeParams, seed: int) -> Any:
    """Tree-structured Parzen estimator: random at first, then where good results were."""
    from optuna.samplers import TPESampler

    return TPESampler(n_startup_trials=params.startup_trials, n_ei_candidates=params.candidates,
                      multivariate=params.multivariate, seed=seed)


def nsga2(params: Nsga2Params, seed: int) -> Any:
    """NSGA-II genetic search for a Pareto front of several objectives."""
    from optuna.samplers import NSGAIISampler

    return NSGAIISampler(population_size=params.population_size, crossover_prob=params.crossover_prob,
                         mutation_prob=params.mutation_prob, seed=seed)


@hookimpl
def register_searchers(register: Register) -> None:
    register("grid", grid)
    register("random", random)
    register("tpe", tpe, TpeParams)
    register("nsga2", nsga2, Nsga2Params, aliases=("nsga-ii",))
