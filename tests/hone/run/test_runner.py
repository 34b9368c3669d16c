"""End-to-end runs: stages, run directory, reload, resume after a real kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hone.run.events import read_events
from hone.run.runner import run
from hone.spec.loading import load_spec

from tests.reproducible import reproducible

from tests.runs import ner_spec, write_spec


def run_spec(spec_file: Path, out: Path) -> Path:
    spec, host = load_spec(spec_file)
    return run(spec, host, out=out)


def test_multi_stage_run_writes_a_readable_run_directory(ner_spec_file: Path, tmp_path: Path) -> None:
    run_dir = run_spec(ner_spec_file, tmp_path / "run")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(metrics) == ["head", "all", "test"]
    test = metrics["test"]["test"]
    assert 0.0 <= test["entity_f1"] <= 1.0 and "entity_report" in test
    assert metrics["all"]["steps"] == 2 * 8  # 60 sentences / batch 8 = 8 steps per epoch
    events = [e["event"] for e in read_events(run_dir / "events.jsonl")]
    assert events[0] == "run_start" and events[-1] == "run_end"
    assert events.count("stage_end") == 3 and "checkpoint_saved" in events
    assert json.loads((run_dir / "state.json").read_text())["status"] == "completed"
    assert (run_dir / "model" / "model.safetensors").exists()
    assert (run_dir / "model" / "hone.json").exists()


def test_head_only_stage_leaves_the_encoder_unchanged(tmp_path: Path, tiny_bert: Path) -> None:
    from safetensors.torch import load_file

    spec = ner_spec(tiny_bert)
    spec["stages"] = spec["stages"][:1]
    run_dir = run_spec(write_spec(tmp_path, spec), tmp_path / "run")
    before, after = load_file(str(tiny_bert / "model.safetensors")), load_file(str(run_dir / "model" / "model.safetensors"))
    name = next(k for k in before if k.endswith("encoder.layer.0.attention.self.query.weight"))
    trained = next(k for k in after if k.endswith(name.split("bert.")[-1].removeprefix("bert.")))
    assert (before[name] == after[trained]).all()
    assert not (after["classifier.weight"] == 0).all()


def test_saved_model_loads_with_plain_transformers(ner_spec_file: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForTokenClassification

    run_dir = run_spec(ner_spec_file, tmp_path / "run")
    model = AutoModelForTokenClassification.from_pretrained(run_dir / "model")
    assert set(model.config.id2label.values()) >= {"O", "B-PER", "I-PER", "B-LOC"}


def test_an_existing_run_directory_is_never_overwritten(ner_spec_file: Path, tmp_path: Path) -> None:
    from hone.errors import HoneError

    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(HoneError, match="--resume"):
        run_spec(ner_spec_file, out)
    assert (out / "keep.txt").read_text() == "x"


def test_early_stopping_restores_the_best_weights(tmp_path: Path, tiny_bert: Path) -> None:
    spec = ner_spec(tiny_bert)
    spec["stages"] = [{
        "type": "train", "epochs": 6, "batch_size": 8, "optimizer": {"name": "sgd", "lr": 1e-9},
        "early_stopping": {"metric": "loss", "patience": 1, "min_delta": 0.5},
    }]
    run_dir = run_spec(write_spec(tmp_path, spec), tmp_path / "run")
    result = json.loads((run_dir / "metrics.json").read_text())["0-train"]
    assert result["early_stopped"] is True and result["restored_best"] is True
    assert result["steps"] == 2 * 8  # stopped after the second epoch: no improvement by min_delta


def test_non_finite_loss_stops_with_a_clear_message(tmp_path: Path, tiny_bert: Path) -> None:
    from hone_plugins.stages.train import TrainingError

    spec = ner_spec(tiny_bert)
    spec["stages"] = [{"type": "train", "batch_size": 8, "max_grad_norm": None, "optimizer": {"name": "sgd", "lr": 1e30}}]
    with pytest.raises(TrainingError, match="loss is (nan|inf)"):
        run_spec(write_spec(tmp_path, spec), tmp_path / "run")
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["status"] == "failed"


def _losses(run_dir: Path) -> dict[tuple[str, int], float]:
    return {(e["stage"], e["step"]): e["metrics"]["loss"] for e in read_events(run_dir / "events.jsonl") if e["event"] == "step_end"}


@pytest.mark.slow
def test_resume_after_kill_reproduces_the_uninterrupted_run(tmp_path: Path, tiny_bert: Path) -> None:
    spec = ner_spec(tiny_bert)
    spec["stages"][1]["epochs"] = 6
    spec["stages"][1]["checkpoint_steps"] = 3
    spec_file = write_spec(tmp_path, spec)
    reference = run_spec(spec_file, tmp_path / "reference")

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    hone = [sys.executable, "-m", "hone", "run", str(spec_file), "--out", str(tmp_path / "killed"), "-q"]
    process = subprocess.Popen(hone, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoints = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 120
    while not list(checkpoints.glob("stage1-step*")) and time.time() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    state = json.loads((tmp_path / "killed" / "state.json").read_text())
    assert state["status"] == "running", "the run finished before it could be killed"

    result = subprocess.run([*hone, "--resume"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert reproducible(json.loads((tmp_path / "killed" / "metrics.json").read_text())) == reproducible(json.loads((reference / "metrics.json").read_text()))
    expected = _losses(reference)
    logged = [e for e in read_events(tmp_path / "killed" / "events.jsonl") if e["event"] == "step_end"]
    assert {(e["stage"], e["step"]) for e in logged} == set(expected)
    assert all(e["metrics"]["loss"] == expected[(e["stage"], e["step"])] for e in logged)


@pytest.mark.slow
def test_two_process_data_parallel_run_keeps_replicas_in_sync(tmp_path: Path, tiny_bert: Path) -> None:
    spec = ner_spec(tiny_bert)
    spec["stages"] = [spec["stages"][1], spec["stages"][2]]
    spec_file = write_spec(tmp_path, spec)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
               "-m", "hone", "run", str(spec_file), "--out", str(tmp_path / "ddp"), "-q"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads((tmp_path / "ddp" / "state.json").read_text())
    assert state["status"] == "completed"
    assert state["distributed"]["world_size"] == 2 and state["distributed"]["in_sync"] is True
    assert state["results"]["all"]["steps"] == 2 * 4  # each rank takes half of the 8 batches an epoch


def test_a_fine_tuned_model_is_evaluated_with_its_own_head_and_labels(ner_spec_file: Path, tmp_path: Path) -> None:
    """An evaluate-only run (no train split) of a run's model scores exactly what the training run scored."""
    first = run_spec(ner_spec_file, tmp_path / "first")
    spec = ner_spec(first / "model")
    spec["data"] = {k: v for k, v in spec["data"].items() if k != "train"}
    spec["stages"] = spec["stages"][-1:]
    second = run_spec(write_spec(tmp_path, spec), tmp_path / "second")
    scored = json.loads((first / "metrics.json").read_text())["test"]["test"]
    again = json.loads((second / "metrics.json").read_text())["test"]["test"]
    assert again["entity_f1"] == pytest.approx(scored["entity_f1"]) and again["accuracy"] == pytest.approx(scored["accuracy"])
