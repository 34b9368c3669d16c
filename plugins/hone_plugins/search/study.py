"""The Optuna side of a search: storage, study, trial bookkeeping (owners, retries, budget) and the worker loop."""

from __future__ import annotations

import inspect
import json
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hone.errors import HoneError, Interrupted
from hone_plugins.search.objectives import ObjectiveError, leaf, objective_value
from hone_plugins.search.recovery import (INTERRUPTED, OWNER, RETRY_OF, owner, recover, retry,  # noqa: F401 (the search's API)
                                          running_elsewhere)
from hone.plugins import PluginHost
from hone_plugins.search.space import SearchSpace, apply
from hone.spec.models import RunSpec
from hone.spec.loading import validate_spec

# user attributes hone keeps on each trial (owner, retry_of and interrupted: hone_plugins.search.recovery)
SURPLUS = "surplus"
DUPLICATE_OF, SPEC, RUN_DIR, ERROR, PRUNED_AT = "duplicate_of", "spec", "run_dir", "error", "pruned_at"
HEARTBEAT_S, GRACE_S = 30, 120  # a trial on another machine whose heartbeat is older than GRACE_S is failed and retried
DUPLICATE_POLL_S = 2.0


class TrialPrunedError(HoneError):
    """The pruner stopped this trial (raised from the run listener, so the run ends cleanly)."""


class _Surplus(Exception):
    """Other workers reached the trial budget while this trial was being created."""


class _TrialFailed(Exception):
    """The trial's run failed; the message is kept on the trial."""


@dataclass
class Search:
    """What every worker of one search shares."""

    spec: RunSpec
    host: PluginHost
    space: SearchSpace
    base: dict[str, Any]  # the spec each trial starts from
    search_dir: Path
    storage_url: str
    study_name: str
    quiet: bool = False

    @property
    def directions(self) -> list[str]:
        assert self.spec.search is not None
        return [o.goal for o in self.spec.search.objectives]

    @property
    def local(self) -> bool:
        """An SQLite study: every trial of it runs on this machine."""
        return self.storage_url.startswith("sqlite")


def make_sampler(spec: RunSpec, host: PluginHost, space: SearchSpace) -> Any:
    """The searcher plugin's Optuna sampler; factories that take a ``space`` keyword get the parsed space."""
    assert spec.search is not None
    ref = spec.search.searcher
    seed = spec.seed if spec.search.seed is None else spec.search.seed
    factory = host.registries.get("searcher", ref.name).factory
    kwargs = {"space": space} if "space" in inspect.signature(factory).parameters else {}
    return host.build("searcher", ref, seed, **kwargs)




def make_storage(url: str) -> Any:
    import optuna

    if url.startswith("sqlite"):  # waits for the write lock instead of failing with 'database is locked'
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 120}})
    with warnings.catch_warnings():  # heartbeats are marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                                          heartbeat_stale_trial_callback=retry)


def open_study(search: Search, sampler: Any = None, pruner: Any = None, attempts: int = 6) -> Any:
    """Create the study or load it; retried, since processes on other machines may be creating it at the same moment."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for attempt in range(attempts):
        try:
            study = optuna.create_study(storage=make_storage(search.storage_url), study_name=search.study_name, sampler=sampler,
                                        pruner=pruner, directions=search.directions, load_if_exists=True)
            break
        except Exception as error:  # a table or the study created by another process in between
            if attempt == attempts - 1:
                raise HoneError(f"cannot open the study '{search.study_name}' in {masked(search.storage_url)}: "
                                f"{type(error).__name__}: {error}") from None
            time.sleep(0.2 + random.random() * (attempt + 1))
    directions = [d.name.lower() for d in study.directions]
    if directions != search.directions:
        raise HoneError(f"study '{search.study_name}' in {masked(search.storage_url)} optimises {directions}, but the spec's "
                        f"objectives are {search.directions}: use another study name (search.study) or storage")
    return study


def masked(url: str) -> str:
    """A storage URL without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def counted(trials: Sequence[Any], waiting: bool = True) -> list[Any]:
    """The trials that use up the budget: finished, running and queued; not repeats, interruptions being retried, nor surplus."""
    from optuna.trial import TrialState

    retried = {t.user_attrs.get(RETRY_OF) for t in trials}
    out = []
    for t in trials:
        if t.user_attrs.get(SURPLUS) or DUPLICATE_OF in t.user_attrs or (t.state == TrialState.WAITING and not waiting):
            continue
        if t.state == TrialState.FAIL and (t.user_attrs.get(INTERRUPTED) or t.number in retried):
            continue
        out.append(t)
    return out


class TrialReporter:
    """A run listener: reports each per-epoch validation value to the trial, and stops the run if the pruner says so."""

    def __init__(self, trial: Any, metric: str | None) -> None:
        self.trial, self.metric, self.step = trial, metric, 0

    def on_evaluation_done(self, event: str, data: dict[str, Any]) -> None:
        value = data.get("metrics", {}).get(self.metric)
        if "epoch" not in data or value is None:  # evaluate stages report once, after training: not a learning curve
            return
        self.trial.report(float(value), self.step)
        self.step += 1
        if self.trial.should_prune():
            self.trial.set_user_attr(PRUNED_AT, self.step)
            raise TrialPrunedError(f"trial {self.trial.number} pruned after {self.step} evaluation(s): {self.metric} {value:.4g}")


class Objective:
    """One trial: sample, build the spec, run it into ``trials/<number>/``, read the objectives from its metrics."""

    def __init__(self, search: Search, study: Any, budget: int | None, say: Callable[[str], None]) -> None:
        self.search, self.study, self.budget, self.say = search, study, budget, say
        self.outcome, self.error = "", ""

    def __call__(self, trial: Any) -> float | list[float]:
        import optuna

        trial.set_user_attr(OWNER, owner(self.search.search_dir))
        trials = self.study.get_trials(deepcopy=False)
        if self.budget is not None and sum(t.number < trial.number for t in counted(trials)) >= self.budget:
            trial.set_user_attr(SURPLUS, True)
            self.outcome = "surplus"
            raise _Surplus()
        settings = self.search.space.suggest(trial)
        data = apply(self.search.base, settings)
        data["name"] = f"{self.search.base['name']}-trial{trial.number}"
        trial.set_user_attr(SPEC, data)
        original = self._duplicate(trial)
        if original is not None:
            trial.set_user_attr(DUPLICATE_OF, original.number)
            trial.set_user_attr(RUN_DIR, original.user_attrs.get(RUN_DIR))
            self.outcome = "duplicate"
            if original.state == optuna.trial.TrialState.PRUNED:  # training is seeded: it would stop at the same values
                for step, value in original.intermediate_values.items():
                    trial.report(value, step)
                self._say(trial, "duplicate", None, 0.0, f" (same parameters as trial {original.number}, pruned)")
                raise optuna.TrialPruned(f"same parameters as trial {original.number}, pruned")
            self._say(trial, "duplicate", original.values, 0.0, f" (same parameters as trial {original.number})")
            return original.values[0] if len(original.values) == 1 else list(original.values)
        run_dir = self.search.search_dir / "trials" / str(trial.number)
        trial.set_user_attr(RUN_DIR, str(run_dir))
        start = time.perf_counter()
        try:
            values = self._run(trial, data, run_dir)
        except TrialPrunedError as error:
            self._say(trial, "pruned", None, time.perf_counter() - start, f": {error}")
            self.outcome = "pruned"
            raise optuna.TrialPruned(str(error)) from None
        except (Interrupted, KeyboardInterrupt):
            trial.set_user_attr(INTERRUPTED, True)
            self.outcome = "interrupted"
            raise KeyboardInterrupt from None
        except Exception as error:
            message = str(error) if isinstance(error, HoneError) else f"{type(error).__name__}: {error}"
            trial.set_user_attr(ERROR, message)
            self.error = message
            self._say(trial, "failed", None, time.perf_counter() - start, f": {message}")
            self.outcome = "failed"
            raise _TrialFailed(message) from None
        self._say(trial, "complete", values, time.perf_counter() - start, "")
        self.outcome = "complete"
        return values[0] if len(values) == 1 else values

    def _run(self, trial: Any, data: dict[str, Any], run_dir: Path) -> list[float]:
        from hone.run.runner import run

        assert self.search.spec.search is not None
        objectives = self.search.spec.search.objectives
        spec = validate_spec(data, self.search.host.registries, f"trial {trial.number}")
        reporter = TrialReporter(trial, leaf(objectives[0].metric) if len(objectives) == 1 else None)
        run(spec, self.search.host, out=run_dir, callbacks=[("search", reporter)])
        results = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        try:
            return [objective_value(results, o.metric, spec.stage_names()) for o in objectives]
        except ObjectiveError as error:
            raise HoneError(str(error)) from None

    def _duplicate(self, trial: Any) -> Any:
        """A finished or pruned trial with the same parameters, waiting for an earlier running one: a repeat costs nothing."""
        from optuna.trial import TrialState

        while True:
            same = [t for t in self.study.get_trials(deepcopy=False) if t.number != trial.number and t.params == trial.params]
            done = [t for t in same if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
            if done:
                return done[0]
            if not any(t.state == TrialState.RUNNING and t.number < trial.number and running_elsewhere(t) for t in same):
                return None  # (a trial whose process died is not waited for: it is failed and retried)
            time.sleep(DUPLICATE_POLL_S)

    def _say(self, trial: Any, state: str, values: Sequence[float] | None, seconds: float, detail: str) -> None:
        assert self.search.spec.search is not None
        shown = ""
        if values is not None:
            shown = " " + ", ".join(f"{o.metric} {v:.4f}" for o, v in zip(self.search.spec.search.objectives, values))
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
        self.say(f"trial {trial.number} {state}{shown} ({seconds:.1f} s) [{params}]{detail}")


def work(search: Search, index: int = 0, on_trial_end: Callable[[Any], None] = lambda study: None,
         say: Callable[[str], None] = print, max_failures: int = 3) -> Any:
    """Run trials until the budget, the timeout or the grid is used up, or the searcher only repeats; return the study."""
    from optuna.trial import TrialState

    assert search.spec.search is not None
    config = search.spec.search
    sampler = make_sampler(search.spec, search.host, search.space)
    study = open_study(search, sampler, search.host.build("pruner", config.pruner))
    if index > 0 or not search.local or study.get_trials(deepcopy=False):
        # same seed, same proposals: other workers, a restarted search and every machine of a shared study (two that
        # start together each see it empty) draw afresh (a grid keeps its seeded order)
        sampler.reseed_rng()
    deadline = time.monotonic() + config.timeout if config.timeout else None
    objective = Objective(search, study, config.trials, say)
    failures = repeats = 0
    while True:
        trials = study.get_trials(deepcopy=False)
        if config.trials is not None and len(counted(trials, waiting=False)) >= config.trials:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        exhausted = getattr(study.sampler, "is_exhausted", None)
        if callable(exhausted) and exhausted(study) and not any(t.state == TrialState.WAITING for t in trials):
            break
        if repeats >= config.max_repeats:
            say(f"the searcher proposed only points already run, {repeats} times in a row: stopping "
                f"(search.max_repeats)")
            break
        study.optimize(objective, n_trials=1, catch=(_Surplus, _TrialFailed), gc_after_trial=True)
        on_trial_end(study)
        repeats = repeats + 1 if objective.outcome == "duplicate" else 0
        failures = failures + 1 if objective.outcome == "failed" else 0
        if failures >= max_failures:
            raise HoneError(f"{failures} trials in a row failed; the last: {objective.error}")
    return study
