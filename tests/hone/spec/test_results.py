"""Result names and directions are known before any work: from the metrics' and stages' declarations, never a name."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from hone.spec.loading import SpecError, load_spec

SPEC = """\
name: results
model: any-model-name
task: {task}
data: {{reader: conll, train: train.txt, validation: valid.txt}}
stages:
  - type: train
    name: fit
{train}
  - type: evaluate
    name: test
    split: validation
    metrics: [perplexity]  # scores any task (from the loss)
"""

UNDECLARED = '''
from hone.hookspecs import hookimpl


class Fancy:
    def compute(self, output):
        return {"fancy": 1.0}


@hookimpl
def register_metrics(register):
    register("fancy", lambda params: Fancy())
'''


def load(tmp_path: Path, train: str, task: str = "token-classification", search: str = "", plugins: bool = False) -> object:
    text = SPEC.format(task=task, train=textwrap.indent(textwrap.dedent(train), "    ")) + textwrap.dedent(search)
    if plugins:
        (tmp_path / "plugins").mkdir(exist_ok=True)
        (tmp_path / "plugins" / "fancy_metric.py").write_text(UNDECLARED)
        text += "plugins_dir: [plugins]\n"
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    for name in ("train.txt", "valid.txt"):  # hone search checks that the data files exist before any trial
        (tmp_path / name).touch()
    return load_spec(path)[0]


def problem(tmp_path: Path, train: str, **kwargs: object) -> str:
    with pytest.raises(SpecError) as caught:
        load(tmp_path, train, **kwargs)
    return "\n".join(f"{issue.line}: {issue.path}: {issue.message}" for issue in caught.value.issues)


def test_an_early_stopping_metric_no_evaluation_reports_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    found = problem(tmp_path, "metrics: [accuracy, f1]\nearly_stopping: {metric: acc}")
    assert "stages[0].early_stopping.metric: 'acc' is not among the results this stage reports. Did you mean 'accuracy'?" in found
    assert "Reported: accuracy, f1_macro, loss" in found
    assert found.split(":")[0] == "9"  # the line of `early_stopping`'s metric


def test_early_stopping_takes_the_direction_the_metric_declares(tmp_path: Path) -> None:
    spec = load(tmp_path, "early_stopping: {metric: perplexity}", task="causal-lm")
    assert spec.stages[0].early_stopping.mode == "min"
    spec = load(tmp_path, "early_stopping: {metric: entity_f1}")  # the task's default metric
    assert spec.stages[0].early_stopping.mode == "max"
    assert yaml.safe_load(yaml.safe_dump(spec.model_dump(mode="json")))["stages"][0]["early_stopping"]["mode"] == "max"


def test_an_explicit_mode_wins_but_the_name_must_still_be_reported(tmp_path: Path) -> None:
    assert load(tmp_path, "early_stopping: {metric: loss, mode: max}").stages[0].early_stopping.mode == "max"
    assert "'los' is not among the results" in problem(tmp_path, "early_stopping: {metric: los, mode: min}")


def test_a_metric_that_declares_nothing_needs_an_explicit_mode(tmp_path: Path) -> None:
    found = problem(tmp_path, "metrics: [fancy]\nearly_stopping: {metric: fancy}", plugins=True)
    assert "cannot tell whether higher or lower 'fancy' is better (a metric of the stage does not declare its results): " \
           "set `mode: max` or `mode: min`" in found
    assert load(tmp_path, "metrics: [fancy]\nearly_stopping: {metric: fancy, mode: max}", plugins=True) is not None


def test_search_objectives_take_their_direction_from_the_declarations(tmp_path: Path) -> None:
    search = """\
    search:
      objectives: [test.perplexity, fit.validation.loss, validation.entity_f1]
      space: {"stages[0].batch_size": [8, 16]}
    """
    spec = load(tmp_path, "epochs: 1", search=search)
    assert [o.direction for o in spec.search.objectives] == ["minimize", "minimize", "maximize"]


def test_a_search_objective_naming_a_result_no_stage_reports_is_refused_before_any_trial(tmp_path: Path) -> None:
    from hone_plugins.search.command import prepare

    search = """\
    search:
      objectives: validation.acc
      trials: 2
      space: {"stages[0].batch_size": [8, 16]}
    """
    load(tmp_path, "metrics: [accuracy]", search=search)  # hone run ignores the section
    with pytest.raises(SpecError) as caught:
        prepare(tmp_path / "spec.yaml")
    assert "search.objectives[0]: 'validation.acc' is not among the results any stage reports. Did you mean " \
           "'validation.accuracy'?" in str(caught.value)
    assert not (tmp_path / "runs").exists()


def test_a_budget_defaults_to_the_headline_result_with_its_direction(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent("""\
        model: any-model-name
        task: token-classification
        data: {reader: conll, train: train.txt, validation: valid.txt}
        stages:
          - {type: compress, compressor: magnitude, max_drop: {value: 0.01}}
          - {type: compress, compressor: magnitude, max_drop: {value: 0.01, metric: entity_recal}}
        """))
    with pytest.raises(SpecError, match=r"stages\[1\]\.max_drop\.metric: 'entity_recal' is not among .* Did you mean 'entity_recall'"):
        load_spec(path)
    path.write_text(path.read_text().replace("entity_recal", "loss"))
    budgets = [stage.max_drop for stage in load_spec(path)[0].stages]
    assert [(b.metric, b.mode) for b in budgets] == [("entity_f1", "max"), ("loss", "min")]
