"""CLI misuse through real subprocesses: a one-line error, a non-zero exit code, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .helpers import hone, ner_spec, write_spec

SPEC_OK = "model: m\ntask: token-classification\ndata: {reader: conll, train: train.txt}\nstages: [{type: evaluate, split: train}]\n"

# (arguments, files to create, expected exit code, text the error line holds); {spec} is a valid spec.
LIGHT = {
    "unknown-command": (["frobnicate"], {}, 2, "invalid choice: 'frobnicate'"),
    "no-command": ([], {}, 2, "the following arguments are required: COMMAND"),
    "run-without-spec": (["run"], {}, 2, "the following arguments are required: spec"),
    "unknown-option": (["validate", "spec.yaml", "--fast"], {"spec.yaml": SPEC_OK}, 2, "unrecognized arguments: --fast"),
    "missing-spec": (["validate", "absent.yaml"], {}, 2, "absent.yaml: 1 problem"),
    "spec-is-a-folder": (["validate", "."], {}, 2, "cannot read the spec"),
    "spec-not-utf8": (["validate", "spec.yaml"], {"spec.yaml": b"model: \xff\xfe\n"}, 2, "cannot read the spec"),
    "spec-not-a-mapping": (["validate", "spec.yaml"], {"spec.yaml": "- a\n- b\n"}, 2, "a spec must be a mapping"),
    "wrong-type": (["validate", "spec.yaml"], {"spec.yaml": SPEC_OK.replace("{type: evaluate}", "{type: train, epochs: three}")},
                   2, "problem"),
    "yaml-python-tag": (["validate", "spec.yaml"], {"spec.yaml": "model: !!python/object/apply:os.system ['touch pwned']\n"},
                        2, "invalid YAML"),
    "deeply-nested-spec": (["validate", "spec.yaml"], {"spec.yaml": "[" * 50_000}, 2, "nested too deeply"),
    "predict-bad-int": (["predict", "run", "--batch-size", "abc"], {}, 2, "invalid int value: 'abc'"),
    "schema-extra-argument": (["schema", "extra"], {}, 2, "unrecognized arguments: extra"),
    "report-missing-folder": (["report", "nowhere"], {}, 2, "nowhere: not a directory"),
    "compare-non-run-folders": (["compare", ".", "."], {}, 2, "not a hone run directory"),
    "search-missing-spec": (["search", "absent.yaml"], {}, 2, "absent.yaml: 1 problem"),
    "search-bad-workers": (["search", "absent.yaml", "--workers", "abc"], {}, 2, "invalid int value: 'abc'"),
    "select-missing-spec": (["select", "absent.yaml"], {}, 2, "absent.yaml: 1 problem"),
    "select-without-a-selection": (["select", "spec.yaml"], {"spec.yaml": SPEC_OK}, 2, "needs a `selection:` section"),
}


def make_files(tmp_path: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())


def assert_one_line_error(result: object, code: int, text: str) -> None:
    """One ``error:`` line (a spec report adds one indented line per problem), no traceback."""
    stderr = result.stderr  # type: ignore[attr-defined]
    assert result.returncode == code, (result.returncode, stderr)  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    errors = [i for i, line in enumerate(lines) if "error:" in line]
    assert len(errors) == 1, stderr
    block = [lines[errors[0]], *(line for line in lines[errors[0] + 1:] if line.startswith("  "))]
    assert any(text in line for line in block), stderr
    assert all(len(line) < 400 for line in block), stderr


@pytest.mark.parametrize("case", sorted(LIGHT))
def test_misuse_without_torch(tmp_path: Path, case: str) -> None:
    args, files, code, text = LIGHT[case]
    make_files(tmp_path, files)
    assert_one_line_error(hone(tmp_path, *args), code, text)
    assert not (tmp_path / "pwned").exists()


@pytest.fixture(scope="module")
def model_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    """A folder shaped like a finished run: model/ with hone.json, no training needed."""
    run_dir = tmp_path_factory.mktemp("predict-run")
    shutil.copytree(tiny_bert, run_dir / "model")
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    (run_dir / "model" / "hone.json").write_text(json.dumps({"task": "token-classification", "task_params": {}, "labels": labels}))
    return run_dir


HEAVY = {
    "predict-missing-source": (["predict", "no-such-run"], None, {}, 2, "not a hone run directory or model (no hone.json); pass --task"),
    "predict-on-a-non-run-folder": (["predict", "."], None, {"notes.txt": "x"}, 2, "not a hone run directory"),
    "predict-missing-input": (["predict", "{run}", "--input", "absent.jsonl"], None, {}, 2, "absent.jsonl: input file not found"),
    "predict-input-is-a-folder": (["predict", "{run}", "--input", "."], None, {}, 2, ".: input file not found"),
    "predict-bad-json": (["predict", "{run}"], '{"text": "ok"}\n{"text": \n', {}, 2, "<stdin>:2: invalid JSON"),
    "predict-not-an-object": (["predict", "{run}"], "[1, 2]\n", {}, 2, "<stdin>:1: expected a JSON object (one a line, e.g. {\"text\": \"...\"}), got list"),
    "predict-missing-text": (["predict", "{run}"], '{"txt": "Maria flew"}\n', {}, 2, "expected key 'text' or 'tokens'"),
    "predict-huge-number": (["predict", "{run}"], '{"text": ' + "9" * 5000 + "}\n", {}, 2, "<stdin>:1: invalid JSON"),
    "predict-not-utf8": (["predict", "{run}", "--input", "in.jsonl"], None, {"in.jsonl": b'{"text": "\xff"}\n'}, 2, "not valid UTF-8"),
    "predict-zero-batch": (["predict", "{run}", "--batch-size", "0"], "", {}, 2, "--batch-size must be at least 1"),
    "predict-output-folder-missing": (["predict", "{run}", "--output", "no/such/dir/out.jsonl"], '{"text": "a"}\n', {}, 2,
                                      "No such file or directory (no folder no/such/dir)"),
    "run-missing-data": (["run", "spec.yaml"], None, {"spec.yaml": SPEC_OK.replace("model: m", "model: {model}")}, 2,
                         "train.txt: data file not found"),
    "resume-nothing": (["run", "spec.yaml", "--resume", "--out", "nowhere"], None, {"spec.yaml": SPEC_OK, "train.txt": "a O\n"}, 2,
                       "nothing to resume"),
    "run-into-a-file": (["run", "spec.yaml", "--out", "spec.yaml"], None, {"spec.yaml": SPEC_OK, "train.txt": "a O\n"}, 1,
                        "Not a directory"),
    "run-on-cuda-without-cuda": (["run", "spec.yaml"], None, {"spec.yaml": "device: cuda\n" + SPEC_OK, "train.txt": "a O\n"}, 2,
                                 "device 'cuda'"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(HEAVY))
def test_misuse_of_run_and_predict(tmp_path: Path, model_run: Path, tiny_bert: Path, case: str) -> None:
    args, stdin, files, code, text = HEAVY[case]
    if "cuda" in case and __import__("torch").cuda.is_available():
        pytest.skip("this machine has CUDA")
    make_files(tmp_path, {k: v.replace("{model}", str(tiny_bert)) if isinstance(v, str) else v for k, v in files.items()})
    args = [a.replace("{run}", str(model_run)) for a in args]
    assert_one_line_error(hone(tmp_path, *args, stdin=stdin), code, text)
    assert not (tmp_path / "runs").exists()  # refused before any run directory was made


@pytest.mark.slow
def test_predict_still_works_on_the_same_run(tmp_path: Path, model_run: Path) -> None:
    result = hone(tmp_path, "predict", str(model_run), stdin='{"text": "Maria flew to Oslo"}\n')
    assert result.returncode == 0, result.stderr
    assert "entities" in json.loads(result.stdout.splitlines()[0])


@pytest.mark.slow
def test_a_spec_with_three_mistakes_reports_each_on_its_own_line(tmp_path: Path, tiny_bert: Path) -> None:
    spec = ner_spec(tiny_bert)
    spec["stages"][0].update(epochs="three", optimizer={"name": "adamww"})
    spec["seed"] = "x"
    result = hone(tmp_path, "run", str(write_spec(tmp_path, spec)))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {tmp_path / 'spec.yaml'}: 3 problems")
    assert not (tmp_path / "runs").exists()
