"""`hone search` end to end on the tiny model: searchers, results, duplicates, pruning, Pareto fronts."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hone.run.runner import run
from hone_plugins.search.command import search_command
from hone.spec.loading import load_spec

LR = "stages[0].optimizer.lr"


def _rows(search_dir: Path) -> list[dict[str, str]]:
    with (search_dir / "trials.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("searcher", ["grid", "random", "tpe"])
def test_searchers_run_trials_and_write_plain_results(searcher: str, spec_file: Any, tmp_path: Path) -> None:
    space = {LR: [3e-3, 1e-3]} if searcher == "grid" else {LR: {"loguniform": [1e-4, 1e-2]}}
    config = {"searcher": searcher, "objectives": "test.accuracy", "space": space}
    if searcher != "grid":
        config["trials"] = 2  # a grid stops by itself once every point ran
    out = tmp_path / "search"
    summary = search_command(spec_file(config), out, quiet=True)
    assert summary is not None and summary["status"] == "completed"
    assert summary["trials"]["complete"] == 2 and summary["counted"] == 2
    rows = _rows(out)
    assert [r["number"] for r in rows] == ["0", "1"] and all(r["state"] == "complete" for r in rows)
    assert {"test.accuracy", LR, "duration_s", "run_dir"} <= set(rows[0])
    best = summary["best"]
    assert best["value"] == max(float(r["test.accuracy"]) for r in rows)
    assert json.loads((out / "search.json").read_text())["best"]["number"] == best["number"]
    assert "objectives" in json.loads((out / "importances.json").read_text())
    assert len(json.loads((out / "trials.json").read_text())) == 2
    for row in rows:  # checkpoints go once a trial ends; only the best trial keeps its model
        trial_dir = Path(row["run_dir"])
        assert not (trial_dir / "checkpoints").exists()
        assert (trial_dir / "model").exists() == (row["number"] == str(best["number"]))
    spec, _ = load_spec(out / "best.yaml")
    assert spec.search is None and spec.stages[0].optimizer.params.lr == best["params"][LR]


def test_best_spec_reproduces_the_best_trial_with_hone_run(spec_file: Any, tmp_path: Path) -> None:
    out = tmp_path / "search"
    summary = search_command(spec_file({"searcher": "grid", "objectives": "test.accuracy", "space": {LR: [3e-3]}}), out, quiet=True)
    assert summary is not None
    spec, host = load_spec(out / "best.yaml")
    run_dir = run(spec, host, out=tmp_path / "again")
    assert json.loads((run_dir / "metrics.json").read_text())["test"]["test"]["accuracy"] == summary["best"]["value"]


def test_a_repeat_reuses_the_finished_trial_and_a_search_that_only_repeats_stops(spec_file: Any, tmp_path: Path) -> None:
    out = tmp_path / "search"
    summary = search_command(spec_file({"searcher": "random", "objectives": "test.accuracy", "trials": 3, "max_repeats": 2,
                                        "space": {"stages[0].batch_size": [8]}}), out, quiet=True)
    assert summary is not None and summary["duplicates"] == 2 and summary["counted"] == 1
    rows = _rows(out)
    assert [r["note"] for r in rows] == ["", "duplicate of 0", "duplicate of 0"]
    assert len({r["test.accuracy"] for r in rows}) == 1
    assert not (out / "trials" / "1").exists() and float(rows[1]["duration_s"]) == 0.0


def test_a_repeated_point_does_not_use_up_the_trial_budget(spec_file: Any, tmp_path: Path) -> None:
    out = tmp_path / "search"
    summary = search_command(spec_file({"searcher": "random", "objectives": "test.accuracy", "trials": 2,
                                        "space": {"stages[0].batch_size": [8, 16]}}, seed=1), out, quiet=True)
    assert summary is not None and summary["counted"] == 2
    rows = _rows(out)  # seed 1 proposes batch 16 twice before 8: the repeat is free, and 8 still runs
    assert [(r["stages[0].batch_size"], r["note"]) for r in rows] == [("16", ""), ("16", "duplicate of 0"), ("8", "")]


def test_a_search_over_the_seed_trains_each_trial_with_its_seed(spec_file: Any, tmp_path: Path) -> None:
    out = tmp_path / "search"  # how the README measures a score's seed noise: one point, several training seeds
    summary = search_command(spec_file({"searcher": "grid", "objectives": "test.accuracy", "space": {"seed": [1, 2]}}),
                             out, quiet=True)
    assert summary is not None and summary["counted"] == 2
    for row in _rows(out):
        trial_spec = yaml.safe_load((Path(row["run_dir"]) / "spec.yaml").read_text())
        assert trial_spec["seed"] == int(row["seed"]) and trial_spec["search"] is None
    assert yaml.safe_load((out / "best.yaml").read_text())["seed"] == summary["best"]["params"]["seed"]


@pytest.mark.slow
def test_median_pruner_stops_bad_trials_after_their_first_evaluation(spec_file: Any, tmp_path: Path) -> None:
    spec = spec_file({"searcher": "grid", "objectives": "validation.loss", "pruner": {"name": "median", "startup_trials": 1},
                      "space": {LR: [1e-2, 1e-9, 2e-9]}}, seed=1)  # seed 1: the grid runs lr 1e-2 first
    out = tmp_path / "search"
    data = yaml.safe_load(spec.read_text())
    data["stages"][0]["epochs"] = 3
    spec.write_text(yaml.safe_dump(data))
    summary = search_command(spec, out, quiet=True)
    assert summary is not None
    rows = _rows(out)
    assert float(rows[0][LR]) == 1e-2 and rows[0]["state"] == "complete"
    assert [r["state"] for r in rows[1:]] == ["pruned", "pruned"]
    assert all("pruned after 1 evaluation" in r["note"] for r in rows[1:])
    trials = json.loads((out / "trials.json").read_text())
    assert len(trials[0]["intermediate"]) == 3 and len(trials[1]["intermediate"]) == 1
    assert json.loads((Path(rows[1]["run_dir"]) / "state.json").read_text())["status"] == "failed"


@pytest.mark.slow
def test_a_repeat_of_a_pruned_point_is_pruned_again_without_training(spec_file: Any, tmp_path: Path) -> None:
    spec = spec_file({"searcher": "random", "objectives": "validation.loss", "trials": 3, "max_repeats": 2,
                      "pruner": {"name": "median", "startup_trials": 1}, "space": {LR: [1e-2, 1e-9]}},
                     seed=11)  # seed 11 proposes lr 1e-2, then 1e-9 three times
    data = yaml.safe_load(spec.read_text())
    data["stages"][0]["epochs"] = 3
    spec.write_text(yaml.safe_dump(data))
    summary = search_command(spec, tmp_path / "search", quiet=True)
    assert summary is not None and summary["counted"] == 2 and summary["duplicates"] == 2
    rows = _rows(tmp_path / "search")
    assert [(float(r[LR]), r["state"]) for r in rows] == [(1e-2, "complete")] + [(1e-9, "pruned")] * 3
    assert [r["note"] for r in rows[2:]] == ["duplicate of 1", "duplicate of 1"]
    for row in rows[2:]:
        assert float(row["duration_s"]) == 0.0 and not (tmp_path / "search" / "trials" / row["number"]).exists()
    trials = json.loads((tmp_path / "search" / "trials.json").read_text())
    assert trials[2]["intermediate"] == trials[1]["intermediate"]  # the searcher sees the same learning curve


@pytest.mark.slow
def test_nsga2_finds_a_pareto_front_of_runnable_specs(spec_file: Any, tmp_path: Path) -> None:
    out = tmp_path / "search"
    config = {"searcher": {"name": "nsga2", "population_size": 2}, "trials": 3,
              "objectives": [{"metric": "test.accuracy"}, {"metric": "all.validation.loss"}],
              "space": {LR: {"loguniform": [1e-4, 1e-2]}, "stages[0].batch_size": [4, 8]}}
    summary = search_command(spec_file(config), out, quiet=True)
    assert summary is not None and summary["objectives"][1] == {"metric": "all.validation.loss", "direction": "minimize"}
    front = summary["pareto"]
    assert front and not (out / "best.yaml").exists()
    for point in front:
        spec, _ = load_spec(out / point["spec"])
        assert spec.stages[0].batch_size == point["params"]["stages[0].batch_size"]
        assert set(point["values"]) == {"test.accuracy", "all.validation.loss"}


def test_a_conditional_choice_of_optimizer(spec_file: Any, tmp_path: Path) -> None:
    out = tmp_path / "search"
    space = {"stages[0].optimizer": {"choices": {"sgd": {"lr": [0.1], "momentum": 0.9}, "adamw": {"lr": [3e-3]}}}}
    summary = search_command(spec_file({"searcher": "grid", "objectives": "test.accuracy", "space": space}), out, quiet=True)
    assert summary is not None and summary["trials"]["complete"] == 2
    specs = [yaml.safe_load(Path(r["run_dir"], "spec.yaml").read_text()) for r in _rows(out)]
    adamw, sgd = sorted((s["stages"][0]["optimizer"] for s in specs), key=lambda o: o["name"])
    # each trial's spec.yaml holds its optimizer's every parameter: the chosen values, and that plugin's own defaults
    assert adamw["lr"] == 3e-3 and adamw["betas"] == [0.9, 0.999] and "momentum" not in adamw
    assert sgd["lr"] == 0.1 and sgd["momentum"] == 0.9 and "betas" not in sgd


def test_a_changed_spec_does_not_continue_an_old_search(spec_file: Any, tmp_path: Path) -> None:
    from hone.errors import HoneError

    out = tmp_path / "search"
    config = {"searcher": "grid", "objectives": "test.accuracy", "space": {"stages[0].batch_size": [8]}}
    search_command(spec_file(config), out, quiet=True)
    config["space"] = {"stages[0].batch_size": [4]}
    with pytest.raises(HoneError, match="the spec changed since this search started"):
        search_command(spec_file(config), out, quiet=True)
    with pytest.raises(HoneError, match="nothing to resume"):
        search_command(spec_file(config), tmp_path / "other", resume=True, quiet=True)


@pytest.mark.slow
def test_multi_objective_search_over_sparsity_and_learning_rate(spec_file: Any, tmp_path: Path) -> None:
    from hone.plugins import load_plugins

    if "magnitude" not in load_plugins(warn=False).registries["compressor"]:
        pytest.skip("the `magnitude` compressor is not installed")
    out = tmp_path / "search"
    stages = [
        {"type": "train", "name": "all", "epochs": 1, "batch_size": 8, "optimizer": {"name": "adamw", "lr": 3e-3}},
        {"type": "compress", "name": "prune", "compressor": {"name": "magnitude", "sparsity": 0.5}},
        {"type": "evaluate", "name": "test", "split": "test", "metrics": ["accuracy"]},
    ]
    config = {"searcher": {"name": "nsga2", "population_size": 2}, "trials": 4,
              "objectives": ["test.accuracy", "prune.after.nonzero"],
              "space": {LR: {"loguniform": [1e-4, 1e-2]}, "stages[1].compressor.sparsity": [0.2, 0.5, 0.9]}}
    summary = search_command(spec_file(config, stages=stages), out, quiet=True)
    assert summary is not None and summary["counted"] == 4  # four trained trials; a child repeating a parent is free
    assert summary["trials"]["complete"] == 4 + summary["duplicates"]
    assert [o["direction"] for o in summary["objectives"]] == ["maximize", "minimize"]
    front = summary["pareto"]
    assert front
    for point in front:
        spec, host = load_spec(out / point["spec"])
        assert spec.stages[1].compressor.params.sparsity == point["params"]["stages[1].compressor.sparsity"]
    # a Pareto-optimal spec runs as it is and gives the trial's results again
    point = front[0]
    spec, host = load_spec(out / point["spec"])
    metrics = json.loads((run(spec, host, out=tmp_path / "again") / "metrics.json").read_text())
    assert metrics["test"]["test"]["accuracy"] == point["values"]["test.accuracy"]
    assert metrics["prune"]["after"]["nonzero"] == point["values"]["prune.after.nonzero"]


def test_hone_search_writes_the_report_when_it_ends(spec_file: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hone.cli import main

    spec = spec_file({"searcher": "grid", "objectives": "test.accuracy", "space": {LR: [3e-3, 1e-3]}})
    assert main(["search", str(spec), "--out", str(tmp_path / "search"), "-q"]) == 0
    assert f"report: {tmp_path / 'search' / 'report.html'}" in capsys.readouterr().out
    assert "optimisation history" in (tmp_path / "search" / "report.md").read_text().lower()
    assert main(["search", str(spec), "--out", str(tmp_path / "quiet"), "-q", "--no-report"]) == 0
    assert not (tmp_path / "quiet" / "report.html").exists()


def test_the_search_seed_changes_the_proposals_not_the_trials_seed(spec_file: Any) -> None:
    import optuna

    from hone_plugins.search.study import make_sampler

    def first_proposals(search_seed: int | None) -> list[float]:
        search = {"searcher": "random", "objectives": "test.accuracy", "trials": 2, "space": {LR: {"loguniform": [1e-4, 1e-2]}}}
        if search_seed is not None:
            search["seed"] = search_seed
        spec, host = load_spec(spec_file(search))
        assert spec.seed == 7  # trials train with the spec's seed whatever the search seed
        assert spec.search is not None
        study = optuna.create_study(sampler=make_sampler(spec, host, spec.search.parsed_space()))
        return [study.ask().suggest_float("x", 0.0, 1.0) for _ in range(3)]

    assert first_proposals(None) == first_proposals(7)  # the default: the spec's seed
    assert first_proposals(1) == first_proposals(1) != first_proposals(2)
