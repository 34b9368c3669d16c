"""hone compare on three real tiny runs: the right rows in every format, and a plot."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from hone.cli import main
from hone_plugins.report.compare import compare, render

from .conftest import TinyRuns


def _final(run_dir: Path, name: str) -> float:
    return json.loads((run_dir / "metrics.json").read_text())["test"]["test"][name]


def test_csv_has_one_row_per_run_with_metrics_speed_size_and_cost(tiny_runs: TinyRuns, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", *map(str, tiny_runs.dirs), "--metric", "entity_f1", "-m", "accuracy", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["run"] for r in rows] == ["run-a", "run-b", "run-c"]
    assert list(rows[0]) == ["run", "status", "entity_f1", "accuracy", "train_samples_per_s", "eval_examples_per_s",
                             "parameters", "nonzero", "size_mb", "wall_s"]
    for row, run_dir in zip(rows, tiny_runs.dirs):
        assert row["status"] == "completed"
        assert float(row["entity_f1"]) == pytest.approx(_final(run_dir, "entity_f1"))
        assert float(row["accuracy"]) == pytest.approx(_final(run_dir, "accuracy"))
        assert float(row["train_samples_per_s"]) > 0 and float(row["eval_examples_per_s"]) > 0
        assert float(row["wall_s"]) > 0 and float(row["size_mb"]) > 0
    assert len({r["parameters"] for r in rows}) == 1  # the same tiny model three times


def test_table_and_markdown_list_the_same_runs(tiny_runs: TinyRuns) -> None:
    comparison = compare(tiny_runs.dirs, ["accuracy", "validation.loss", "fit.validation.entity_f1"])
    table = render(comparison, "table").splitlines()
    assert table[0].split()[:5] == ["run", "status", "accuracy", "validation.loss", "fit.validation.entity_f1"]
    assert [line.split()[0] for line in table[2:]] == ["run-a", "run-b", "run-c"]
    markdown = render(comparison, "markdown").splitlines()
    assert markdown[0].startswith("| run | status | accuracy | validation.loss |")
    assert [line.split(" | ")[0] for line in markdown[2:]] == ["| run-a", "| run-b", "| run-c"]
    assert all(row["validation.loss"] is not None for row in comparison.rows)


def test_default_metrics_are_the_final_results_and_a_missing_metric_is_blank(tiny_runs: TinyRuns) -> None:
    comparison = compare(tiny_runs.dirs)
    assert comparison.metrics == ["entity_precision", "entity_recall", "entity_f1", "accuracy"]
    assert compare(tiny_runs.dirs[:1], ["no_such_metric"]).rows[0]["no_such_metric"] is None


def test_plot_is_written(tiny_runs: TinyRuns, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "compare.png"
    assert main(["compare", *map(str, tiny_runs.dirs), "--plot", str(plot)]) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "run-c" in capsys.readouterr().out


def test_a_directory_without_a_run_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(tmp_path)]) == 2
    assert "not a hone run directory" in capsys.readouterr().err
