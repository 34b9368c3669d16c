"""hone report: a self-contained HTML page and a Markdown summary from a real tiny run, a compression and a search."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from hone_plugins.report.write import build_report, try_write_report, write_report

from .conftest import TinyRuns

IMG = '<img src="data:image/png;base64,'


def test_hone_run_writes_the_report_and_logs_plain_progress(tiny_runs: TinyRuns) -> None:
    run_dir = tiny_runs.dirs[0]
    assert (run_dir / "report.html").exists() and (run_dir / "report.md").exists()
    assert f"report: {run_dir / 'report.html'}" in tiny_runs.cli_stdout
    lines = tiny_runs.cli_stderr.splitlines()  # not a terminal: one line per stage start, epoch and stage end
    assert "[fit] train started, 4 steps" in lines
    assert any(line.startswith("[fit] epoch 1 done: step 2 · train loss") and "validation: loss" in line for line in lines)
    assert any(line.startswith("[test] done in") and "entity_f1" in line for line in lines)


def test_run_report_holds_the_spec_environment_plots_and_tables(tiny_runs: TinyRuns) -> None:
    run_dir = tiny_runs.dirs[0]
    html_path, md_path = write_report(run_dir)
    page, summary = html_path.read_text(), md_path.read_text()
    assert page.count(IMG) == 3  # loss and learning rate, validation metrics, confusion matrix
    assert "http://" not in page and "https://" not in page and "<script" not in page  # self-contained
    for text in ("name: run-a", "lr: 0.005", "confusion-matrix"):  # the resolved spec
        assert text in page and text in summary
    for text in ("device", "cpu", "torch", "transformers", "python"):  # the environment from run_start
        assert f"<td>{text}</td>" in page
    assert "Per entity type: test (test)" in page
    for entity in ("LOC", "MISC", "ORG", "PER"):
        assert f"<tr><td>{entity}</td>" in page and f"| {entity} |" in summary
    assert "| fit | train |" in summary and "| test | evaluate |" in summary  # per-stage timings
    assert "entity_f1" in summary and "(plot in report.html: confusion matrix test test)" in summary


def _compressed_copy(run_dir: Path, target: Path) -> Path:
    """The run as if a compress stage with an accuracy budget had run (the keys a compress stage writes)."""
    shutil.copytree(run_dir, target)
    metrics = json.loads((target / "metrics.json").read_text())
    tried = [{"sparsity": s, "entity_f1": f, "drop": 0.5 - f, "within_budget": 0.5 - f <= 0.05, "parameters": 26313,
              "nonzero": int(26313 * (1 - s)), "size_bytes": 109372, "sentences_per_s": 50.0 + 10 * s}
             for s, f in ((0.9, 0.2), (0.7, 0.4), (0.5, 0.47))]
    metrics["prune"] = {
        "compressor": "magnitude",
        "budget": {"metric": "entity_f1", "split": "validation", "baseline": 0.5, "max_drop": 0.05, "relative": False,
                   "tried": tried, "chosen": 0.5},
        "validation": {"loss": 1.0, "entity_f1": 0.47},
        "params": {"sparsity": 0.5},
        "before": {"parameters": 26313, "nonzero": 26281, "sparsity": 0.0012, "size_bytes": 109372},
        "after": {"parameters": 26313, "nonzero": 13157, "sparsity": 0.5, "size_bytes": 109372,
                  "layer_sparsity": {"bert.encoder.layer.0.attention.self.query": 0.5, "classifier": 0.0}},
        "changes": {"pruned_layers": 12}, "seconds": 1.5,
    }
    (target / "metrics.json").write_text(json.dumps(metrics))
    return target


def test_compression_results_give_a_tradeoff_table_and_plot(tiny_runs: TinyRuns, tmp_path: Path) -> None:
    run_dir = _compressed_copy(tiny_runs.dirs[1], tmp_path / "compressed")
    page = write_report(run_dir)[0].read_text()
    summary = (run_dir / "report.md").read_text()
    assert "Compression" in page and "Settings tried" in page
    assert "| sparsity | entity_f1 | drop | within_budget |" in summary
    assert page.count(IMG) == 3 + 2  # + the trade-off plot and the per-layer sparsity
    assert "entity_f1 against size and speed" in page


def test_compression_section_tolerates_missing_keys(tiny_runs: TinyRuns, tmp_path: Path) -> None:
    run_dir = _compressed_copy(tiny_runs.dirs[1], tmp_path / "partial")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["prune"] = {"compressor": "half", "after": {"size_bytes": 1000}}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    _, _, sections = build_report(run_dir)
    assert "Compression" in [s.title for s in sections]


def test_search_directory_report_shows_history_and_pareto_front(tmp_path: Path) -> None:
    with (tmp_path / "trials.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["number", "values_0", "values_1", "params_stages[0].optimizer.lr", "state", "duration"])
        for n, (f1, ms) in enumerate([(0.5, 9.0), (0.7, 8.0), (0.6, 4.0), (None, None), (0.4, 3.0), (0.55, 9.5)]):
            writer.writerow([n, f1 or "", ms or "", 1e-4 * (n + 1), "COMPLETE" if f1 else "PRUNED", f"0 days 00:00:0{n}.5"])
    (tmp_path / "search.json").write_text(json.dumps({
        "objectives": [{"metric": "entity_f1", "direction": "maximize"}, {"metric": "latency_ms", "direction": "minimize"}]}))
    (tmp_path / "pareto").mkdir()
    (tmp_path / "pareto" / "trial-1.yaml").write_text("name: t1\n")
    page = write_report(tmp_path)[0].read_text()
    summary = (tmp_path / "report.md").read_text()
    assert page.count(IMG) == 2  # history, Pareto front
    assert "trials pruned | 1" in summary and "best entity_f1 (maximize) | 0.7000" in summary
    pareto = summary.split("**Pareto-optimal trials**")[1].split("##")[0]
    assert [line.split(" | ")[0] for line in pareto.strip().splitlines()[2:]] == ["| 1", "| 2", "| 4"]
    assert "pareto/trial-1.yaml" in summary


def test_a_failed_report_only_warns(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="could not write the report"):
        assert try_write_report(tmp_path / "missing") is None


def test_report_of_a_directory_without_a_run_is_a_clear_error(tmp_path: Path) -> None:
    from hone.cli import main

    assert main(["report", str(tmp_path)]) == 2


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package: chromium)")
def test_report_renders_in_headless_chromium(tiny_runs: TinyRuns, tmp_path: Path) -> None:
    from PIL import Image

    page = write_report(tiny_runs.dirs[0])[0]
    shot = tmp_path / "report.png"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
               "--window-size=1200,2400", f"--screenshot={shot}", page.resolve().as_uri()]
    subprocess.run(command, capture_output=True, timeout=180, check=False)
    assert shot.exists(), "Chromium wrote no screenshot"
    image = Image.open(shot).convert("RGB")
    assert image.size == (1200, 2400)
    colours = image.resize((120, 240)).getcolors(maxcolors=1 << 16)
    assert colours is not None and len(colours) > 50  # text, tables and plots, not a blank page
