"""Objective values from a run's metrics.json, and per-epoch reports that let a pruner stop a trial."""

from __future__ import annotations

import pytest

from hone_plugins.search.objectives import ObjectiveError, objective_value
from hone_plugins.search.study import TrialPrunedError, TrialReporter

RESULTS = {
    "all": {"validation": {"loss": 0.9, "accuracy": 0.7}, "steps": 12},
    "prune": {"params": {"sparsity": 0.5}, "after": {"sparsity": 0.48, "nonzero": 1000}},
    "test": {"test": {"entity_f1": 0.61, "entity_report": {"PER": {"f1": 0.8}}}},
}
STAGES = ["all", "prune", "test"]


@pytest.mark.parametrize(("metric", "value"), [
    ("test.entity_f1", 0.61),  # found inside the stage's split
    ("test.test.entity_f1", 0.61),
    ("all.accuracy", 0.7),
    ("all.steps", 12.0),
    ("prune.after.nonzero", 1000.0),
    ("prune.nonzero", 1000.0),
    ("validation.loss", 0.9),  # the last validation result
])
def test_objectives_find_their_value(metric: str, value: float) -> None:
    assert objective_value(RESULTS, metric, STAGES) == value


@pytest.mark.parametrize(("metric", "message"), [
    ("prune.sparsity", "ambiguous: write one of prune.params.sparsity, prune.after.sparsity"),
    ("test.accuracy", "not in stage 'test''s results; available: test.test.entity_f1"),
    ("validation.f1", "no stage reported validation 'f1'"),
    ("train.loss", "names no stage"),
])
def test_missing_or_ambiguous_objectives_say_what_exists(metric: str, message: str) -> None:
    with pytest.raises(ObjectiveError, match=message.replace("(", r"\(").replace(")", r"\)")):
        objective_value(RESULTS, metric, STAGES)


def test_reporter_feeds_epochs_to_the_pruner_and_stops_a_bad_trial() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    good = study.ask()
    reporter = TrialReporter(good, "loss")
    for loss in (1.0, 0.5):
        reporter.on_evaluation_done("evaluation_done", {"stage": "all", "epoch": 1, "metrics": {"loss": loss}})
    reporter.on_evaluation_done("evaluation_done", {"stage": "test", "metrics": {"loss": 9.0}})  # not an epoch: ignored
    study.tell(good, 0.5)
    assert study.trials[0].intermediate_values == {0: 1.0, 1: 0.5}
    bad = study.ask()
    with pytest.raises(TrialPrunedError, match="pruned after 1 evaluation"):
        TrialReporter(bad, "loss").on_evaluation_done("evaluation_done", {"stage": "all", "epoch": 1, "metrics": {"loss": 2.0}})
