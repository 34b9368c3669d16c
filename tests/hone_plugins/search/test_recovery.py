"""A search whose process or worker dies between or inside trials: every grid point still runs, no trial is lost,
and the search finishes (never waits for a dead worker)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import hone_env, hone_search

EVALUATE_ONLY = [{"type": "evaluate", "name": "test", "split": "test", "metrics": ["accuracy"]}]
GRID = {"searcher": "grid", "objectives": "test.accuracy", "space": {"seed": list(range(10))}}

# A plugins-dir module that SIGKILLs `hone search` at the start of trial $KILL_AT: the trial exists in the study (a grid
# sampler has given it its point) but has recorded nothing yet, as when a kill lands just after the previous trial ended.
KILLER = '''
import os, signal
from pathlib import Path

from hone_plugins.search import study

real = study.Objective.__call__


def call(self, trial):
    mark = Path(os.environ["KILL_MARK"])
    if trial.number == int(os.environ["KILL_AT"]) and not mark.exists():
        mark.write_text("killed")
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, trial)


study.Objective.__call__ = call
'''


def trials(out: Path) -> list[Any]:
    import optuna

    return optuna.load_study(study_name="tiny-search", storage=f"sqlite:///{out / 'study.db'}").get_trials(deepcopy=False)


def assert_every_point_ran(out: Path, points: int = 10) -> None:
    complete = [t for t in trials(out) if t.state.name == "COMPLETE"]
    assert sorted(t.params["seed"] for t in complete if "duplicate_of" not in t.user_attrs) == list(range(points))
    assert json.loads((out / "search.json").read_text())["status"] == "completed"


def test_a_grid_trial_killed_before_it_recorded_its_point_runs_again(spec_file: Any, tmp_path: Path) -> None:
    """In process: the study as a kill between two trials leaves it: the next trial created, its grid point given,
    nothing recorded (no owner, no parameters)."""
    from hone_plugins.search.command import _claim, prepare, search_command
    from hone_plugins.search.study import make_sampler, open_study

    spec = spec_file(dict(GRID, space={"seed": [0, 1, 2, 3]}), stages=EVALUATE_ONLY)
    out = tmp_path / "search"
    search = prepare(spec, out=out, quiet=True)
    _claim(search, resume=False).close()
    open_study(search, make_sampler(search.spec, search.host, search.space)).ask()
    summary = search_command(spec, out, quiet=True)
    assert summary is not None
    assert_every_point_ran(out, 4)
    assert trials(out)[0].state.name == "FAIL" and trials(out)[0].user_attrs["interrupted"] is True


def test_a_grid_trial_killed_mid_run_is_retried_at_its_point(spec_file: Any, tmp_path: Path) -> None:
    """In process: the study as a kill mid-trial leaves it, with one grid point left after the killed one: its retry
    keeps the grid point (an enqueued trial without one broke Optuna's grid sampler when it finished)."""
    from hone_plugins.search.command import _claim, prepare, search_command
    from hone_plugins.search.recovery import OWNER, owner
    from hone_plugins.search.study import Objective, make_sampler, open_study

    spec = spec_file(dict(GRID, space={"seed": [0, 1, 2]}), stages=EVALUATE_ONLY)
    out = tmp_path / "search"
    search = prepare(spec, out=out, quiet=True)
    _claim(search, resume=False).close()
    study = open_study(search, make_sampler(search.spec, search.host, search.space))
    study.optimize(Objective(search, study, None, lambda line: None), n_trials=1)
    killed = study.ask()
    search.space.suggest(killed)
    killed.set_user_attr(OWNER, owner(out))
    assert search_command(spec, out, quiet=True) is not None
    assert_every_point_ran(out, 3)
    lost, retry = trials(out)[killed.number], next(t for t in trials(out) if t.user_attrs.get("retry_of") == killed.number)
    assert lost.state.name == "FAIL" and lost.user_attrs["interrupted"] is True
    assert retry.params == lost.params and retry.system_attrs["grid_id"] == lost.system_attrs["grid_id"]


def killing_plugin(tmp_path: Path) -> Path:
    folder = tmp_path / "killer"
    folder.mkdir(exist_ok=True)
    (folder / "kill_at_trial.py").write_text(textwrap.dedent(KILLER))
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", [1, 5, 9])
def test_a_kill_between_two_trials_of_a_grid_loses_no_point(spec_file: Any, tmp_path: Path, kill_at: int) -> None:
    spec = spec_file(GRID, stages=EVALUATE_ONLY)
    out = tmp_path / "search"
    env = {**hone_env(tmp_path), "KILL_AT": str(kill_at), "KILL_MARK": str(tmp_path / "killed")}
    command = hone_search(spec, out, "-q", "--no-report")
    command[3:3] = ["--plugins-dir", str(killing_plugin(tmp_path))]
    killed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    running = [t for t in trials(out) if t.state.name == "RUNNING"]
    assert [(t.number, t.params) for t in running] == [(kill_at, {})]  # killed before it recorded its point
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert_every_point_ran(out)
    lost = next(t for t in trials(out) if t.number == kill_at)
    assert lost.state.name == "FAIL" and lost.user_attrs["interrupted"] is True
    assert any(t.user_attrs.get("retry_of") == kill_at and t.state.name == "COMPLETE" for t in trials(out))


# A plugins-dir module that holds the first trial to finish a training step (in any worker) until the test kills that
# worker: the kill lands mid-training, whatever the machine's speed. HOLD_MARK gets "<pid> <trial number>".
HOLDER = '''
import os, time
from pathlib import Path

from hone_plugins.search import study


def on_step_end(self, event, data):
    try:
        os.close(os.open(os.environ["HOLD_MARK"] + ".claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    Path(os.environ["HOLD_MARK"] + ".tmp").write_text(f"{os.getpid()} {self.trial.number}")
    os.rename(os.environ["HOLD_MARK"] + ".tmp", os.environ["HOLD_MARK"])
    time.sleep(600)


study.TrialReporter.on_step_end = on_step_end
'''


@pytest.mark.slow
def test_a_worker_killed_mid_trial_is_noticed_and_its_trial_retried(spec_file: Any, tmp_path: Path) -> None:
    stages = [{"type": "train", "name": "all", "epochs": 1, "batch_size": 4, "logging_steps": 1},
              {"type": "evaluate", "name": "test", "split": "test", "metrics": ["accuracy"]}]
    spec = spec_file(dict(GRID, space={"seed": list(range(3))}), stages=stages)
    out, mark, plugins = tmp_path / "search", tmp_path / "holding", tmp_path / "holder"
    plugins.mkdir()
    (plugins / "hold_first_step.py").write_text(textwrap.dedent(HOLDER))
    command = hone_search(spec, out, "--workers", "2", "--no-report")
    command[3:3] = ["--plugins-dir", str(plugins)]
    process = subprocess.Popen(command, env={**hone_env(tmp_path), "HOLD_MARK": str(mark)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not mark.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    if not mark.exists():
        process.kill()
        pytest.fail(f"no trial started training: {process.communicate()[1][-2000:]}")
    pid, victim = map(int, mark.read_text().split())
    os.kill(pid, signal.SIGKILL)
    try:
        stdout, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the search did not finish after one of its workers was killed")
    assert process.returncode == 0, stderr[-3000:]
    assert f"trial {victim} was interrupted" in stdout
    assert_every_point_ran(out, 3)
    dead = next(t for t in trials(out) if t.number == victim)
    assert dead.state.name == "FAIL" and dead.user_attrs["interrupted"] is True
    assert any(t.user_attrs.get("retry_of") == victim and t.state.name == "COMPLETE" for t in trials(out))
