"""Environment variables in spec values: substituted when the spec is read, reported at their line when unset."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hone.run.rundir import SPEC, prepare_run_dir
from hone.spec.interpolate import interpolate, substitute
from hone.spec.loading import SpecError, check_ready, load_spec

REPO = Path(__file__).resolve().parents[3]

SPEC_TEXT = """\
name: env
output_dir: out
model: any-model-name
task: token-classification
data:
  reader: conll
  train: ${DATA:-data}/train.txt
  validation: ${DATA:-data}/valid.txt
stages:
  - type: train
    batch_size: ${BATCH:-4}
"""


@pytest.mark.parametrize(("text", "environ", "expected"), [
    ("${A}/x", {"A": "/d"}, "/d/x"),
    ("${A:-def}/x", {}, "def/x"),
    ("${A:-def}/x", {"A": ""}, "def/x"),
    ("${A-def}/x", {"A": ""}, "/x"),
    ("${A:-def}", {"A": "set"}, "set"),
    ("cost $$5 and $${A}", {"A": "no"}, "cost $5 and ${A}"),
    ("$5 and $A stay", {"A": "no"}, "$5 and $A stay"),
    ("${A:-a:-b}", {}, "a:-b"),
])
def test_substitute(text: str, environ: dict[str, str], expected: str) -> None:
    assert substitute(text, environ) == (expected, [])


@pytest.mark.parametrize(("text", "fragment"), [
    ("${MISSING}/x", "environment variable MISSING is not set: set it (export MISSING=...) or give a default, ${MISSING:-...}"),
    ("${1A}", "'${1A}' does not name an environment variable"),
    ("${A", "'${' is not closed"),
    ("${}", "'${}' does not name"),
])
def test_substitute_problems(text: str, fragment: str) -> None:
    _, problems = substitute(text, {"A": "x"})
    assert len(problems) == 1 and fragment in problems[0]


def test_interpolate_walks_values_not_keys_and_reads_an_alias_once() -> None:
    shared = {"p": "$$x"}
    data = {"${K}": "${K}", "list": [shared, shared, 3, None], "n": {"m": "${MISSING}"}}
    result, problems = interpolate(data, {"K": "v"})
    assert result["${K}"] == "v"
    assert result["list"][0] == result["list"][1] == {"p": "$x"}  # not "$x" read again as a reference
    assert problems == [(("n", "m"), problems[0][1])] and "MISSING is not set" in problems[0][1]


def test_spec_values_take_the_environment_or_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "spec.yaml").write_text(SPEC_TEXT)
    monkeypatch.delenv("DATA", raising=False)
    monkeypatch.delenv("BATCH", raising=False)
    spec, _ = load_spec(tmp_path / "spec.yaml")
    assert spec.data.train == str(tmp_path / "data" / "train.txt")  # the default, relative to the spec like any path
    assert spec.stages[0].batch_size == 4
    monkeypatch.setenv("DATA", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("BATCH", "16")
    spec, host = load_spec(tmp_path / "spec.yaml")
    assert spec.data.validation == str(tmp_path / "elsewhere" / "valid.txt") and spec.stages[0].batch_size == 16
    run_dir = tmp_path / "run"
    prepare_run_dir(spec, host, run_dir, resume=False)
    saved = yaml.safe_load((run_dir / SPEC).read_text())
    assert saved["data"]["train"] == str(tmp_path / "elsewhere" / "train.txt")  # spec.yaml records the resolved values


def test_an_unset_variable_is_reported_at_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_HERE", raising=False)
    text = SPEC_TEXT.replace("${DATA:-data}/valid.txt", "${NOT_SET_HERE}/valid.txt").replace("${BATCH:-4}", "${BAD")
    (tmp_path / "spec.yaml").write_text(text)
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "spec.yaml")
    issues = {issue.path: issue for issue in caught.value.issues}
    assert issues["data.validation"].line == 8 and "export NOT_SET_HERE=" in issues["data.validation"].message
    assert issues["stages[0].batch_size"].line == 11 and "not closed" in issues["stages[0].batch_size"].message
    assert f"{tmp_path / 'spec.yaml'}:8: data.validation: environment variable NOT_SET_HERE" in str(caught.value)


REAL_DATA_EXAMPLES = sorted(p.name for p in (REPO / "examples").glob("*.yaml") if "shared/data" in p.read_text())


def test_the_real_data_examples_are_found() -> None:
    assert {"conll2003-ner.yaml", "sst2.yaml", "sst2-instruction.yaml", "lora-conll2003.yaml"} <= set(REAL_DATA_EXAMPLES)


@pytest.mark.parametrize("example", REAL_DATA_EXAMPLES)
def test_examples_read_the_data_from_hone_data_dir(example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("conll2003/train.txt", "conll2003/valid.txt", "conll2003/test.txt", "sst2/train.tsv", "sst2/dev.tsv"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x\n")
    monkeypatch.setenv("HONE_DATA_DIR", str(tmp_path))
    spec, _ = load_spec(REPO / "examples" / example)
    assert spec.data.train.startswith(str(tmp_path)) and spec.data.validation.startswith(str(tmp_path))
    check_ready(REPO / "examples" / example, spec)  # the files it names are there
    monkeypatch.delenv("HONE_DATA_DIR")
    spec, _ = load_spec(REPO / "examples" / example)
    assert spec.data.train.startswith(str((REPO / "examples" / "../../shared/data").resolve()))
