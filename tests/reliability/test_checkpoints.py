"""Damaged checkpoints: detected by checksum, named in a warning, the previous good one used."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from hone.run.checkpoint import Checkpoints
from hone.errors import HoneError
from hone.run.events import read_events
from hone.run.runner import run
from hone.spec.loading import load_spec

from tests.reproducible import reproducible

from .helpers import checkpoints_in, ner_spec, read_json, write_spec


class CrashAfter:
    """A listener that fails the run once the checkpoint of ``step`` is saved: a crash at a known point."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_checkpoint_saved(self, event: str, data: dict[str, Any]) -> None:
        if data["step"] == self.step:
            raise HoneError(f"crash injected after the checkpoint of step {self.step}")


def checkpointed_spec(tmp_path: Path, tiny_bert: Path) -> Path:
    spec = ner_spec(tiny_bert)
    spec["stages"][0].update(epochs=2, checkpoint_steps=2)
    return write_spec(tmp_path, spec)


def run_spec(spec_file: Path, out: Path, resume: bool = False, crash_after: int | None = None) -> Path:
    spec, host = load_spec(spec_file)
    extra = [("crash", CrashAfter(crash_after))] if crash_after else []
    return run(spec, host, out=out, resume=resume, callbacks=extra)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("reference")
    spec_file = checkpointed_spec(root, tiny_bert)
    return spec_file, read_json(run_spec(spec_file, root / "run") / "metrics.json")


def crashed_run(spec_file: Path, out: Path, step: int) -> Path:
    with pytest.raises(HoneError, match="crash injected"):
        run_spec(spec_file, out, crash_after=step)
    assert read_json(out / "state.json")["status"] == "failed"
    return out / "checkpoints"


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {
    "truncated-weights": ("model.safetensors", truncate, "checksum mismatch"),
    "flipped-byte-in-training-state": ("training_state.pt", flip_a_byte, "checksum mismatch"),
    "missing-weights": ("model.safetensors", Path.unlink, "missing from checkpoint"),
    "missing-manifest": ("manifest.json", Path.unlink, "no manifest.json"),
}


@pytest.mark.parametrize("damage", ["truncated-weights", "flipped-byte-in-training-state"])
def test_a_damaged_newest_checkpoint_is_named_and_the_previous_one_used(
    reference: tuple[Path, dict[str, Any]], tmp_path: Path, damage: str
) -> None:
    spec_file, expected = reference
    checkpoints = crashed_run(spec_file, tmp_path / "run", step=6)
    assert Checkpoints(checkpoints).history() == ["stage0-step0000004", "stage0-step0000006"]
    name, damage_file, problem = DAMAGE[damage]
    damage_file(checkpoints / "stage0-step0000006" / name)
    before = len(read_events(tmp_path / "run" / "events.jsonl"))
    with pytest.warns(UserWarning, match=rf"stage0-step0000006.*{problem}.*falling back to the previous checkpoint"):
        run_spec(spec_file, tmp_path / "run", resume=True)
    resumed = [e for e in read_events(tmp_path / "run" / "events.jsonl")[before:] if e["event"] == "stage_start"]
    assert resumed[0]["resumed_at_step"] == 4
    assert reproducible(read_json(tmp_path / "run" / "metrics.json")) == reproducible(expected)
    assert read_json(tmp_path / "run" / "state.json")["status"] == "completed"


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_every_kind_of_damage_is_reported_with_the_file(tmp_path: Path, damage: str) -> None:
    import torch

    checkpoints = checkpoints_in(tmp_path)
    checkpoints.save("stage0-step0000001", torch.nn.Linear(2, 2), {"step": 1})
    checkpoints.save("stage0-step0000002", torch.nn.Linear(2, 2), {"step": 2})
    name, damage_file, problem = DAMAGE[damage]
    damage_file(tmp_path / "stage0-step0000002" / name)
    warnings: list[str] = []
    assert checkpoints.latest_good(warn=warnings.append) == tmp_path / "stage0-step0000001"
    assert len(warnings) == 1 and str(tmp_path / "stage0-step0000002") in warnings[0] and problem in warnings[0]


def test_resume_refuses_when_no_checkpoint_holds_the_finished_stages(reference: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    spec_file, _ = reference
    spec, _ = load_spec(spec_file)
    two_stages = ner_spec(Path(spec.model.source))
    two_stages["stages"] = [dict(two_stages["stages"][0], name="first"), dict(two_stages["stages"][0], name="second", checkpoint_steps=2)]
    spec_file = write_spec(tmp_path, two_stages)
    checkpoints = crashed_run(spec_file, tmp_path / "run", step=6)
    assert read_json(tmp_path / "run" / "state.json")["completed"] == [0]
    for tag in Checkpoints(checkpoints).history():  # stage 0's end checkpoint was pruned: only stage 1's are left
        truncate(checkpoints / tag / "model.safetensors")
    with pytest.warns(UserWarning, match="checksum mismatch"), pytest.raises(HoneError, match="no usable checkpoint"):
        run_spec(spec_file, tmp_path / "run", resume=True)


def test_a_checkpoint_left_half_written_is_never_in_the_history(tmp_path: Path) -> None:
    import torch

    checkpoints = checkpoints_in(tmp_path / "checkpoints")
    model = torch.nn.Linear(2, 2)
    checkpoints.save("stage0-step0000001", model, {"step": 1})
    (tmp_path / "checkpoints" / ".stage0-step0000002.tmp").mkdir()  # a kill during the second save
    (tmp_path / "checkpoints" / ".stage0-step0000002.tmp" / "model.safetensors").write_bytes(b"\x00" * 10)
    assert checkpoints.latest_good() == tmp_path / "checkpoints" / "stage0-step0000001"
    checkpoints.save("stage0-step0000002", model, {"step": 2})
    assert not (tmp_path / "checkpoints" / ".stage0-step0000002.tmp").exists()
    shutil.rmtree(tmp_path / "checkpoints" / "stage0-step0000002")  # a kill between rmtree and rename of a re-save
    warnings: list[str] = []
    assert checkpoints.latest_good(warn=warnings.append) == tmp_path / "checkpoints" / "stage0-step0000001"
    assert len(warnings) == 1 and "stage0-step0000002: no manifest.json" in warnings[0]
