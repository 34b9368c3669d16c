"""The search space: parsing, sampling, grids, and the checks run before the first trial (path, line, message)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hone_plugins.search.command import prepare
from hone_plugins.search.space import Choice, Components, Float, Int, SearchSpace, SpaceError, apply, parse_entry, parse_path
from hone.spec.loading import SpecError

from .conftest import search_spec, write_spec


def test_paths_parse_names_and_indices() -> None:
    assert parse_path("stages[0].optimizer.lr") == ("stages", 0, "optimizer", "lr")
    assert parse_path("data.reader.name") == ("data", "reader", "name")
    for bad in ("stages[x].lr", "a..b", "", "stages[0]x"):
        with pytest.raises(SpaceError):
            parse_path(bad)


@pytest.mark.parametrize(("value", "expected"), [
    ([1, 2], Choice((1, 2))),
    ({"choice": ["a", "b"]}, Choice(("a", "b"))),
    ({"uniform": [0, 0.5]}, Float(0.0, 0.5)),
    ({"uniform": [0, 0.5], "step": 0.25}, Float(0.0, 0.5, False, 0.25)),
    ({"loguniform": [1e-5, 1e-3]}, Float(1e-5, 1e-3, True)),
    ({"int": [1, 4]}, Int(1, 4)),
    ({"int": [2, 64], "log": True}, Int(2, 64, True)),
])
def test_entries_parse(value: Any, expected: Any) -> None:
    assert parse_entry(value) == expected


@pytest.mark.parametrize(("value", "message"), [
    ({"uniform": [1, 0]}, "must be below high"),
    ({"loguniform": [0, 1]}, "log scale needs low > 0"),
    ({"int": [1, 2.5]}, "must be integers"),
    ({"uniform": [0, 1], "step": 0.3}, "multiple of step"),
    ({"uniform": [0, 1], "log": "yes"}, "true or false"),
    ({"uniform": [0, 1], "int": [0, 1]}, "exactly one of"),
    ({"uniform": [0, 1], "low": 0}, "unknown key low"),
    ({"unifrom": [0, 1]}, r"\(got unifrom\)\. Did you mean 'uniform'\?"),
    ({"loguniform": [1e-5, 1e-3], "stpe": 2}, r"unknown key stpe beside 'loguniform'\. Did you mean 'step'\?"),
    ([], "at least one value"),
    ([1, 1], "duplicate choice"),
    ("adamw", "expected a list"),
    ({"choices": []}, "maps component names"),
    ({"choices": {"sgd": {"momentum": {"choices": {"a": None}}}}}, "cannot be nested"),
])
def test_malformed_entries_say_what_is_wrong(value: Any, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        parse_entry(value)


def test_conditional_components_sample_their_own_parameters() -> None:
    import optuna

    space = SearchSpace.parse({
        "stages[0].optimizer": {"choices": {"adamw": {"lr": {"loguniform": [1e-5, 1e-3]}, "weight_decay": 0.0},
                                            "sgd": {"lr": [0.1, 0.01], "momentum": {"uniform": [0.0, 0.9]}}}},
        "stages[0].train_only": [["classifier.*"], []],
    })
    assert isinstance(space.entries["stages[0].optimizer"], Components)
    trial = optuna.trial.FixedTrial({"stages[0].optimizer": "sgd", "stages[0].optimizer:sgd.lr": 0.01,
                                     "stages[0].optimizer:sgd.momentum": 0.5, "stages[0].train_only": "[]"})
    settings = space.suggest(trial)
    assert settings == {("stages", 0, "optimizer"): {"name": "sgd", "lr": 0.01, "momentum": 0.5},
                        ("stages", 0, "train_only"): []}
    data = {"stages": [{"optimizer": {"name": "adamw", "betas": [0.9, 0.99]}, "train_only": ["x"]}]}
    assert apply(data, settings) == {"stages": [{"optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.5}, "train_only": []}]}
    assert data["stages"][0]["optimizer"]["name"] == "adamw"  # applied to a copy


def test_grid_needs_finite_values_and_names_the_continuous_ones() -> None:
    finite = SearchSpace.parse({"a": [1, 2], "b": {"int": [1, 3]}, "c": {"uniform": [0, 1], "step": 0.5},
                                "d": {"choices": {"x": {"p": [1, 2]}, "y": None}}})
    assert finite.grid() == {"a": [1, 2], "b": [1, 2, 3], "c": [0.0, 0.5, 1.0], "d": ["x", "y"], "d:x.p": [1, 2]}
    with pytest.raises(ValueError, match="lr is continuous"):
        SearchSpace.parse({"lr": {"loguniform": [1e-5, 1e-3]}, "a": [1]}).grid()


def test_corners_cover_every_choice_and_both_ends() -> None:
    space = SearchSpace.parse({"a": [1, 2, 3], "b": {"uniform": [0, 1]}})
    assert len(list(space.corners())) == 6
    assert len(list(space.corners(limit=4))) == 5  # too many combinations: one entry varied at a time


def _problems(tmp_path: Path, search: dict[str, Any], **overrides: Any) -> list[str]:
    spec_file = write_spec(tmp_path, search_spec(tmp_path / "model", search, **overrides))
    with pytest.raises(SpecError) as caught:
        prepare(spec_file)
    assert not (tmp_path / "runs").exists()  # nothing is written before the spec is right
    return [f"{issue.line}: {issue.path}: {issue.message}" for issue in caught.value.issues]


def test_malformed_space_is_reported_with_path_and_line(tmp_path: Path) -> None:
    problems = _problems(tmp_path, {"objectives": "test.accuracy", "trials": 2, "space": {
        "stages[0].optimizer.lr": {"loguniform": [1e-2, 1e-4]}, "stages[0].batch_size": [8, 8]}})
    lines = (tmp_path / "search.yaml").read_text().splitlines()
    # the line of the value, as for every spec problem
    lr = next(i for i, line in enumerate(lines, 1) if "loguniform:" in line) + 1
    batch = next(i for i, line in enumerate(lines, 1) if "stages[0].batch_size" in line) + 1
    assert len(problems) == 2
    assert problems[0].startswith(f"{lr}: search.space.stages[0].optimizer.lr.loguniform: low (0.01) must be below high")
    assert problems[1].startswith(f"{batch}: search.space.stages[0].batch_size: duplicate choice 8")


def test_paths_objectives_and_choices_are_checked_against_the_spec_and_plugins(tmp_path: Path) -> None:
    problems = _problems(tmp_path, {"objectives": ["tst.accuracy"], "trials": 2, "space": {
        "stages[0].optimizer.lrr": [0.1],
        "stages[2].batch_size": [8, 16],
        "stages[0].early_stopping.patience": [1, 2],
        "stages[0].scheduler": {"choices": {"linearr": None, "step": {"gama": [0.5]}}},
    }})
    text = "\n".join(problems)
    assert "search.objectives[0]: 'tst.accuracy' names no stage" in text
    assert "search.space.stages[0].optimizer.lrr: stages[0].optimizer (optimizer 'adamw') has no field 'lrr'. Did you mean 'lr'?" in text
    assert "search.space.stages[2].batch_size: stages has 2 items; there is no [2]" in text
    assert "search.space.stages[0].early_stopping.patience: stages[0].early_stopping is not set in the spec" in text
    assert "search.space.stages[0].scheduler.choices.linearr: Unknown scheduler 'linearr'. Did you mean 'linear'?" in text
    assert "search.space.stages[0].scheduler.choices.step.gama: scheduler 'step' has no field 'gama'. Did you mean 'gamma'?" in text
    assert all(p.split(":")[0].isdigit() for p in problems)  # every one has its line


def test_each_sampled_spec_must_still_validate(tmp_path: Path) -> None:
    stages = search_spec(tmp_path, {})["stages"]
    stages[0]["optimizer"] = {"name": "adamw", "betas": [0.9, 0.99]}
    problems = _problems(tmp_path, {"objectives": "test.accuracy", "trials": 2,
                                    "space": {"stages[0].optimizer.name": ["adamw", "sgd"]}}, stages=stages)
    assert len(problems) == 1
    assert "search.space.stages[0].optimizer.name: with stages[0].optimizer.name = 'sgd', the spec is invalid: " \
           "stages[0].optimizer.betas: unknown field 'betas'" in problems[0]


def test_grid_over_a_continuous_range_and_pruning_several_objectives_are_refused(tmp_path: Path) -> None:
    problems = _problems(tmp_path, {"searcher": "grid", "objectives": "test.accuracy",
                                    "space": {"stages[0].optimizer.lr": {"loguniform": [1e-4, 1e-2]}}})
    assert "search.searcher: searcher 'grid' from plugin 'hone.searchers' (hone-ml 0.1.0): a grid needs finite values, but stages[0].optimizer.lr is continuous" in problems[0]
    problems = _problems(tmp_path, {"searcher": "random", "objectives": "test.accuracy", "space": {"seed": [1, 2]}})
    assert "never runs out of points: set `trials` or `timeout`" in problems[0]
    problems = _problems(tmp_path, {"objectives": ["test.accuracy", "test.loss"], "pruner": "median", "trials": 2,
                                    "space": {"seed": [1, 2]}})
    assert "pruning needs a single objective" in problems[0]


def test_hone_validate_checks_the_search_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hone.cli import main

    spec_file = write_spec(tmp_path, search_spec(tmp_path / "model", {"objectives": "test.accuracy", "trials": 2,
                                                                       "space": {"stages[0].optimizer.lrr": [0.1]}}))
    assert main(["validate", str(spec_file)]) == 2
    assert "search.space.stages[0].optimizer.lrr: stages[0].optimizer (optimizer 'adamw') has no field 'lrr'" in capsys.readouterr().err
