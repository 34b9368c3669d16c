"""Whole runs of each task through `hone run` and `hone predict`, on tiny models."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hone.cli import main
from hone.run.events import read_events

from tests.runs import REPO, ner_spec, predict, write_spec

SENTIMENT = REPO / "examples" / "data" / "sentiment-sample.tsv"


def test_sequence_classification_from_one_file_split_by_ratio(tmp_path: Path, tiny_bert: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = {
        "name": "sentiment", "model": str(tiny_bert), "task": {"name": "sequence-classification", "max_length": 32},
        "data": {"reader": "tsv", "path": str(SENTIMENT), "split": [0.5, 0.25, 0.25]},
        "stages": [
            {"type": "train", "epochs": 2, "batch_size": 8, "gradient_accumulation_steps": 2, "dropout": 0.0,
             "optimizer": {"name": "adamw", "lr": 1e-3}},
            {"type": "evaluate", "split": "test", "metrics": ["accuracy", "f1", "classification-report"]},
        ],
    }
    assert main(["run", str(write_spec(tmp_path, spec)), "--out", str(tmp_path / "run"), "-q"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["0-train"]["steps"] == 2 * 3  # 40 examples, batches of 8 -> 5 batches, 3 optimizer steps an epoch
    test = metrics["1-evaluate"]["test"]
    assert 0.0 <= test["accuracy"] <= 1.0 and set(test["classification_report"]) <= {"0", "1"}
    [result] = predict(tmp_path / "run", [{"text": "a great film"}], capsys)
    assert result["label"] in {"0", "1"} and abs(sum(result["probabilities"].values()) - 1.0) < 1e-5


def test_causal_lm_fine_tunes_reports_perplexity_and_generates(tmp_path: Path, tiny_gpt2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": "john smith lives in paris ."}) + "\n" for _ in range(24)))
    spec = {
        "name": "lm", "model": str(tiny_gpt2), "task": {"name": "causal-lm", "max_length": 16},
        "data": {"reader": "jsonl", "train": str(corpus), "validation": str(corpus)},
        "stages": [{"type": "train", "epochs": 20, "batch_size": 8, "optimizer": {"name": "adamw", "lr": 5e-3}},
                   {"type": "evaluate", "split": "validation"}],
    }
    assert main(["run", str(write_spec(tmp_path, spec)), "--out", str(tmp_path / "run"), "-q"]) == 0
    evaluation = json.loads((tmp_path / "run" / "metrics.json").read_text())["1-evaluate"]["validation"]
    assert evaluation["perplexity"] < 3.0  # memorised: far below the vocabulary size
    [result] = predict(tmp_path / "run", [{"prompt": "john smith"}], capsys, "--max-new-tokens", "12")
    assert result["generated"].startswith("lives in paris")


def test_predict_returns_entity_spans_with_character_offsets(tmp_path: Path, tiny_bert: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = ner_spec(tiny_bert)
    spec["stages"] = [spec["stages"][1]]
    assert main(["run", str(write_spec(tmp_path, spec)), "--out", str(tmp_path / "run"), "-q"]) == 0
    text = "Peter Blackburn flew to London ."
    [result] = predict(tmp_path / "run", [{"text": text}], capsys)
    assert result["tokens"] == text.split() and len(result["tags"]) == len(text.split())
    for entity in result["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"] and 0.0 <= entity["score"] <= 1.0
    [strict] = predict(tmp_path / "run", [{"text": text}], capsys, "--threshold", "1.01")
    assert strict["entities"] == []


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_resume_finishes_the_run(tmp_path: Path, tiny_bert: Path) -> None:
    spec = ner_spec(tiny_bert)
    spec["stages"][1]["epochs"] = 8
    spec_file = write_spec(tmp_path, spec)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "hone", "run", str(spec_file), "--out", str(tmp_path / "run"), "-q"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    events = tmp_path / "run" / "events.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if events.exists() and any(e.get("stage") == "all" and e["event"] == "step_end" for e in read_events(events)):
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "--resume" in stderr
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["status"] == "interrupted"
    assert any(e["event"] == "checkpoint_saved" and e["stage"] == "all" for e in read_events(events))
    resumed = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((tmp_path / "run" / "state.json").read_text())["status"] == "completed"
