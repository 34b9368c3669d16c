"""NaN/inf losses: stop with a clear message keeping the last good checkpoint, or skip the batch."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from hone.run.checkpoint import Checkpoints
from hone.errors import HoneError
from hone.run.events import read_events
from hone.run.runner import run
from hone_plugins.stages.train import TrainingError
from hone.spec.loading import SpecError, load_spec

from tests.reproducible import reproducible

from .helpers import ner_spec, read_json, write_plugin, write_spec

# A task whose loss is NaN for every batch holding the word "germany" (5 of the 60 sample sentences):
# broken data that training should step over, reproducibly across a resume.
POISONED_TASK = '''
from hone.hookspecs import hookimpl
from hone_plugins.tasks import TokenClassificationParams
from hone_plugins.tasks.token_classification import TokenClassification


class Poisoned(TokenClassification):
    def encode(self, examples, tokenizer, labels):
        self.poison = tokenizer.convert_tokens_to_ids("germany")
        return super().encode(examples, tokenizer, labels)

    def loss(self, outputs, batch, label_smoothing=0.0):
        loss = super().loss(outputs, batch, label_smoothing)
        return loss * float("nan") if bool((batch["input_ids"] == self.poison).any()) else loss


def poisoned(params):
    """Token classification with a NaN loss on batches holding 'germany'."""
    return Poisoned(params.max_length, params.label_all_tokens)


@hookimpl
def register_tasks(register):
    register("poisoned-ner", poisoned, TokenClassificationParams)
'''


class CrashAfter:
    def __init__(self, step: int) -> None:
        self.step = step

    def on_checkpoint_saved(self, event: str, data: dict[str, Any]) -> None:
        if data["step"] == self.step:
            raise HoneError("crash injected")


def poisoned_spec(tmp_path: Path, tiny_bert: Path, on_nonfinite: str | None) -> Path:
    write_plugin(tmp_path / "plugins", "poisoned_task", POISONED_TASK)
    spec = ner_spec(tiny_bert, plugins_dir=["plugins"], task={"name": "poisoned-ner", "max_length": 48})
    spec["stages"][0].update(epochs=2, checkpoint_steps=1, **({"on_nonfinite": on_nonfinite} if on_nonfinite else {}))
    return write_spec(tmp_path, spec)


def run_spec(spec_file: Path, out: Path, resume: bool = False, callbacks: Any = ()) -> Path:
    spec, host = load_spec(spec_file)
    return run(spec, host, out=out, resume=resume, callbacks=callbacks)


def test_by_default_a_nan_loss_stops_the_stage_and_keeps_the_last_good_checkpoint(tmp_path: Path, tiny_bert: Path) -> None:
    spec_file = poisoned_spec(tmp_path, tiny_bert, None)
    with pytest.raises(TrainingError, match=r"stage 'train': loss is nan at epoch 0, batch \d+ \(step (\d+)\); lower the learning rate") as info:
        run_spec(spec_file, tmp_path / "run")
    state = read_json(tmp_path / "run" / "state.json")
    assert state["status"] == "failed" and "loss is nan" in state["error"]
    assert read_events(tmp_path / "run" / "events.jsonl")[-1]["event"] == "run_failed"
    step = int(str(info.value).split("(step ")[1].split(")")[0])
    assert step > 0  # the poisoned sentences are not all in the first batch
    assert Checkpoints(tmp_path / "run" / "checkpoints").latest_good() == tmp_path / "run" / "checkpoints" / f"stage0-step{step:07d}"


def test_skip_steps_over_nan_batches_and_counts_them(tmp_path: Path, tiny_bert: Path) -> None:
    run_dir = run_spec(poisoned_spec(tmp_path, tiny_bert, "skip"), tmp_path / "run")
    result = read_json(run_dir / "metrics.json")["train"]
    events = read_events(run_dir / "events.jsonl")
    skipped = [e for e in events if e["event"] == "batch_skipped"]
    assert 0 < result["skipped_batches"] == len(skipped) < 16
    assert sum(e["skipped_batches"] for e in events if e["event"] == "epoch_end") == len(skipped)
    assert all(e["loss"] == "nan" and e["stage"] == "train" for e in skipped)
    assert result["steps"] == 16  # the optimizer schedule is unchanged
    losses = [e["metrics"].get("loss") for e in events if e["event"] == "step_end"]
    assert all(loss is None or math.isfinite(loss) for loss in losses)
    from safetensors.torch import load_file

    assert all(bool(t.isfinite().all()) for t in load_file(str(run_dir / "model" / "model.safetensors")).values())
    assert read_json(run_dir / "state.json")["status"] == "completed"


def test_skipped_batches_survive_a_resume(tmp_path: Path, tiny_bert: Path) -> None:
    spec_file = poisoned_spec(tmp_path, tiny_bert, "skip")
    expected = read_json(run_spec(spec_file, tmp_path / "reference") / "metrics.json")
    with pytest.raises(HoneError, match="crash injected"):
        run_spec(spec_file, tmp_path / "run", callbacks=[("crash", CrashAfter(11))])
    run_spec(spec_file, tmp_path / "run", resume=True)
    assert reproducible(read_json(tmp_path / "run" / "metrics.json")) == reproducible(expected)


def test_skip_still_stops_when_every_batch_of_an_epoch_is_nan(tmp_path: Path, tiny_bert: Path) -> None:
    spec = ner_spec(tiny_bert)
    spec["stages"][0].update(epochs=2, max_grad_norm=None, on_nonfinite="skip", optimizer={"name": "sgd", "lr": 1e30})
    with pytest.raises(TrainingError, match="every batch of epoch 1 had a non-finite loss"):
        run_spec(write_spec(tmp_path, spec), tmp_path / "run")
    assert read_json(tmp_path / "run" / "state.json")["status"] == "failed"


def test_on_nonfinite_accepts_only_stop_or_skip(tmp_path: Path, tiny_bert: Path) -> None:
    spec = ner_spec(tiny_bert)
    spec["stages"][0]["on_nonfinite"] = "ignore"
    with pytest.raises(SpecError, match=r"stages\[0\]\.on_nonfinite: Input should be 'stop' or 'skip'"):
        load_spec(write_spec(tmp_path, spec))
