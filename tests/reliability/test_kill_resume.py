"""Kill -9 at any point of a run: the run directory stays readable and --resume reproduces the metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from hone.errors import HoneError
from hone.run.events import EventLog, read_events
from hone.run.rundir import prepare_run_dir
from hone.run.runner import run
from hone.spec.loading import load_spec

from tests.reproducible import reproducible

from .helpers import STAGE_EXAMPLES, kill_harness, ner_spec, read_json, with_stages, write_spec


def run_spec(spec_file: Path, out: Path, resume: bool = False) -> Path:
    spec, host = load_spec(spec_file)
    return run(spec, host, out=out, resume=resume)


@pytest.mark.slow
def test_a_run_killed_at_three_points_resumes_to_the_uninterrupted_metrics(tmp_path: Path, tiny_bert: Path) -> None:
    harness = kill_harness()
    spec_file = harness.write_spec(tmp_path, tiny_bert)
    env = harness.subprocess_env(tmp_path / "cache")
    reference, _ = harness.reference_run(spec_file, tmp_path, env)
    events = len(harness.event_lines(reference)) - 1
    # each restart advances at most 2/9 of the run, so three kills always land before it ends
    trials = harness.chain(spec_file, tmp_path, reference, harness.plan(3, events, seed=3), env, events // 3)
    assert all(trial.killed for trial in trials)
    assert [trial.problems_after_kill for trial in trials] == [[], [], []]
    final = trials[-1]
    assert final.resume_rc == 0, final.resume_error
    assert final.problems_after_resume == []
    assert final.same_metrics and final.same_losses


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> tuple[Path, Path]:
    """The kill benchmark's spec (two train stages, the second early-stopping), run to the end."""
    root = tmp_path_factory.mktemp("finished")
    spec_file = kill_harness().write_spec(root, tiny_bert)
    spec = yaml.safe_load(spec_file.read_text())
    spec_file.write_text(yaml.safe_dump({**spec, "checkpoints": {"after_run": "all"}}))  # the tests rewind it
    return spec_file, run_spec(spec_file, root / "reference")


def forget_last_train_stage(run_dir: Path, drop_stage_end_checkpoint: bool) -> None:
    """Put the run directory back where a kill just before state.json recorded stage 1 would leave it."""
    state = read_json(run_dir / "state.json")
    state["status"], state["completed"] = "running", [0]
    del state["results"]["all"], state["results"]["test"]
    (run_dir / "state.json").write_text(json.dumps(state))
    (run_dir / "metrics.json").write_text(json.dumps(state["results"]))
    shutil.rmtree(run_dir / "model")
    if drop_stage_end_checkpoint:
        history = read_json(run_dir / "checkpoints" / "history.json")
        assert history[-1] == "stage1-end"
        shutil.rmtree(run_dir / "checkpoints" / "stage1-end")
        (run_dir / "checkpoints" / "history.json").write_text(json.dumps(history[:-1]))


@pytest.mark.parametrize("drop_stage_end_checkpoint", [False, True], ids=["after-stage-end-checkpoint", "after-last-epoch-checkpoint"])
def test_a_kill_as_a_stage_ends_neither_retrains_nor_loses_results(
    finished_run: tuple[Path, Path], tmp_path: Path, drop_stage_end_checkpoint: bool
) -> None:
    spec_file, reference = finished_run
    killed = tmp_path / "killed"
    shutil.copytree(reference, killed)
    forget_last_train_stage(killed, drop_stage_end_checkpoint)
    before = len(read_events(killed / "events.jsonl"))
    run_spec(spec_file, killed, resume=True)
    assert reproducible(read_json(killed / "metrics.json")) == reproducible(read_json(reference / "metrics.json"))
    resumed = read_events(killed / "events.jsonl")[before:]
    assert not [e for e in resumed if e["event"] in ("step_end", "epoch_start")], "the finished stage was trained again"
    assert read_json(killed / "state.json")["status"] == "completed"


class CrashInStage:
    """Fails the run at the ``nth`` event of stage ``stage`` (counting its stage_start): a crash inside any stage type."""

    def __init__(self, stage: str, nth: int) -> None:
        self.stage, self.nth, self.seen = stage, nth, 0

    def __getattr__(self, method: str) -> Any:
        if not method.startswith("on_"):
            raise AttributeError(method)
        return self._count

    def _count(self, event: str, data: dict[str, Any]) -> None:
        if data.get("stage") == self.stage:
            self.seen += 1
            if self.seen == self.nth:
                raise HoneError(f"crash injected at {event} of stage {self.stage}")


@pytest.mark.parametrize("stage_type", sorted(STAGE_EXAMPLES))
def test_a_crash_inside_any_stage_type_resumes_to_the_same_metrics(tmp_path: Path, tiny_bert: Path, stage_type: str) -> None:
    spec = with_stages(ner_spec(tiny_bert), tmp_path, "train", stage_type, "evaluate")
    spec["stages"][0]["checkpoint_steps"] = 4
    spec_file = write_spec(tmp_path, spec)
    expected = read_json(run_spec(spec_file, tmp_path / "reference") / "metrics.json")
    loaded, host = load_spec(spec_file)
    with pytest.raises(HoneError, match="crash injected"):
        # an export stage has two events (its start and end): it crashes at its end, after it wrote its folder
        run(loaded, host, out=tmp_path / "run", callbacks=[("crash", CrashInStage(f"1-{stage_type}", 2 if stage_type == "export" else 3))])
    assert read_json(tmp_path / "run" / "state.json")["status"] == "failed"
    run_spec(spec_file, tmp_path / "run", resume=True)
    harness = kill_harness()
    assert harness.comparable(read_json(tmp_path / "run" / "metrics.json")) == harness.comparable(expected)
    assert not harness.unreadable(tmp_path / "run", cut_last_line_ok=False)


def test_a_run_killed_while_starting_can_be_resumed(tmp_path: Path, tiny_bert: Path) -> None:
    spec_file = write_spec(tmp_path, ner_spec(tiny_bert, stages=[{"type": "evaluate", "split": "test"}]))
    spec, host = load_spec(spec_file)
    prepare_run_dir(spec, host, tmp_path / "run", resume=False)  # spec.yaml written, then killed: no state.json yet
    (tmp_path / "run" / ".state.json.abc123.tmp").write_text('{"stat')
    run(spec, host, out=tmp_path / "run", resume=True)
    assert read_json(tmp_path / "run" / "state.json")["status"] == "completed"


def test_resume_accepts_a_spec_saved_before_hone_gained_a_field(tmp_path: Path, tiny_bert: Path) -> None:
    spec_file = write_spec(tmp_path, ner_spec(tiny_bert))
    spec, host = load_spec(spec_file)
    prepare_run_dir(spec, host, tmp_path / "run", resume=False)
    saved = yaml.safe_load((tmp_path / "run" / "spec.yaml").read_text())
    for stage in saved["stages"]:
        stage.pop("on_nonfinite", None)
    (tmp_path / "run" / "spec.yaml").write_text(yaml.safe_dump(saved))
    assert prepare_run_dir(spec, host, tmp_path / "run", resume=True)["completed"] == []


def test_an_event_line_cut_by_a_kill_is_ended_before_the_next_event(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    EventLog(path).emit("run_start", name="a")
    with path.open("a") as handle:
        handle.write('{"time": 1.0, "event": "step_')
    EventLog(path).emit("run_start", name="resumed")
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["name"] == "resumed"
    assert [e["name"] for e in read_events(path)] == ["a", "resumed"]
