"""A full disk while writing: a clear error, and no half-written file ever replaces a good one."""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hone.atomic import WriteError, write_json, write_text, write_with
from hone.run.checkpoint import CheckpointError
from hone.errors import HoneError
from hone.run.events import EventLog, read_events
from hone.run.runner import run
from hone.spec.loading import load_spec

from .helpers import checkpoints_in, ner_spec, read_json, subprocess_env, write_spec

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def half_then_full(real: Any) -> Any:
    """A ``Path.write_text`` that writes half of the data, then finds the disk full."""

    def write(self: Path, data: str, *args: Any, **kwargs: Any) -> int:
        real(self, data[: len(data) // 2], *args, **kwargs)
        raise ENOSPC

    return write


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_failed_json_write_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "metrics.json"
    write_json(target, {"good": 1})
    monkeypatch.setattr(Path, "write_text", half_then_full(Path.write_text))
    with pytest.raises(WriteError, match=rf"{target}: cannot write it \(No space left on device\); the previous version"):
        write_json(target, {"new": 2})
    monkeypatch.undo()
    assert read_json(target) == {"good": 1}
    assert leftovers(tmp_path) == []


def test_a_failed_first_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Path, "write_text", half_then_full(Path.write_text))
    with pytest.raises(WriteError):
        write_text(tmp_path / "state.json", "{}")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("error", [ENOSPC, RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")])
def test_a_failed_binary_write_keeps_the_previous_file(tmp_path: Path, error: Exception) -> None:
    target = tmp_path / "best-stage0.safetensors"
    write_with(target, lambda p: p.write_bytes(b"good"))

    def writer(path: Path) -> None:
        path.write_bytes(b"ha")
        raise error

    with pytest.raises(WriteError, match="cannot write it"):
        write_with(target, writer)
    assert target.read_bytes() == b"good" and leftovers(tmp_path) == []


def test_a_checkpoint_that_cannot_be_written_leaves_the_previous_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    checkpoints = checkpoints_in(tmp_path)
    checkpoints.save("stage0-step0000001", torch.nn.Linear(2, 2), {"step": 1})
    real_save = torch.save

    def save(obj: Any, path: Any, *args: Any, **kwargs: Any) -> None:
        Path(path).write_bytes(b"PK\x03\x04 half")
        raise ENOSPC

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(CheckpointError, match=r"stage0-step0000002: cannot write the checkpoint \(No space left on device\); the previous"):
        checkpoints.save("stage0-step0000002", torch.nn.Linear(2, 2), {"step": 2})
    monkeypatch.setattr(torch, "save", real_save)
    assert checkpoints.history() == ["stage0-step0000001"]
    assert checkpoints.latest_good() == tmp_path / "stage0-step0000001"
    assert leftovers(tmp_path) == []


def test_an_event_that_cannot_be_appended_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    log.emit("run_start", name="a")
    real_open = Path.open

    def full_open(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "a" in mode:
            raise ENOSPC
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", full_open)
    with pytest.raises(HoneError, match=r"events.jsonl: cannot append the 'step_end' event \(No space left on device\)"):
        log.emit("step_end", stage="s", step=1, metrics={})
    monkeypatch.undo()
    assert [e["event"] for e in read_events(tmp_path / "events.jsonl")] == ["run_start"]


def test_a_run_whose_disk_fills_keeps_its_last_good_results_and_resumes(tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec_file = write_spec(tmp_path, ner_spec(tiny_bert))
    spec, host = load_spec(spec_file)
    import hone.run.runner

    real = hone.run.runner.write_json

    def full_for_the_second_metrics(path: Path, data: Any) -> None:
        if path.name == "metrics.json" and "test" in data:
            raise WriteError(path, ENOSPC)
        real(path, data)

    monkeypatch.setattr(hone.run.runner, "write_json", full_for_the_second_metrics)
    with pytest.raises(WriteError, match="metrics.json: cannot write it"):
        run(spec, host, out=tmp_path / "run")
    monkeypatch.undo()
    assert list(read_json(tmp_path / "run" / "metrics.json")) == ["train"]
    state = read_json(tmp_path / "run" / "state.json")
    assert state["status"] == "failed" and state["completed"] == [0] and "No space left" in state["error"]
    assert read_events(tmp_path / "run" / "events.jsonl")[-1]["event"] == "run_failed"
    run(spec, host, out=tmp_path / "run", resume=True)
    assert list(read_json(tmp_path / "run" / "metrics.json")) == ["train", "test"]


def limit_file_size(limit: int) -> Any:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit then fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
def test_a_real_write_failure_in_a_subprocess_is_one_line_and_resumable(tmp_path: Path, tiny_bert: Path) -> None:
    spec = ner_spec(tiny_bert)
    spec["stages"][0]["checkpoint_steps"] = 2
    spec_file = write_spec(tmp_path, spec)
    command = [sys.executable, "-m", "hone", "run", str(spec_file), "--out", str(tmp_path / "run"), "-q"]
    weights = (tiny_bert / "model.safetensors").stat().st_size
    limited = subprocess.run(command, capture_output=True, text=True, env=subprocess_env(tmp_path), timeout=300, check=False,
                             preexec_fn=limit_file_size(weights // 2))
    assert limited.returncode == 2, limited.stderr
    assert "Traceback" not in limited.stderr
    error = [line for line in limited.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "cannot write the checkpoint" in error[0] and "File too large" in error[0]
    assert error[0].endswith("the previous checkpoints are kept")
    assert read_json(tmp_path / "run" / "state.json")["status"] == "failed"
    assert not list((tmp_path / "run" / "checkpoints").glob(".*"))
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, env=subprocess_env(tmp_path), timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((tmp_path / "run" / "state.json").read_text())["status"] == "completed"
