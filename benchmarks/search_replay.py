"""Replay a searcher over a measured grid: the outcome of many searcher seeds at no training cost.

Every trial trains with the spec's seed, so a point of the space always scores the same, with the same
per-epoch values. Once the grid has run every point, any searcher over the same space can be replayed:
hone's own sampler and pruner (built from the spec, as `hone search` builds them) propose points, and the
grid's measurements answer them. A pruned trial costs the grid's seconds up to the evaluation that pruned
it; a repeated point (finished or pruned) costs nothing and does not use up the budget, as in `hone search`.

Run on its own, it replays other searcher and pruner settings over the grid measured by `search.py --out DIR`:

    ../.venv/bin/python search_replay.py DIR --searcher '{"name": "tpe", "multivariate": true}' --pruner hyperband
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common import events, table

if TYPE_CHECKING:
    from hone.plugins import PluginHost
    from hone.spec.models import RunSpec


def first_value(trial: dict[str, Any]) -> float | None:
    """A ``trials.json`` entry's (first) objective value; None for a trial without one (pruned, failed)."""
    return next(iter((trial.get("values") or {}).values()), None)


@dataclass(frozen=True)
class Point:
    """One measured grid point: its final value, its per-epoch values and the seconds spent up to each of them."""

    value: float
    intermediate: list[float]
    seconds_to: list[float]  # seconds from the trial's start to each evaluation; the last is the whole trial

    @classmethod
    def from_trial(cls, trial: dict[str, Any], run_dir: Path) -> Point:
        timeline = events(run_dir)
        start, end = timeline[0]["time"], timeline[-1]["time"]
        overhead = trial["duration_s"] - (end - start)  # before the run's first event: imports, model loading
        evaluations = [e["time"] - start + overhead for e in timeline if e["event"] == "evaluation_done" and "epoch" in e]
        intermediate = [trial["intermediate"][str(step)] for step in range(len(trial["intermediate"]))]
        value = first_value(trial)
        assert value is not None, f"trial {trial['number']} has no value"
        return cls(value, intermediate, evaluations[:-1] + [trial["duration_s"]])


def measured(search_dir: Path) -> dict[tuple[Any, ...], Point]:
    """The grid's points by their parameter values (in the space's order)."""
    points = {}
    for trial in json.loads((search_dir / "trials.json").read_text()):
        if trial["state"] != "complete":
            raise SystemExit(f"grid trial {trial['number']} is {trial['state']}: replays need every point measured")
        points[tuple(trial["params"].values())] = Point.from_trial(trial, search_dir / "trials" / str(trial["number"]))
    return points


@dataclass(frozen=True)
class Replayed:
    """One replayed trial, as `hone search` would have run it."""

    params: tuple[Any, ...]
    state: str  # complete, pruned or duplicate
    value: float | None
    seconds: float


def replay(spec: RunSpec, host: PluginHost, seed: int, points: dict[tuple[Any, ...], Point]) -> list[Replayed]:
    """The trials the spec's searcher and pruner run with searcher seed ``seed``, answered from ``points``."""
    import optuna

    from hone_plugins.search.study import make_sampler

    assert spec.search is not None and spec.search.trials is not None
    search = spec.search.model_copy(update={"seed": seed})
    spec = spec.model_copy(update={"search": search})
    space = search.parsed_space()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=search.objectives[0].goal, sampler=make_sampler(spec, host, space),
                                pruner=host.build("pruner", search.pruner))
    trials: list[Replayed] = []

    def objective(trial: optuna.Trial) -> float:
        space.suggest(trial)
        params, point = tuple(trial.params.values()), points[tuple(trial.params.values())]
        finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        original = next((t for t in study.get_trials(deepcopy=False, states=finished) if t.params == trial.params), None)
        if original is not None:  # as `hone search`: free, and a pruned point is pruned again at the same values
            if original.state == optuna.trial.TrialState.PRUNED:
                for step, value in original.intermediate_values.items():
                    trial.report(value, step)
                trials.append(Replayed(params, "duplicate", None, 0.0))
                raise optuna.TrialPruned()
            trials.append(Replayed(params, "duplicate", point.value, 0.0))
            return point.value
        for step, value in enumerate(point.intermediate):
            trial.report(value, step)
            if trial.should_prune():
                trials.append(Replayed(params, "pruned", None, point.seconds_to[step]))
                raise optuna.TrialPruned()
        trials.append(Replayed(params, "complete", point.value, point.seconds_to[-1]))
        return point.value

    runs = repeats = 0  # as `hone search`: a repeat does not use up the budget; a searcher that only repeats stops
    while runs < search.trials and repeats < search.max_repeats:
        study.optimize(objective, n_trials=1)
        repeats = repeats + 1 if trials[-1].state == "duplicate" else 0
        runs += trials[-1].state != "duplicate"
    return trials


def recorded(search_dir: Path) -> list[Replayed]:
    """The trials a real ``hone search`` ran, in order, in the replay's terms."""
    trials = sorted(json.loads((search_dir / "trials.json").read_text()), key=lambda t: t["number"])
    return [Replayed(tuple(t["params"].values()), "duplicate" if "duplicate of" in t["note"] else t["state"],
                     first_value(t), t.get("duration_s") or 0.0) for t in trials]


def seconds_to_reach(trials: list[Replayed], target: float) -> float | None:
    """Seconds spent, in trial order, until the first complete trial at or above ``target``; None: never."""
    spent = 0.0
    for trial in trials:
        spent += trial.seconds
        if trial.state != "pruned" and trial.value is not None and trial.value >= target:
            return spent
    return None


@dataclass(frozen=True)
class Rates:
    """A searcher's outcomes over many replayed searcher seeds."""

    reach: float  # share of seeds that reach the first target at all
    met: list[float]  # share of seeds that reach each target within the budget
    to_reach: float | None  # median seconds to reach the first target, over the seeds that do; None: none does
    compute: float  # median seconds spent in all


def replay_rates(spec: RunSpec, host: PluginHost, points: dict[tuple[Any, ...], Point], targets: list[float],
                 budget: float, seeds: int) -> Rates:
    """Replays with searcher seeds 0 to ``seeds`` - 1, summed up against ``targets`` and the ``budget`` in seconds."""
    outcomes = [replay(spec, host, seed, points) for seed in range(seeds)]
    reached = [[seconds_to_reach(trials, target) for target in targets] for trials in outcomes]
    found = [seconds[0] for seconds in reached if seconds[0] is not None]
    met = [sum(seconds[i] is not None and seconds[i] <= budget for seconds in reached) / seeds
           for i in range(len(targets))]
    return Rates(len(found) / seeds, met, statistics.median(found) if found else None,
                 statistics.median(sum(t.seconds for t in trials) for trials in outcomes))


def percent(share: float) -> str:
    return f"{100 * share:.0f}%"


def better_half_in_random_order(points: dict[tuple[Any, ...], Point], target: float, budget: float,
                                draws: int = 100_000, seed: int = 0) -> float:
    """How often a searcher told in advance which half of the points scores higher, and nothing else, reaches
    ``target`` within ``budget`` seconds: it trains those points fully, in a random order (a reference for any
    searcher that cannot tell the better half's points apart)."""
    import random

    ranked = sorted(points.values(), key=lambda point: point.value, reverse=True)
    better = ranked[: len(ranked) // 2]
    rng, met = random.Random(seed), 0
    for _ in range(draws):
        spent = 0.0
        for point in rng.sample(better, len(better)):
            spent += point.seconds_to[-1]
            if point.value >= target:
                met += spent <= budget
                break
    return met / draws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="a `search.py --out` folder whose grid has finished")
    parser.add_argument("--searcher", action="append", default=[], metavar="JSON",
                        help="a search.searcher section, e.g. random or '{\"name\": \"tpe\", \"startup_trials\": 2}' "
                        "(repeatable; default: the benchmark's tpe)")
    parser.add_argument("--pruner", action="append", default=[], metavar="JSON",
                        help="a search.pruner section, e.g. none, median or hyperband "
                        "(repeatable; default: the benchmark's)")
    parser.add_argument("--replays", type=int, default=100, help="searcher seeds 0 to N-1")
    parser.add_argument("--tolerance", type=float, default=0.2,
                        help="points below the grid's best that count as reaching it")
    args = parser.parse_args()
    import yaml

    from hone.spec.loading import load_spec

    grid = json.loads((args.out / "grid" / "search" / "search.json").read_text())
    target, budget = grid["best"]["value"] - args.tolerance / 100, 0.3 * grid["compute_s"]
    points = measured(args.out / "grid" / "search")
    base = yaml.safe_load((args.out / "replay" / "tpe.yaml").read_text())  # written by search.py: the benchmark's spec
    searchers = [yaml.safe_load(text) for text in args.searcher] or [base["search"]["searcher"]]
    pruners = [yaml.safe_load(text) for text in args.pruner] or [base["search"]["pruner"]]
    rows = []
    for searcher in searchers:
        for pruner in pruners:
            spec_file = args.out / "replay" / "variant.yaml"
            variant = {**base["search"], "searcher": searcher, "pruner": pruner}
            spec_file.write_text(yaml.safe_dump({**base, "search": variant}, sort_keys=False))
            spec, host = load_spec(spec_file)
            rates = replay_rates(spec, host, points, [target], budget, args.replays)
            rows.append([json.dumps(searcher), json.dumps(pruner), percent(rates.reach), percent(rates.met[0]),
                         percent(rates.compute / grid["compute_s"])])
    print(f"Replays over {args.out / 'grid'}, searcher seeds 0-{args.replays - 1}, "
          f"within {args.tolerance:g} pt of the grid's best:")
    print(table(["searcher", "pruner", "reach", "in <= 30% of grid compute", "median compute vs grid"], rows))


if __name__ == "__main__":
    main()
