"""The run directory: normal permissions, one directory per run, no leftovers, no writes through symlinks, and a
run that failed before any work can be started again where it was."""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from hone.atomic import WriteError, write_json, write_text
from hone.errors import HoneError
from hone.run.rundir import default_run_dir, prepare_run_dir
from hone.spec.loading import load_spec

from .helpers import NER_SAMPLE, ner_spec, read_json, write_spec

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Any:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_an_atomic_write_gives_the_permissions_of_a_plain_write(tmp_path: Path, umask_022: None) -> None:
    (tmp_path / "plain.txt").write_text("x")
    write_json(tmp_path / "metrics.json", {"a": 1})
    assert mode(tmp_path / "metrics.json") == mode(tmp_path / "plain.txt") == 0o644


def test_an_atomic_write_keeps_the_permissions_of_the_file_it_replaces(tmp_path: Path, umask_022: None) -> None:
    target = tmp_path / "state.json"
    target.write_text("{}")
    target.chmod(0o660)
    write_text(target, "{}")
    assert mode(target) == 0o660


def test_a_run_directory_is_readable_by_the_team(tmp_path: Path, tiny_bert: Path, umask_022: None) -> None:
    from hone.run.runner import run

    spec = ner_spec(tiny_bert, stages=[{"type": "evaluate", "name": "test", "split": "test", "metrics": ["accuracy"]}])
    loaded, host = load_spec(write_spec(tmp_path, spec))
    run_dir = run(loaded, host, out=tmp_path / "run")
    for name in ("spec.yaml", "state.json", "metrics.json", "events.jsonl"):
        assert mode(run_dir / name) == 0o644, name


def test_two_runs_of_one_spec_started_at_once_get_two_directories(tmp_path: Path, tiny_bert: Path) -> None:
    spec, _ = load_spec(write_spec(tmp_path, ner_spec(tiny_bert, output_dir=str(tmp_path / "runs"))))
    chosen: list[Path] = []
    start = threading.Barrier(8)

    def choose() -> None:
        start.wait()
        chosen.append(default_run_dir(spec, resume=False))

    threads = [threading.Thread(target=choose) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(chosen)) == 8 and all(path.is_dir() for path in chosen)
    assert default_run_dir(spec, resume=True) == tmp_path / "runs" / "reliability-8"


def started_run(tmp_path: Path, tiny_bert: Path) -> tuple[Any, Any, Path]:
    """A run directory as a run leaves it once it has begun (spec.yaml, state.json), with its spec and plugins."""
    spec, host = load_spec(write_spec(tmp_path, ner_spec(tiny_bert)))
    run_dir = tmp_path / "run"
    prepare_run_dir(spec, host, run_dir, resume=False)
    write_json(run_dir / "state.json", {"status": "interrupted", "completed": [0], "results": {}})
    return spec, host, run_dir


def test_resume_removes_the_temporary_files_a_kill_left(tmp_path: Path, tiny_bert: Path) -> None:
    spec, host, run_dir = started_run(tmp_path, tiny_bert)
    leftovers = [run_dir / ".metrics.json.k2j3.tmp", run_dir / ".state.json.8fa1.tmp", run_dir / "checkpoints" / ".stage0-step2.tmp"]
    (run_dir / ".model.tmp").mkdir()
    (run_dir / ".model.tmp" / "model.safetensors").write_bytes(b"half")
    for path in leftovers:
        path.parent.mkdir(exist_ok=True)
        path.write_text("half")
    (run_dir / "notes.tmp").write_text("the user's own file")
    prepare_run_dir(spec, host, run_dir, resume=True)
    assert sorted(p.name for p in run_dir.rglob(".*")) == []
    assert (run_dir / "notes.tmp").exists()


@pytest.mark.parametrize("link", ["events.jsonl", "checkpoints", "metrics.json", "checkpoints/stage0-end"])
def test_resume_refuses_a_symlink_out_of_the_run_directory(tmp_path: Path, tiny_bert: Path, link: str) -> None:
    spec, host, run_dir = started_run(tmp_path, tiny_bert)
    outside = tmp_path / "outside"
    outside.mkdir()
    (run_dir / link).parent.mkdir(parents=True, exist_ok=True)
    (run_dir / link).symlink_to(outside if "checkpoints" in link else outside / "file")
    with pytest.raises(HoneError, match="outside the run directory"):
        prepare_run_dir(spec, host, run_dir, resume=True)
    assert list(outside.iterdir()) == []


def test_a_symlink_inside_the_run_directory_is_fine(tmp_path: Path, tiny_bert: Path) -> None:
    spec, host, run_dir = started_run(tmp_path, tiny_bert)
    (run_dir / "latest-spec.yaml").symlink_to(run_dir / "spec.yaml")
    prepare_run_dir(spec, host, run_dir, resume=True)


def evaluate_only(tiny_bert: Path, **data: str) -> dict[str, Any]:
    spec = ner_spec(tiny_bert, stages=[{"type": "evaluate", "name": "test", "split": "test", "metrics": ["accuracy"]}])
    spec["data"].update(data)
    return spec


def test_a_run_that_failed_before_any_work_starts_again_in_its_folder(tmp_path: Path, tiny_bert: Path) -> None:
    from hone.run.runner import run

    broken, host = load_spec(write_spec(tmp_path, evaluate_only(tiny_bert, test=str(tmp_path / "absent.txt")), "broken.yaml"))
    with pytest.raises(HoneError):
        run(broken, host, out=tmp_path / "run")
    assert read_json(tmp_path / "run" / "state.json")["status"] == "failed"
    fixed, host = load_spec(write_spec(tmp_path, evaluate_only(tiny_bert), "fixed.yaml"))
    run(fixed, host, out=tmp_path / "run")  # a fresh run in the same folder
    assert read_json(tmp_path / "run" / "state.json")["status"] == "completed"


def test_resume_of_a_run_that_failed_before_any_work_takes_the_fixed_spec(tmp_path: Path, tiny_bert: Path) -> None:
    from hone.run.runner import run

    broken, host = load_spec(write_spec(tmp_path, evaluate_only(tiny_bert, test=str(tmp_path / "absent.txt")), "broken.yaml"))
    with pytest.raises(HoneError):
        run(broken, host, out=tmp_path / "run")
    fixed, host = load_spec(write_spec(tmp_path, evaluate_only(tiny_bert), "fixed.yaml"))
    run(fixed, host, out=tmp_path / "run", resume=True)
    assert read_json(tmp_path / "run" / "state.json")["status"] == "completed"
    assert str(NER_SAMPLE / "test.txt") in (tmp_path / "run" / "spec.yaml").read_text()


def test_a_run_that_did_work_is_still_protected(tmp_path: Path, tiny_bert: Path) -> None:
    spec, host, run_dir = started_run(tmp_path, tiny_bert)
    write_json(run_dir / "state.json", {"status": "failed", "completed": [], "results": {}})
    (run_dir / "events.jsonl").write_text(json.dumps({"event": "step_end", "step": 1}) + "\n")
    with pytest.raises(HoneError, match="already holds a run"):
        prepare_run_dir(spec, host, run_dir, resume=False)


def test_a_full_disk_at_the_final_save_is_one_line_and_resumable(tmp_path: Path, tiny_bert: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import hone_plugins.formats.compressed
    from hone.run.runner import run

    spec, host = load_spec(write_spec(tmp_path, ner_spec(tiny_bert)))
    real = hone_plugins.formats.compressed.save_model_weights

    def full(model: Any, folder: Path) -> None:
        real(model, folder)
        with (folder / "model.safetensors").open("r+b") as handle:
            handle.truncate(100)
        raise ENOSPC

    monkeypatch.setattr(hone_plugins.formats.compressed, "save_model_weights", full)
    with pytest.raises(WriteError, match=r"model: cannot write it \(No space left on device\)") as caught:
        run(spec, host, out=tmp_path / "run")
    assert "\n" not in str(caught.value)
    monkeypatch.undo()
    run_dir = tmp_path / "run"
    assert not (run_dir / ".model.tmp").exists() and not (run_dir / "model").exists()
    state = read_json(run_dir / "state.json")
    assert state["status"] == "failed" and state["completed"] == [0, 1]
    metrics = read_json(run_dir / "metrics.json")
    run(spec, host, out=run_dir, resume=True)
    assert read_json(run_dir / "state.json")["status"] == "completed"
    assert read_json(run_dir / "metrics.json") == metrics
    assert (run_dir / "model" / "hone.json").exists()
