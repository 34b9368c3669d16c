from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from hone.cli import main
from hone.spec.models import RunSpec
from hone.spec.loading import SpecError, SpecIssue, load_spec

THREE_MISTAKES = """\
name: three-mistakes
model: any-model-name
task: token-clasification
data:
  reader: conll
  train: train.txt
stages:
  - type: train
    batch_sise: 8
    optimizer:
      name: adamw
      lr: -1
"""

VALID = """\
name: fine
output_dir: out
model: any-model-name
task: token-classification
data:
  reader: conll
  train: data/train.txt
  validation: data/valid.txt
stages:
  - type: train
    optimizer: {name: adamw, lr: 5.0e-5}
  - type: evaluate
    split: validation
    metrics: [entity-f1, accuracy]
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HONE_DISABLE_PLUGINS", "HONE_ALLOW_PLUGINS", "HONE_PLUGINS_DIR"):
        monkeypatch.delenv(name, raising=False)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def spec_error(path: Path) -> SpecError:
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    return caught.value


def by_path(error: SpecError) -> dict[str, SpecIssue]:
    return {issue.path: issue for issue in error.issues}


def line_of(text: str, fragment: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_three_mistakes_are_reported_together_with_paths(tmp_path: Path) -> None:
    error = spec_error(write(tmp_path, "spec.yaml", THREE_MISTAKES))
    assert set(by_path(error)) == {"task.name", "stages[0].batch_sise", "stages[0].optimizer.lr"}
    assert str(error).startswith(f"{tmp_path / 'spec.yaml'}: 3 problems")


def test_each_mistake_has_the_line_it_is_on(tmp_path: Path) -> None:
    path = write(tmp_path, "spec.yaml", THREE_MISTAKES)
    issues = by_path(spec_error(path))
    assert issues["task.name"].line == 3
    assert issues["stages[0].batch_sise"].line == 9
    assert issues["stages[0].optimizer.lr"].line == 12
    message = str(spec_error(path))
    assert f"{path}:3: task.name: " in message
    assert f"{path}:9: stages[0].batch_sise: " in message
    assert f"{path}:12: stages[0].optimizer.lr: " in message


def test_unknown_task_suggests_the_registered_name(tmp_path: Path) -> None:
    issue = by_path(spec_error(write(tmp_path, "spec.yaml", THREE_MISTAKES)))["task.name"]
    assert issue.message.startswith("Unknown task 'token-clasification'. Did you mean 'token-classification'? Available: ")


def test_misspelt_field_suggests_the_real_one(tmp_path: Path) -> None:
    issue = by_path(spec_error(write(tmp_path, "spec.yaml", THREE_MISTAKES)))["stages[0].batch_sise"]
    assert issue.message.startswith("unknown field 'batch_sise'. Did you mean 'batch_size'?")


def test_out_of_range_plugin_param_is_checked_by_the_plugins_model(tmp_path: Path) -> None:
    issue = by_path(spec_error(write(tmp_path, "spec.yaml", THREE_MISTAKES)))["stages[0].optimizer.lr"]
    assert "greater than 0" in issue.message


def test_json_spec_reports_the_same_mistakes_with_lines(tmp_path: Path) -> None:
    data = {
        "model": "any-model-name",
        "task": "token-clasification",
        "data": {"reader": "conll", "train": "train.txt"},
        "stages": [{"type": "train", "batch_sise": 8, "optimizer": {"name": "adamw", "lr": -1}}],
    }
    text = json.dumps(data, indent=2)
    issues = by_path(spec_error(write(tmp_path, "spec.json", text)))
    assert set(issues) == {"task.name", "stages[0].batch_sise", "stages[0].optimizer.lr"}
    assert issues["task.name"].line == line_of(text, '"task"')
    assert issues["stages[0].batch_sise"].line == line_of(text, '"batch_sise"')
    assert issues["stages[0].optimizer.lr"].line == line_of(text, '"lr"')
    assert "Did you mean 'token-classification'?" in issues["task.name"].message
    assert "Did you mean 'batch_size'?" in issues["stages[0].batch_sise"].message


def test_misspelt_plugin_param_suggests_the_plugins_field(tmp_path: Path) -> None:
    spec = VALID.replace("lr: 5.0e-5", "lrr: 5.0e-5")
    issue = by_path(spec_error(write(tmp_path, "spec.yaml", spec)))["stages[0].optimizer.lrr"]
    assert issue.message.startswith("unknown field 'lrr'. Did you mean 'lr'?")
    assert issue.line == line_of(spec, "lrr")


def test_unknown_metric_in_an_evaluate_stage_is_located(tmp_path: Path) -> None:
    spec = VALID.replace("[entity-f1, accuracy]", "[entity-f1, acuracy]")
    issue = by_path(spec_error(write(tmp_path, "spec.yaml", spec)))["stages[1].metrics[1].name"]
    assert "Unknown metric 'acuracy'. Did you mean 'accuracy'?" in issue.message
    assert issue.line == line_of(spec, "acuracy")


def test_unknown_reader_suggests_a_reader(tmp_path: Path) -> None:
    spec = VALID.replace("reader: conll", "reader: conl")
    issue = by_path(spec_error(write(tmp_path, "spec.yaml", spec)))["data.reader.name"]
    assert "Unknown reader 'conl'. Did you mean 'conll'?" in issue.message


def test_invalid_yaml_gives_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "spec.yaml", "model: m\ntask: token-classification\nstages: [\n  {type: train\n")
    error = spec_error(path)
    assert len(error.issues) == 1 and error.issues[0].line is not None
    assert f"{path}:{error.issues[0].line}: invalid YAML" in str(error)


def test_yaml_syntax_error_points_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "spec.yaml", "model: m\ntask: token-classification\ndata:\n  reader: conll\n bad: indent\n")
    error = spec_error(path)
    assert error.issues[0].line == 5
    assert f"{path}:5: invalid YAML" in str(error)


def test_invalid_json_gives_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "spec.json", '{\n  "model": "m",\n  "task": \n}\n')
    error = spec_error(path)
    assert error.issues[0].line == 4
    assert f"{path}:4: invalid JSON" in str(error)


def test_spec_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    error = spec_error(write(tmp_path, "spec.yaml", "- just\n- a list\n"))
    assert "a spec must be a mapping" in str(error)


def test_missing_spec_file_is_a_spec_error(tmp_path: Path) -> None:
    assert "file not found" in str(spec_error(tmp_path / "absent.yaml"))


def test_missing_required_fields_are_all_reported(tmp_path: Path) -> None:
    error = spec_error(write(tmp_path, "spec.yaml", "name: empty\n"))
    assert {"model", "task", "data", "stages"} <= set(by_path(error))


def test_valid_spec_loads_with_paths_relative_to_the_spec_file(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    spec, host = load_spec(write(tmp_path / "specs", "spec.yaml", VALID))
    assert isinstance(spec, RunSpec)
    assert spec.task.name == "token-classification"
    assert spec.stages[0].optimizer.params.lr == 5e-5 and spec.stages[0].optimizer.params.weight_decay == 0.01  # typed, defaults filled
    assert spec.data.train == str(tmp_path / "specs" / "data" / "train.txt")
    assert spec.output_dir == str(tmp_path / "specs" / "out")
    assert "token-classification" in host.registries["task"]


def test_spec_plugins_dir_components_can_be_selected(tmp_path: Path) -> None:
    plugins = tmp_path / "my_plugins"
    plugins.mkdir()
    (plugins / "top_k.py").write_text(
        "from hone.hookspecs import hookimpl\n\n\n"
        "@hookimpl\n"
        "def register_metrics(register):\n"
        "    register('top-k', lambda params: None)\n"
    )
    spec = "plugins_dir: [my_plugins]\n" + VALID.replace("[entity-f1, accuracy]", "[top-k]")
    loaded, _ = load_spec(write(tmp_path, "spec.yaml", spec))
    assert [m.name for m in loaded.stages[1].metrics] == ["top-k"]


def test_hone_run_writes_nothing_for_an_invalid_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "spec.yaml", THREE_MISTAKES.replace("name: three-mistakes", "output_dir: runs"))
    before = sorted(tmp_path.rglob("*"))
    assert main(["run", str(path), "--out", str(tmp_path / "run-dir")]) == 2
    assert not (tmp_path / "run-dir").exists()
    assert sorted(tmp_path.rglob("*")) == before
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: 3 problems")
    assert "stages[0].batch_sise" in err


def test_an_evaluate_only_spec_needs_no_training_data_but_a_train_stage_does(tmp_path: Path) -> None:
    evaluate_only = VALID.replace("  train: data/train.txt\n", "").replace(
        "  - type: train\n    optimizer: {name: adamw, lr: 5.0e-5}\n", "")
    assert load_spec(write(tmp_path, "eval.yaml", evaluate_only))[0].data.train is None
    message = str(spec_error(write(tmp_path, "train.yaml", VALID.replace("  train: data/train.txt\n", ""))))
    assert "stage '0-train' (train) needs the 'train' split: give `data.train` or `data.path`" in message
    nothing = VALID.replace("  train: data/train.txt\n  validation: data/valid.txt\n", "")
    assert "for a run that only evaluates, `validation` and/or `test`" in str(spec_error(write(tmp_path, "none.yaml", nothing)))


LENIENT = '''
from pydantic import BaseModel

from hone import hookimpl


class LenientParams(BaseModel):  # pydantic's default: unknown keys silently ignored
    k: int = 5
    normalise: bool = True


@hookimpl
def register_metrics(register):
    register("lenient-top-k", lambda params: None, LenientParams)
'''


def test_a_misspelt_param_of_a_lenient_params_model_is_still_an_error_with_a_suggestion(tmp_path: Path) -> None:
    (tmp_path / "my_plugins").mkdir()
    (tmp_path / "my_plugins" / "lenient.py").write_text(LENIENT)
    spec = "plugins_dir: [my_plugins]\n" + VALID.replace("[entity-f1, accuracy]", "[{name: lenient-top-k, kk: 3}]")
    issue = by_path(spec_error(write(tmp_path, "spec.yaml", spec)))["stages[1].metrics[0].kk"]
    assert issue.message.startswith("unknown field 'kk'. Did you mean 'k'?")
    assert issue.line == spec.splitlines().index("    metrics: [{name: lenient-top-k, kk: 3}]") + 1
    loaded, _ = load_spec(write(tmp_path, "spec.yaml", spec.replace("kk: 3", "k: 3")))
    assert loaded.stages[1].metrics[0].settings() == {"k": 3, "normalise": True}


def test_the_run_directory_spec_yaml_holds_every_default_of_the_optimizer_and_scheduler(tmp_path: Path) -> None:
    import yaml

    from hone.run.rundir import prepare_run_dir

    spec = VALID.replace("optimizer: {name: adamw, lr: 5.0e-5}", "optimizer: {name: adamw, lr: '3e-5'}\n    scheduler: cosine")
    loaded, host = load_spec(write(tmp_path, "spec.yaml", spec))
    prepare_run_dir(loaded, host, tmp_path / "run", resume=False)
    stage = yaml.safe_load((tmp_path / "run" / "spec.yaml").read_text())["stages"][0]
    assert stage["optimizer"] == {"name": "adamw", "lr": 3e-5, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01,
                                  "fused": None}
    assert stage["scheduler"]["name"] == "cosine" and stage["scheduler"]["warmup"] == 0
    assert set(stage["scheduler"]) == {"name", *host.registries.get("scheduler", "cosine").params.model_fields}
