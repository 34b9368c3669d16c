"""`hone select` end to end on the tiny model: ranking files, the report, reruns that train nothing again."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from hone.cli import main
from hone.errors import HoneError
from hone_plugins.selection import command
from hone_plugins.selection.command import select_command

from .conftest import two_candidates


def ranking(out: Path) -> list[dict[str, str]]:
    with (out / "ranking.csv").open() as handle:
        return list(csv.DictReader(handle))


def starts(run_dir: Path) -> int:
    """How many times a run directory's run was started (a run, then each resume)."""
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return sum(e["event"] == "run_start" for e in events)


def test_hone_select_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["select", "--help"])
    assert exit_.value.code == 0
    assert "usage: hone select" in capsys.readouterr().out


def test_two_candidates_are_fine_tuned_measured_and_ranked(spec_file: Any, tmp_path: Path, tiny_bert: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["select", str(spec_file(two_candidates(tiny_bert))), "--out", str(out), "-q"]) == 0
    rows = ranking(out)
    # the parameter penalty outweighs any F1: the one-layer cut wins
    assert [(r["rank"], r["candidate"], r["status"]) for r in rows] == [("1", "one-layer", "measured"),
                                                                        ("2", "full", "measured")]
    assert float(rows[0]["parameters_m"]) < float(rows[1]["parameters_m"])
    for row in rows:
        assert float(row["latency_ms"]) > 0 and float(row["size_mb"]) > 0 and float(row["wall_s"]) > 0
        assert float(row["score"]) == pytest.approx(float(row["test.entity_f1"]) - 1000 * float(row["parameters_m"]))
        metrics = json.loads((Path(row["run_dir"]) / "metrics.json").read_text())
        assert float(row["test.entity_f1"]) == pytest.approx(metrics["test"]["test"]["entity_f1"])
    state = json.loads((out / "selection.json").read_text())
    assert state["status"] == "completed" and state["best"] == "one-layer"
    assert state["objective"]["formula"] == "test.entity_f1 - 1000 * parameters_m"
    cut = json.loads((out / "models" / "one-layer" / "config.json").read_text())
    assert cut["num_hidden_layers"] == 1
    import yaml

    assert yaml.safe_load((out / "runs" / "one-layer" / "spec.yaml").read_text())["model"]["source"] == \
        str((out / "models" / "one-layer").resolve())
    markdown = (out / "ranking.md").read_text()
    assert markdown.startswith("score = test.entity_f1 - 1000 * parameters_m") and "| 1 | one-layer |" in markdown
    assert (out / "ranking.png").read_bytes().startswith(b"\x89PNG")
    assert "Ranking" in (out / "report.md").read_text() and (out / "report.html").exists()
    candidate_report = (out / "runs" / "full" / "report.md").read_text()
    assert "Model selection" in candidate_report and "candidate 'full', ranked 2 of 2" in candidate_report
    printed = capsys.readouterr().out
    assert "best: one-layer" in printed and "| 2 | full |" in printed


def test_a_rerun_after_an_interruption_trains_only_what_is_unfinished(spec_file: Any, tmp_path: Path, tiny_bert: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out, spec = tmp_path / "out", spec_file(two_candidates(tiny_bert))
    real = command.run_candidate

    def interrupted_at_the_second(item: Any, *args: Any) -> Any:
        if item.name == "one-layer":
            raise KeyboardInterrupt
        return real(item, *args)

    monkeypatch.setattr(command, "run_candidate", interrupted_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        select_command(spec, out, quiet=True, report=False)
    state = json.loads((out / "selection.json").read_text())
    assert state["status"] == "interrupted"
    assert [(c["name"], c["status"]) for c in state["candidates"]] == [("full", "measured"), ("one-layer", "pending")]
    assert [r["candidate"] for r in ranking(out) if r["rank"]] == ["full"]  # the ranking so far

    monkeypatch.setattr(command, "run_candidate", real)
    capsys.readouterr()
    assert select_command(spec, out, report=False) == 0
    assert "full: fine-tuned and measured earlier" in capsys.readouterr().err
    assert starts(out / "runs" / "full") == 1 and starts(out / "runs" / "one-layer") == 1
    first = {r["candidate"]: r for r in ranking(out)}

    # other weights rank again without training or timing anything
    spec = spec_file(two_candidates(tiny_bert, penalties={"parameters_m": 0.0, "size_mb": 0.0}))
    assert select_command(spec, out, quiet=True, report=False) == 0
    again = {r["candidate"]: r for r in ranking(out)}
    assert starts(out / "runs" / "full") == 1 and starts(out / "runs" / "one-layer") == 1
    assert all(again[n]["latency_ms"] == first[n]["latency_ms"] for n in again)
    assert all(float(r["score"]) == pytest.approx(float(r["test.entity_f1"])) for r in again.values())


def test_a_changed_budget_does_not_reuse_runs_of_the_old_one(spec_file: Any, tmp_path: Path, tiny_bert: Path) -> None:
    import yaml

    out, spec = tmp_path / "out", spec_file({**two_candidates(tiny_bert), "candidates": [{"name": "full"}]})
    assert select_command(spec, out, quiet=True, report=False) == 0
    data = yaml.safe_load(spec.read_text())
    data["stages"][0]["epochs"] = 2
    spec.write_text(yaml.safe_dump(data))
    with pytest.raises(HoneError, match=r"candidate 'full': the spec changed since it was fine-tuned .*fields: stages"):
        select_command(spec, out, quiet=True, report=False)
    assert starts(out / "runs" / "full") == 1


def test_a_failing_candidate_is_reported_and_the_others_still_ranked(spec_file: Any, tmp_path: Path, tiny_bert: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()  # a folder, so the spec is valid, but no model in it
    selection = {**two_candidates(tiny_bert), "candidates": [{"name": "broken", "model": str(tmp_path / "empty")},
                                                             {"name": "full"}]}
    out = tmp_path / "out"
    assert main(["select", str(spec_file(selection)), "--out", str(out), "-q", "--no-report"]) == 2
    assert "1 of 2 candidates failed (broken); run `hone select` again to retry them" in capsys.readouterr().err
    rows = ranking(out)
    assert [(r["rank"], r["candidate"]) for r in rows] == [("1", "full"), ("", "broken")]
    assert rows[1]["status"].startswith("failed: ") and rows[1]["score"] == ""
    assert json.loads((out / "selection.json").read_text())["status"] == "failed"


def test_killed_and_run_again_a_selection_keeps_its_finished_candidate(spec_file: Any, tmp_path: Path,
                                                                       tiny_bert: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    out, spec = tmp_path / "out", spec_file(two_candidates(tiny_bert))
    command_line = [sys.executable, "-m", "hone", "select", str(spec), "--out", str(out), "-q", "--no-report"]
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command_line, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    def full_is_complete() -> bool:
        try:
            return json.loads((out / "runs" / "full" / "state.json").read_text())["status"] == "completed"
        except (OSError, ValueError, KeyError):  # not there yet, or caught being replaced
            return False

    while process.poll() is None and time.monotonic() < deadline and not full_is_complete():
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)  # once the first candidate's run is complete: while it is measured, say
    process.wait()
    assert json.loads((out / "selection.json").read_text())["status"] == "running"
    assert subprocess.run(command_line, env=env, capture_output=True).returncode == 0
    assert starts(out / "runs" / "full") == 1  # finished: not trained again
    assert [r["candidate"] for r in ranking(out)] == ["one-layer", "full"]


def test_a_folder_holding_something_else_or_a_running_selection_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(HoneError, match="already holds something else than a model selection"):
        command._claim(other)
    lock = command._claim(tmp_path / "selection")
    with pytest.raises(HoneError, match="another `hone select` is running on it"):
        command._claim(tmp_path / "selection")
    lock.close()
    command._claim(tmp_path / "selection").close()  # a lone lock file (killed before selection.json) is no obstacle


STOP_ONCE = '''
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from hone.hookspecs import hookimpl


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    marker: str


class StopOnce:
    """Ctrl-C as the first stage of the first run ends (once: the marker file remembers)."""

    def __init__(self, marker):
        self.marker = Path(marker)

    def on_stage_end(self, event, data):
        if not self.marker.exists():
            self.marker.write_text("stopped")
            raise KeyboardInterrupt


def stop_once(params, run_dir):
    return StopOnce(params.marker)


@hookimpl
def register_callbacks(register):
    register("stop-once", stop_once, Params)
'''


def test_a_candidate_interrupted_mid_run_resumes_where_it_stopped(tmp_path: Path, tiny_bert: Path) -> None:
    import yaml

    from hone.errors import Interrupted

    from .conftest import selection_spec

    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "stop_once.py").write_text(STOP_ONCE)
    data = selection_spec(tiny_bert, {**two_candidates(tiny_bert), "candidates": [{"name": "full"}]})
    data.update(plugins_dir=["plugins"], callbacks=[{"name": "stop-once", "marker": str(tmp_path / "stopped")}])
    spec, out = tmp_path / "selection.yaml", tmp_path / "out"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises((Interrupted, KeyboardInterrupt)):
        select_command(spec, out, quiet=True, report=False)
    assert json.loads((out / "runs" / "full" / "state.json").read_text())["completed"] == [0]
    assert select_command(spec, out, quiet=True, report=False) == 0
    events = [json.loads(line) for line in (out / "runs" / "full" / "events.jsonl").read_text().splitlines()]
    assert starts(out / "runs" / "full") == 2  # the run, then its resume
    assert [e["stage"] for e in events if e["event"] == "stage_start"] == ["all", "test"]  # training ran once
    assert [r["candidate"] for r in ranking(out)] == ["full"]
