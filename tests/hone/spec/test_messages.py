"""What a newcomer's usual mistakes are told: HF task names, devices, stage types, YAML syntax."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hone.run.rundir import SPEC, prepare_run_dir
from hone.spec.loading import SpecError, load_spec

SPEC_TEXT = """\
name: messages
output_dir: out
model: any-model-name
task: {task}
device: {device}
data:
  reader: {reader}
  train: train.txt
  validation: valid.txt
stages:
  - type: {stage}
    split: validation
"""


def write(tmp_path: Path, task: str = "token-classification", device: str = "auto", stage: str = "evaluate",
          reader: str = "conll") -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC_TEXT.format(task=task, device=device, stage=stage, reader=reader))
    return path


def issues(path: Path) -> dict[str, tuple[int | None, str]]:
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    return {issue.path: (issue.line, issue.message) for issue in caught.value.issues}


@pytest.mark.parametrize(("alias", "task", "reader"), [
    ("text-classification", "sequence-classification", "tsv"),
    ("sentiment-analysis", "sequence-classification", "tsv"),
    ("ner", "token-classification", "conll"),
    ("text-generation", "causal-lm", "jsonl"),
    ("text2text-generation", "seq2seq", "jsonl"),
    ("summarization", "seq2seq", "jsonl"),
    ("translation", "seq2seq", "jsonl"),
])
def test_hugging_face_pipeline_task_names_are_aliases(alias: str, task: str, reader: str, tmp_path: Path) -> None:
    spec, host = load_spec(write(tmp_path, task=alias, reader=reader))
    assert spec.task.name == task  # the registered name, so the run directory records one name per task
    prepare_run_dir(spec, host, tmp_path / "run", resume=False)
    assert yaml.safe_load((tmp_path / "run" / SPEC).read_text())["task"]["name"] == task


@pytest.mark.parametrize(("device", "close"), [("gpu", "cuda"), ("gpu:1", "cuda:1"), ("cdua", "cuda"), ("cpus", "cpu")])
def test_an_unknown_device_says_what_is_valid(device: str, close: str, tmp_path: Path) -> None:
    line, message = issues(write(tmp_path, device=device))["device"]
    assert line == 5
    assert message.startswith(f"unknown device '{device}': use auto")
    assert all(name in message for name in ("cpu", "cuda:N", "mps")) and message.endswith(f"Did you mean '{close}'?")
    assert "pattern" not in message


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:3", "mps"])
def test_valid_devices_pass(device: str, tmp_path: Path) -> None:
    assert load_spec(write(tmp_path, device=device))[0].device == device


def test_a_misspelt_stage_type_gets_did_you_mean(tmp_path: Path) -> None:
    line, message = issues(write(tmp_path, stage="evalute"))["stages[0].type"]
    assert line == 11 and "Did you mean 'evaluate'?" in message and "does not match" not in message


@pytest.mark.parametrize(("text", "line", "hint"), [
    ("model: m\ntask: t\ndata:\n  reader: conll\n bad: indent\n", 5, "indented differently"),
    ("model: m\ndata:\n\treader: conll\n", 3, "replace the tab"),
    ("model: m\ntask t\ndata:\n  reader: x\n", 2, "a key without its colon"),
    ("model: m\ndata:\n  reader conll\n  train: x\n", 4, "lacks its colon"),
    ("model: m\nstages: [\n  {type: train\n", 4, "opened on line 3 is not closed"),
    ("model: 'm\ntask: x\n", 1, "a quote opened on line 1 is never closed"),
    ("stages:\n  - type: train\n   - type: evaluate\n", 3, "indented differently"),
])
def test_yaml_syntax_errors_keep_the_line_and_add_a_hint(text: str, line: int, hint: str, tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    ((found, message),) = issues(path).values()
    assert found == line and message.startswith("invalid YAML: ") and hint in message
