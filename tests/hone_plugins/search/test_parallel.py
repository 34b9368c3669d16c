"""A search survives `kill -9`, runs in several worker processes, and across "machines" on a real PostgreSQL server."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import hone_env, hone_search

pytestmark = pytest.mark.slow
SPACE = {"stages[0].optimizer.lr": {"loguniform": [1e-4, 1e-2]}}


def _study(storage: str, name: str = "tiny-search") -> list[Any]:
    import optuna

    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def _run_starts(run_dir: Path) -> int:
    events = (run_dir / "events.jsonl").read_text().splitlines()
    return sum(json.loads(line)["event"] == "run_start" for line in events if line.strip())


def _check_complete(trials: list[Any], budget: int) -> list[Any]:
    """The budget's worth of complete trials, unique numbers, each trial's run made once."""
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == budget
    assert len({t.number for t in trials}) == len(trials)
    run_dirs = [t.user_attrs["run_dir"] for t in complete]
    assert len(set(run_dirs)) == budget
    return complete


def test_resume_after_kill_keeps_finished_trials_and_retries_the_interrupted_one(spec_file: Any, tmp_path: Path) -> None:
    spec = spec_file({"searcher": "random", "objectives": "test.accuracy", "trials": 3, "space": SPACE},
                     stages=[{"type": "train", "name": "all", "epochs": 4, "batch_size": 8, "logging_steps": 1},
                             {"type": "evaluate", "name": "test", "split": "test", "metrics": ["accuracy"]}])
    out = tmp_path / "search"
    env = hone_env(tmp_path)
    process = subprocess.Popen(hone_search(spec, out, "-q"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    events = out / "trials" / "1" / "events.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None and '"epoch_end"' not in (events.read_text() if events.exists() else ""):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    storage = f"sqlite:///{out / 'study.db'}"
    before = {t.number: t for t in _study(storage)}
    assert before[1].state.name == "RUNNING", "trial 1 finished before it could be killed"
    assert before[0].state.name == "COMPLETE"
    trial0_metrics = (out / "trials" / "0" / "metrics.json").read_text()

    result = subprocess.run(hone_search(spec, out), env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trial 1 was interrupted: it runs again" in result.stdout
    trials = _study(storage)
    complete = _check_complete(trials, 3)
    by_number = {t.number: t for t in trials}
    assert by_number[0].state.name == "COMPLETE" and by_number[0].values == before[0].values
    assert (out / "trials" / "0" / "metrics.json").read_text() == trial0_metrics
    assert by_number[1].state.name == "FAIL" and by_number[1].user_attrs["interrupted"] is True
    retry = next(t for t in complete if t.user_attrs.get("retry_of") == 1)
    assert retry.params == before[1].params
    assert all(_run_starts(Path(t.user_attrs["run_dir"])) == 1 for t in complete)
    summary = json.loads((out / "search.json").read_text())
    assert summary["status"] == "completed" and summary["counted"] == 3 and summary["retried"] == [1]


def test_two_workers_share_the_study_without_duplicates(spec_file: Any, tmp_path: Path) -> None:
    spec = spec_file({"searcher": "random", "objectives": "test.accuracy", "trials": 4, "space": SPACE})
    out = tmp_path / "search"
    result = subprocess.run(hone_search(spec, out, "--workers", "2"), env=hone_env(tmp_path), capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    trials = _study(f"sqlite:///{out / 'study.db'}")
    assert len(trials) == 4 and sorted(t.number for t in trials) == [0, 1, 2, 3]
    complete = _check_complete(trials, 4)
    assert len({t.user_attrs["owner"]["pid"] for t in complete}) == 2
    assert json.loads((out / "search.json").read_text())["status"] == "completed"


def _postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server on loopback (as a non-root user when run as root); skips without the binaries."""
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install hone-ml[postgres])")
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (initdb)")
    prefix: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="hone-pg-", dir="/tmp"))
    if os.geteuid() == 0:  # initdb refuses to run as root
        user = next((u for u in ("postgres", "nobody") if _user_exists(u)), None)
        runuser = shutil.which("runuser")
        if user is None or runuser is None:
            pytest.skip("running as root without a postgres/nobody user and runuser")
        prefix = [runuser, "-u", user, "--"]
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port, data, log = _free_port(), root / "data", root / "log"
    try:
        subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", "hone", "--auth=trust", "-E", "UTF8"],
                       check=True, capture_output=True, timeout=120)
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=50"
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start"],
                       check=True, capture_output=True, timeout=120)
        yield f"postgresql://hone@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def test_two_machines_share_a_postgresql_study(spec_file: Any, tmp_path: Path, postgres: str) -> None:
    spec = spec_file({"searcher": "tpe", "objectives": "test.accuracy", "trials": 4, "space": SPACE})
    env = hone_env(tmp_path)
    outs = [tmp_path / "machine-a", tmp_path / "machine-b"]
    # each process plays one machine: its own search directory, the one study on the server, started together
    processes = [subprocess.Popen(hone_search(spec, out, "--storage", postgres), env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for out in outs]
    results = [p.communicate(timeout=600) for p in processes]
    for process, (_, stderr) in zip(processes, results):
        assert process.returncode == 0, stderr[-3000:]
    trials = _study(postgres)
    complete = _check_complete(trials, 4)
    assert len(trials) == 4
    ran = [sorted(int(d.name) for d in (out / "trials").iterdir()) if (out / "trials").exists() else [] for out in outs]
    assert sorted(ran[0] + ran[1]) == [0, 1, 2, 3]  # every trial ran on exactly one machine
    for out in outs:
        summary = json.loads((out / "search.json").read_text())
        assert summary["counted"] == 4 and summary["storage"].startswith("postgresql://hone@127.0.0.1")
    assert all(_run_starts(Path(t.user_attrs["run_dir"])) == 1 for t in complete)
