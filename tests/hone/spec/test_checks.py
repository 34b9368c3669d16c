"""Mistakes a spec can hold that only a look across it (or at the machine) finds: each refused before any work."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from hone.spec.loading import SpecError, SpecIssue, check_ready, load_spec, validate_spec

SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "data" / "ner-sample"

SPEC = f"""\
name: checks
seed: 3
model: any-model-name
task: token-classification
data:
  reader: conll
  train: {SAMPLE / 'train.txt'}
  validation: {SAMPLE / 'valid.txt'}
stages:
  - type: train
    name: fit
    optimizer: {{name: adamw, lr: 5.0e-5}}
  - type: evaluate
    name: check
    split: validation
    metrics: [entity-f1, accuracy]
"""


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def issues(path: Path, ready: bool = False) -> dict[str, SpecIssue]:
    with pytest.raises(SpecError) as caught:
        spec, host = load_spec(path)
        if ready:
            check_ready(path, spec)
    return {issue.path: issue for issue in caught.value.issues}


def line_of(text: str, fragment: str, nth: int = 1) -> int:
    return [n for n, line in enumerate(text.splitlines(), 1) if fragment in line][nth - 1]


def test_the_base_spec_is_ready(tmp_path: Path) -> None:
    path = write(tmp_path, SPEC)
    spec, host = load_spec(path)
    check_ready(path, spec)


def test_a_duplicate_key_is_refused_with_both_lines(tmp_path: Path) -> None:
    text = SPEC.replace("seed: 3\n", "seed: 3\ndevice: cpu\nseed: 4\n")
    issue = issues(write(tmp_path, text))["seed"]
    assert issue.line == line_of(text, "seed: 4")
    assert f"also on line {line_of(text, 'seed: 3')}" in issue.message and "duplicate key 'seed'" in issue.message


def test_a_duplicate_key_deep_inside_is_located(tmp_path: Path) -> None:
    text = SPEC.replace("    name: fit\n", "    name: fit\n    epochs: 1\n    epochs: 2\n")
    issue = issues(write(tmp_path, text))["stages[0].epochs"]
    assert issue.line == line_of(text, "epochs: 2")


def test_a_duplicate_key_in_json_is_refused_with_both_lines(tmp_path: Path) -> None:
    text = '{\n  "seed": 3,\n  "name": "x",\n  "seed": 4\n}\n'
    issue = issues(write(tmp_path, text, "spec.json"))["seed"]
    assert issue.line == 4 and "also on line 2" in issue.message


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    text = SPEC.replace("    name: fit\n", "    name: fit\n    <<: {epochs: 1}\n")
    spec, _ = load_spec(write(tmp_path, text))
    assert spec.stages[0].epochs == 1


BOMB = "".join(f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))


@pytest.mark.parametrize("where", ["student", "search"])
def test_an_alias_bomb_is_refused_quickly(tmp_path: Path, where: str) -> None:
    bomb = "lol:\n  l0: &l0 [lol]\n" + BOMB
    if where == "student":
        text = SPEC + "  - type: distill\n    teacher: any\n    student:\n      config: {x: *l9}\n"
    else:
        text = SPEC + "search:\n  objectives: check.validation.accuracy\n  space: {seed: {choice: *l9}}\n"
    found = issues(write(tmp_path, bomb + text))
    assert any("expands to more than" in issue.message and "aliases" in issue.message for issue in found.values())


def test_an_alias_that_contains_itself_is_refused(tmp_path: Path) -> None:
    found = issues(write(tmp_path, SPEC + "extra: &a [*a]\n"))
    assert any("contains itself" in issue.message for issue in found.values())


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    text = SPEC.replace("optimizer: {name: adamw, lr: 5.0e-5}", "optimizer: &opt {name: adamw, lr: 5.0e-5}")
    text += "  - type: train\n    name: again\n    optimizer: *opt\n"
    spec, _ = load_spec(write(tmp_path, text))
    assert spec.stages[2].optimizer.params.lr == 5e-5


def test_nesting_beyond_any_spec_is_refused(tmp_path: Path) -> None:
    text = SPEC + "extra: " + "[" * 80 + "]" * 80 + "\n"
    found = issues(write(tmp_path, text))
    assert any("nested" in issue.message for issue in found.values())


@pytest.mark.parametrize("value", ["18446744073709551617", "-9223372036854775809", str(10**30)])
def test_an_integer_beyond_64_bits_is_refused(tmp_path: Path, value: str) -> None:
    text = SPEC.replace("seed: 3", f"seed: {value}")
    issue = issues(write(tmp_path, text))["seed"]
    assert issue.line == 2 and "64 bits" in issue.message


def test_an_integer_beyond_64_bits_in_plugin_params_is_refused(tmp_path: Path) -> None:
    text = SPEC.replace("    name: fit\n", "    name: fit\n    epochs: 18446744073709551617\n")
    assert "64 bits" in issues(write(tmp_path, text))["stages[0].epochs"].message


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1.0e+400"])
def test_a_number_that_is_not_finite_is_refused(tmp_path: Path, value: str) -> None:
    text = SPEC.replace("lr: 5.0e-5", f"lr: {value}")
    issue = issues(write(tmp_path, text))["stages[0].optimizer.lr"]
    assert issue.line == line_of(text, "lr:") and "finite" in issue.message


def test_an_infinite_number_in_a_free_form_field_is_refused(tmp_path: Path) -> None:
    text = SPEC + "  - type: distill\n    teacher: any\n    student:\n      config: {layer_norm_eps: .inf}\n"
    assert "finite" in issues(write(tmp_path, text))["stages[2].student.config.layer_norm_eps"].message


def test_non_finite_numbers_are_refused_in_specs_built_in_code() -> None:
    from hone.plugins import load_plugins

    data: dict[str, Any] = {"model": "m", "task": "token-classification", "data": {"reader": "conll", "train": "t"},
                            "stages": [{"type": "train", "optimizer": {"name": "adamw", "lr": float("inf")}}]}
    with pytest.raises(SpecError, match="finite"):
        validate_spec(data, load_plugins(warn=False).registries)


def test_two_stages_with_one_name_are_refused(tmp_path: Path) -> None:
    text = SPEC.replace("    name: check", "    name: fit")
    issue = issues(write(tmp_path, text))["stages[1].name"]
    assert issue.line == line_of(text, "name: fit", 2)
    assert "stage 'fit'" in issue.message and "stages[0]" in issue.message


def test_a_stage_name_equal_to_a_default_name_is_refused(tmp_path: Path) -> None:
    text = SPEC.replace("    name: check", "    name: 0-train").replace("    name: fit\n", "")
    assert "stage '0-train'" in issues(write(tmp_path, text))["stages[1].name"].message


def test_a_metric_the_task_cannot_feed_is_refused(tmp_path: Path) -> None:
    text = SPEC.replace("task: token-classification", "task: causal-lm")
    issue = issues(write(tmp_path, text))["stages[1].metrics[0]"]
    assert issue.line == line_of(text, "metrics:")
    assert "metric 'entity-f1' scores tags" in issue.message and "task 'causal-lm'" in issue.message


def test_undeclared_components_are_not_checked(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "free.py").write_text(textwrap.dedent("""
        from hone.hookspecs import hookimpl

        @hookimpl
        def register_metrics(register):
            register("anything", lambda params: None)
    """))
    text = "plugins_dir: [plugins]\n" + SPEC.replace("task: token-classification", "task: causal-lm").replace(
        "[entity-f1, accuracy]", "[anything, perplexity]")
    load_spec(write(tmp_path, text))


def test_a_component_whose_optional_dependency_is_missing_is_refused(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "needy.py").write_text(textwrap.dedent("""
        from hone.hookspecs import hookimpl

        @hookimpl
        def register_callbacks(register):
            register("needy", lambda params, run_dir: None,
                     requires={"hone_no_such_module|hone_nor_this": "pip install needy-extra"})
    """))
    text = "plugins_dir: [plugins]\n" + SPEC + "callbacks: [needy]\n"
    issue = issues(write(tmp_path, text))["callbacks[0]"]
    assert issue.line == line_of(text, "callbacks:")
    assert "hone_no_such_module (or hone_nor_this)" in issue.message and "pip install needy-extra" in issue.message


def test_the_built_in_trackers_declare_what_they_need() -> None:
    from hone.plugins import load_plugins

    registries = load_plugins(warn=False).registries
    assert "tensorboard|tensorboardX" in registries.get("callback", "tensorboard").info["requires"]
    assert "mlflow" in registries.get("callback", "mlflow").info["requires"]
    assert "rouge_score" in registries.get("metric", "rouge").info["requires"]


@pytest.mark.parametrize("split,line", [("validation", "validation:"), ("test", None)])
def test_a_split_a_stage_needs_must_be_given(tmp_path: Path, split: str, line: str | None) -> None:
    text = SPEC.replace(f"  validation: {SAMPLE / 'valid.txt'}\n", "") if split == "validation" else \
        SPEC.replace("split: validation", "split: test")
    issue = issues(write(tmp_path, text))["stages[1].split"]
    assert f"the '{split}' split" in issue.message and "data." in issue.message


def test_early_stopping_needs_its_split(tmp_path: Path) -> None:
    text = SPEC.replace(f"  validation: {SAMPLE / 'valid.txt'}\n", "").replace("split: validation", "split: train")
    text = text.replace("    name: fit\n", "    name: fit\n    early_stopping: {metric: loss}\n")
    assert "the 'validation' split" in issues(write(tmp_path, text))["stages[0].eval_split"].message


def test_a_missing_data_file_is_found_before_any_work(tmp_path: Path) -> None:
    text = SPEC.replace(str(SAMPLE / "valid.txt"), "nowhere/valid.txt")
    issue = issues(write(tmp_path, text), ready=True)["data.validation"]
    assert issue.line == line_of(text, "validation: nowhere")
    assert str(tmp_path / "nowhere" / "valid.txt") in issue.message and "not found" in issue.message


def test_a_cuda_device_without_cuda_is_refused(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 CUDA devices")
    device = "cuda" if not torch.cuda.is_available() else "cuda:7"
    text = SPEC.replace("seed: 3", f"seed: 3\ndevice: '{device}'")
    issue = issues(write(tmp_path, text), ready=True)["device"]
    assert issue.line == 3 and "device" in issue.message and ("CUDA" in issue.message or "cuda" in issue.message)


def test_pick_device_refuses_a_missing_accelerator_clearly() -> None:
    import torch

    from hone.errors import HoneError
    from hone.run.devices import pick_device

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(HoneError, match="CUDA"):
        pick_device("cuda")


def test_json_duplicates_found_even_where_yaml_cannot_read_the_json(tmp_path: Path) -> None:
    text = json.dumps({"seed": 1}).replace("}", ', "seed": 2}').replace(" ", "\t")  # tabs: JSON, not YAML
    found = issues(write(tmp_path, text, "spec.json"))
    assert "duplicate key 'seed'" in found["seed"].message


def test_the_model_format_defaults_to_safetensors_and_an_unknown_one_is_refused(tmp_path: Path) -> None:
    spec, _ = load_spec(write(tmp_path, SPEC))
    assert spec.model_dump(mode="json")["model_format"] == {"name": "safetensors"}
    found = issues(write(tmp_path, SPEC + "model_format: safetensor\n"))
    assert "Did you mean 'safetensors'" in found["model_format.name"].message
