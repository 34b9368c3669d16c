"""hone compare: a metric no run reports is warned about with the names that exist, parameters total and non-zero,
one number format per column, and a search directory compared trial by trial."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from hone.cli import main
from hone_plugins.report.compare import Comparison, compare, metric_warning, render
from .conftest import tiny_spec


@pytest.fixture(scope="module")
def one_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    from hone.run.runner import run
    from hone.spec.loading import load_spec

    base = tmp_path_factory.mktemp("compare-run")
    (base / "spec.yaml").write_text(yaml.safe_dump(tiny_spec(tiny_bert, "one", 5e-3, 1)))
    parsed, host = load_spec(base / "spec.yaml")
    return run(parsed, host, out=base / "run")


@pytest.mark.parametrize(("metric", "names", "close"), [
    ("f1", ["loss", "f1_macro", "accuracy", "validation.f1_macro"], "f1_macro"),
    ("acc", ["loss", "f1_macro", "accuracy"], "accuracy"),
    ("f1", ["loss", "entity_precision", "entity_f1"], "entity_f1"),
    ("test.acuracy", ["accuracy", "test.accuracy", "fit.test.accuracy"], "test.accuracy"),
])
def test_a_metric_no_run_reports_gets_did_you_mean(metric: str, names: list[str], close: str) -> None:
    message = metric_warning(metric, names)
    assert message.startswith(f"no run reports '{metric}'. Did you mean '{close}'? Available: ")
    assert names[0] in message.split("Available: ")[1] and "validation.f1_macro" not in message


def test_the_cli_warns_and_still_prints_the_table(one_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(one_run), "-m", "f1", "-m", "accuracy"]) == 0
    captured = capsys.readouterr()
    assert "warning: no run reports 'f1'. Did you mean 'entity_f1'? Available: " in captured.err
    assert "accuracy" not in captured.err.split("Available")[0]  # reported: no warning for it
    assert "accuracy" in captured.out.splitlines()[0]


def test_parameters_show_total_and_non_zero(one_run: Path, tmp_path: Path) -> None:
    compressed = shutil.copytree(one_run, tmp_path / "int8")
    metrics = json.loads((compressed / "metrics.json").read_text())
    metrics["squeeze"] = {"compressor": "dynamic-int8", "before": {"parameters": 26313, "nonzero": 26281, "size_bytes": 109404},
                          "after": {"parameters": 26313, "nonzero": 26002, "size_bytes": 40000}}
    (compressed / "metrics.json").write_text(json.dumps(metrics))
    rows = {row["run"]: row for row in compare([one_run, compressed]).rows}
    assert rows["int8"]["parameters"] == 26313 and rows["int8"]["nonzero"] == 26002
    assert rows["run"]["parameters"] == 26313 and rows["run"]["nonzero"] is None  # not measured without a compress stage
    table = render(compare([one_run, compressed]), "table")
    assert "non-zero parameters" in table.splitlines()[0] and "26,002" in table and "26,313" in table


def test_numbers_of_a_column_share_one_format() -> None:
    rows = [{"run": "a", "status": "completed", "f1": 0.5, "loss": 1.25, "train_samples_per_s": 523.4, "eval_examples_per_s": None,
             "parameters": 22568878, "nonzero": 22422115, "size_mb": 90.912, "wall_s": 8.0},
            {"run": "b", "status": "completed", "f1": 0.91234, "loss": 0.1, "train_samples_per_s": 81.0, "eval_examples_per_s": 3.0,
             "parameters": 1000, "nonzero": 1000, "size_mb": 0.1, "wall_s": 1234.4}]
    table = render(Comparison(["a", "b"], ["f1", "loss"], rows), "table").splitlines()
    cells = [line.split() for line in table[2:]]
    assert [c[2] for c in cells] == ["0.5000", "0.9123"]
    assert [c[3] for c in cells] == ["1.250", "0.100"]
    assert [c[4] for c in cells] == ["523.4", "81.0"]
    assert [c[5] for c in cells] == ["–", "3.000"]
    assert [c[6] for c in cells] == ["22,568,878", "1,000"]
    assert [c[8] for c in cells] == ["90.91", "0.10"]
    assert [c[9] for c in cells] == ["8", "1,234"]


def test_a_search_directory_lists_its_trials(one_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    search = tmp_path / "search"
    for number in (0, 1):
        shutil.copytree(one_run, search / "trials" / str(number))
    rows = [{"number": n, "state": "complete", "run_dir": str(search / "trials" / str(min(n, 1)))} for n in (0, 1, 2)]
    (search / "trials.json").write_text(json.dumps(rows))  # trial 2 duplicates trial 1: it shares its run directory
    (search / "search.yaml").write_text("name: s\n")
    assert main(["compare", str(search), "-f", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["trial 0", "trial 1"]
    (search / "trials.json").unlink()  # a search killed before its first results: the trials/ folder
    assert [row["run"] for row in compare([search]).rows] == ["trial 0", "trial 1"]
    assert main(["compare", str(tmp_path / "nothing")]) == 2
