"""Compress stages end to end on the tiny model: reports, the saved model reloading with identical
outputs (``hone predict`` and resume), accuracy budgets, and gradual pruning in a train stage."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import hone.run.runner
import pytest
import torch
from hone.errors import HoneError, Interrupted
from hone.plugins import load_plugins
from hone.run.events import read_events
from hone.run.runner import run
from hone.spec.loading import SpecError, load_spec, validate_spec
from hone_plugins.stages.compress import BudgetError

from tests.conftest import REPO
from tests.reproducible import reproducible
from tests.runs import ner_spec, write_spec

HEAD = {"type": "train", "name": "head", "epochs": 1, "batch_size": 8, "train_only": ["classifier.*"],
        "optimizer": {"name": "adamw", "lr": 1e-2}, "logging_steps": 1}
TEST = {"type": "evaluate", "name": "test", "split": "test", "metrics": ["entity-f1", "accuracy"]}
SENTENCES = ["Peter Blackburn flew from Paris to London .", "the EU rejects German call to boycott British lamb ."]


def spec_with(tiny_bert: Path, *stages: dict[str, Any]) -> dict[str, Any]:
    return ner_spec(tiny_bert, device="cpu", stages=list(stages))


def run_capturing(tmp_path: Path, spec: dict[str, Any], monkeypatch: pytest.MonkeyPatch, out: str = "run",
                  **kwargs: Any) -> tuple[Path, dict[str, Any]]:
    """Run ``spec``; also return the in-memory model the run saved (to compare with what reloads)."""
    captured: dict[str, Any] = {}
    save = hone.run.rundir.save_model

    def save_and_capture(run_dir: Path, model: Any, *args: Any) -> Path:
        captured["model"] = model
        return save(run_dir, model, *args)

    monkeypatch.setattr(hone.run.runner, "save_model", save_and_capture)
    parsed, host = load_spec(write_spec(tmp_path, spec))
    return run(parsed, host, out=tmp_path / out, **kwargs), captured


def logits(model: Any, tokenizer: Any) -> torch.Tensor:
    encoding = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.inference_mode():
        return model(**{k: v for k, v in encoding.items()}).logits.float()


def predict_cli(run_dir: Path, tmp_path: Path) -> list[dict[str, Any]]:
    from hone.cli import main

    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps({"text": s}) + "\n" for s in SENTENCES))
    assert main(["predict", str(run_dir), "--input", str(source), "--output", str(target), "--device", "cpu"]) == 0
    return [json.loads(line) for line in target.read_text().splitlines()]


needs_torchao = pytest.mark.skipif(importlib.util.find_spec("torchao") is None, reason="torchao is not installed")
COMPRESSORS = [
    {"name": "magnitude", "sparsity": 0.5},
    {"name": "structured", "heads_fraction": 0.5, "ffn_fraction": 0.5, "calibration_batches": 2, "batch_size": 4},
    {"name": "dynamic-int8"},
    {"name": "weight-int8"},
    {"name": "half", "dtype": "bf16"},
    {"name": "wanda", "sparsity": 0.5, "calibration_batches": 2, "batch_size": 4},
    pytest.param({"name": "int8-weight-only"}, marks=needs_torchao),
    pytest.param({"name": "float8-weight-only"}, marks=needs_torchao),
]


def _name(case: Any) -> str:
    return (case if isinstance(case, dict) else case.values[0])["name"]


@pytest.mark.parametrize("compressor", COMPRESSORS, ids=[_name(c) for c in COMPRESSORS])
def test_compressed_run_reports_and_reloads_with_identical_outputs(
        tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch, compressor: dict[str, Any]) -> None:
    from hone_plugins.commands.predict import load_predictor

    spec = spec_with(tiny_bert, HEAD, {"type": "compress", "name": "compress", "compressor": compressor}, TEST)
    run_dir, captured = run_capturing(tmp_path, spec, monkeypatch)
    result = json.loads((run_dir / "metrics.json").read_text())["compress"]
    assert result["compressor"] == compressor["name"] and result["changes"]
    before, after = result["before"], result["after"]
    if compressor["name"] in ("magnitude", "wanda"):
        assert after["nonzero"] < 0.75 * before["nonzero"] and after["parameters"] == before["parameters"]
    else:
        assert after["size_bytes"] < 0.75 * before["size_bytes"]
    if compressor["name"] == "structured":
        assert after["parameters"] < 0.85 * before["parameters"]
    assert "bert.encoder.layer.0.intermediate.dense" in result["after"]["layer_sparsity"]
    events = [e for e in read_events(run_dir / "events.jsonl") if e["event"] == "compression_done"]
    assert len(events) == 1 and events[0]["after"]["parameters"] == result["after"]["parameters"]

    structural = compressor["name"] not in ("magnitude", "wanda")
    assert (run_dir / "model" / "compressed.safetensors").exists() == structural
    assert (run_dir / "model" / "model.safetensors").exists() != structural
    steps = json.loads((run_dir / "model" / "compression.json").read_text())["steps"]
    assert [s["compressor"] for s in steps] == [compressor["name"]]

    _, model, tokenizer, _ = load_predictor(str(run_dir), load_plugins(warn=False), device="cpu")
    assert torch.equal(logits(model, tokenizer), logits(captured["model"].eval(), tokenizer))
    task = load_plugins(warn=False).registries.get("task", "token-classification").build({"max_length": 48})
    labels = json.loads((run_dir / "model" / "hone.json").read_text())["labels"]
    expected = task.predict(captured["model"], tokenizer, [{"text": s} for s in SENTENCES], labels, {"batch_size": 32})
    assert predict_cli(run_dir, tmp_path) == json.loads(json.dumps(expected))


class StopAt:
    """Stops a run like Ctrl-C when ``event`` arrives for stage ``stage`` (at ``step``, if given)."""

    def __init__(self, event: str, stage: str, step: int | None = None) -> None:
        self.event, self.stage, self.step = event, stage, step
        setattr(self, f"on_{event}", self.stop)

    def stop(self, event: str, data: dict[str, Any]) -> None:
        if data.get("stage") == self.stage and (self.step is None or data.get("step") == self.step):
            raise Interrupted("stopped by the test")


RESUMES = [
    ({"name": "structured", "heads_fraction": 0.5, "ffn_fraction": 0.5, "calibration_batches": 2, "batch_size": 4},
     StopAt("step_end", "recover", step=3)),
    ({"name": "dynamic-int8"}, StopAt("stage_start", "test")),
    pytest.param({"name": "int8-weight-only"}, StopAt("stage_start", "test"), marks=needs_torchao),
]


@pytest.mark.parametrize(("compressor", "stopper"), RESUMES,
                         ids=["structured-mid-recovery", "dynamic-int8-after-compress", "int8-weight-only-after-compress"])
def test_a_resumed_run_rebuilds_the_compressed_model(
        tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch, compressor: dict[str, Any], stopper: StopAt) -> None:
    recover = {"type": "train", "name": "recover", "epochs": 1, "batch_size": 8, "checkpoint_steps": 2, "logging_steps": 1,
               "optimizer": {"name": "adamw", "lr": 1e-3}}
    stages = [HEAD, {"type": "compress", "name": "compress", "compressor": compressor}]
    stages += [recover] if compressor["name"] == "structured" else []
    spec = spec_with(tiny_bert, *stages, TEST)
    reference, expected = run_capturing(tmp_path, spec, monkeypatch, "reference")
    with pytest.raises(Interrupted):
        run_capturing(tmp_path, spec, monkeypatch, "stopped", callbacks=[("stop", stopper)])
    resumed, captured = run_capturing(tmp_path, spec, monkeypatch, "stopped", resume=True)

    assert reproducible(json.loads((resumed / "metrics.json").read_text())) == reproducible(json.loads((reference / "metrics.json").read_text()))
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resumed / "model")
    assert torch.equal(logits(captured["model"].eval(), tokenizer), logits(expected["model"].eval(), tokenizer))


def budget_stage(candidates: list[float], value: float, compressor: str = "magnitude", **budget: Any) -> dict[str, Any]:
    # the tiny model's encoder is random, so pruning it barely moves the loss; pruning its trained head does, steadily
    return {"type": "compress", "name": "prune",
            "compressor": {"name": compressor, "include": ["classifier"], "exclude": []},
            "max_drop": {"metric": "loss", "value": value, **budget},
            "search": {"param": "sparsity", "candidates": candidates}}


@pytest.mark.parametrize("compressor", ["magnitude", "wanda"])
def test_accuracy_budget_keeps_the_strongest_setting_within_budget(
        tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch, compressor: str) -> None:
    candidates = [0.99, 0.9, 0.5, 0.2, 0.0]
    spec = spec_with(tiny_bert, HEAD, budget_stage(candidates, 0.1, compressor))
    run_dir, captured = run_capturing(tmp_path, spec, monkeypatch)
    budget = json.loads((run_dir / "metrics.json").read_text())["prune"]["budget"]
    tried = budget["tried"]
    assert [p["sparsity"] for p in tried] == candidates[: len(tried)]
    assert all(p["drop"] > 0 and not p["within_budget"] for p in tried[:-1])  # stronger settings missed the budget
    assert tried[-1]["within_budget"] and budget["chosen"] == tried[-1]["sparsity"]
    assert all({"loss", "drop", "size_bytes", "parameters", "sentences_per_s"} <= set(p) for p in tried)
    assert budget["metric"] == "loss" and budget["split"] == "validation"
    assert 0.0 < budget["chosen"] < 0.99
    assert float((captured["model"].classifier.weight == 0).float().mean()) == pytest.approx(budget["chosen"], abs=0.01)
    points = [e for e in read_events(run_dir / "events.jsonl") if e["event"] == "compression_point"]
    assert [p["sparsity"] for p in points] == [p["sparsity"] for p in tried]


def test_a_generous_budget_takes_the_strongest_candidate_first(tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = spec_with(tiny_bert, HEAD, {**budget_stage([0.8, 0.5], 1.0), "max_drop": {"value": 1.0}})
    run_dir, _ = run_capturing(tmp_path, spec, monkeypatch)
    budget = json.loads((run_dir / "metrics.json").read_text())["prune"]["budget"]
    assert budget["metric"] == "entity_f1"  # the task's first default metric
    assert len(budget["tried"]) == 1 and budget["chosen"] == 0.8


def test_an_impossible_budget_is_refused_and_no_model_is_saved(tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = spec_with(tiny_bert, HEAD, budget_stage([0.99, 0.9], 0.0), TEST)
    with pytest.raises(BudgetError) as raised:
        run_capturing(tmp_path, spec, monkeypatch)
    message = str(raised.value)
    assert "stage 'prune': no setting of compressor 'magnitude' keeps loss within max_drop 0.0" in message
    points = [e for e in read_events(tmp_path / "run" / "events.jsonl") if e["event"] == "compression_point"]
    assert [p["sparsity"] for p in points] == [0.99, 0.9] and not any(p["within_budget"] for p in points)
    best = min(points, key=lambda p: p["drop"])
    assert f"tried 2 (sparsity=0.99: {points[0]['loss']:.4f}, sparsity=0.9: {points[1]['loss']:.4f})" in message
    assert f"the best, sparsity={best['sparsity']}, gives loss {best['loss']:.4f} (drop {best['drop']:.4f})" in message
    assert message.endswith("No model was saved: allow a larger max_drop or add weaker candidates.")
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["status"] == "failed" and state["error"] == message
    assert not (tmp_path / "run" / "model").exists()


def test_a_budget_without_search_checks_the_one_setting(tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stage = budget_stage([0.99], 0.0)
    stage.pop("search")
    stage["compressor"]["sparsity"] = 0.99
    with pytest.raises(BudgetError, match=r"tried 1 \(\d\.\d{4}\); the best, magnitude \{.*'sparsity': 0.99[,}].*, gives loss"):
        run_capturing(tmp_path, spec_with(tiny_bert, HEAD, stage), monkeypatch)


@pytest.mark.parametrize(("stage", "message"), [
    ({"search": {"param": "sparsit", "candidates": [0.5]}, "max_drop": {"value": 0.01}},
     "search.param 'sparsit' is not a parameter of compressor 'magnitude'; its parameters: include, exclude, sparsity, n_m, scope"),
    ({"search": {"param": "sparsity", "candidates": [0.5, 1.5]}, "max_drop": {"value": 0.01}},
     "search.candidates: 1.5 is not a valid 'sparsity' for compressor 'magnitude'"),
    ({"search": {"param": "sparsity", "candidates": [0.5]}}, "set `max_drop` too"),
])
def test_budget_specs_are_checked_before_anything_runs(tiny_bert: Path, stage: dict[str, Any], message: str) -> None:
    spec = spec_with(tiny_bert, {"type": "compress", "compressor": "magnitude", **stage})
    with pytest.raises(SpecError) as raised:
        validate_spec(spec, load_plugins(warn=False).registries)
    assert message in str(raised.value)


@pytest.mark.parametrize("compressor", ["magnitude", "wanda"])
def test_gradual_pruning_during_training_reaches_the_target(
        tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch, compressor: str) -> None:
    train = {"type": "train", "name": "prune", "epochs": 2, "batch_size": 8, "logging_steps": 1,
             "optimizer": {"name": "adamw", "lr": 1e-3},
             "pruning": {"compressor": {"name": compressor, "sparsity": 0.6}, "end": 0.5, "every": 2}}
    run_dir, captured = run_capturing(tmp_path, spec_with(tiny_bert, train), monkeypatch)
    result = json.loads((run_dir / "metrics.json").read_text())["prune"]
    assert result["pruning"]["target_sparsity"] == 0.6 and result["pruning"]["schedule"] == {"start": 0, "end": 8, "every": 2}
    for name, module in captured["model"].named_modules():
        if isinstance(module, torch.nn.Linear) and name.startswith("bert.encoder"):
            assert float((module.weight == 0).float().mean()) == pytest.approx(0.6, abs=0.01), name
    assert float((captured["model"].classifier.weight == 0).float().mean()) == 0.0


def test_a_recovery_fine_tune_keeps_one_shot_pruning(tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recover = {"type": "train", "name": "recover", "epochs": 1, "batch_size": 8, "optimizer": {"name": "adamw", "lr": 1e-2}}
    spec = spec_with(tiny_bert, {"type": "compress", "compressor": {"name": "magnitude", "sparsity": 0.5}}, recover)
    _, captured = run_capturing(tmp_path, spec, monkeypatch)
    encoder = {n: m.weight for n, m in captured["model"].named_modules() if isinstance(m, torch.nn.Linear) and "encoder" in n}
    assert all(float((w == 0).float().mean()) == pytest.approx(0.5, abs=0.01) for w in encoder.values())
    assert float((captured["model"].classifier.weight == 0).float().mean()) == 0.0


def test_gradual_pruning_refuses_restoring_a_less_sparse_epoch(tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train = {"type": "train", "batch_size": 8, "pruning": {}, "early_stopping": {"metric": "loss"}}
    with pytest.raises(HoneError, match="restore_best: false"):
        run_capturing(tmp_path, spec_with(tiny_bert, train), monkeypatch)



@pytest.mark.slow
def test_the_compression_benchmark_runs_on_a_few_sentences(tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    teacher, _ = run_capturing(tmp_path, spec_with(tiny_bert, HEAD), monkeypatch, "teacher")
    benchmarks = REPO / "benchmarks"
    command = [sys.executable, "compression.py", "--teacher", str(teacher), "--limit", "8", "--out", str(tmp_path / "bench"), "--combine"]
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = subprocess.run(command, cwd=benchmarks, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads((tmp_path / "bench" / "rows.json").read_text())
    assert len(rows) == 13 and list(rows)[0] == "fp32 (teacher)"
    assert [label for label in rows if label.endswith("+ bf16 autocast")] == [
        "structured 50% heads, 50% FFN + recovery + bf16 autocast", "budget: most FFN pruning within 1.0 F1 points + bf16 autocast"]
    assert not [r["error"] for r in rows.values() if "error" in r]
    assert "| fp32 (teacher) | " in result.stdout and "speed-up b32 / b1" in result.stdout


@pytest.mark.parametrize("compressor", [
    {"name": "structured", "heads_fraction": 0.5, "ffn_fraction": 0.5, "calibration_batches": 2, "batch_size": 4},
    {"name": "wanda", "n_m": [2, 4], "calibration_batches": 2, "batch_size": 4},
], ids=["structured", "wanda-2:4"])
def test_a_compressed_causal_lm_reloads_for_hone_predict(
        tmp_path: Path, tiny_gpt2: Path, monkeypatch: pytest.MonkeyPatch, compressor: dict[str, Any]) -> None:
    from hone_plugins.commands.predict import load_predictor

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": "john smith lives in paris ."}) + "\n" for _ in range(16)))
    spec = {"name": "lm", "model": str(tiny_gpt2), "device": "cpu", "task": {"name": "causal-lm", "max_length": 16},
            "data": {"reader": "jsonl", "train": str(corpus), "validation": str(corpus)},
            "stages": [{"type": "train", "epochs": 2, "batch_size": 8, "optimizer": {"name": "adamw", "lr": 5e-3}},
                       {"type": "compress", "name": "compress", "compressor": compressor}]}
    run_dir, captured = run_capturing(tmp_path, spec, monkeypatch)
    changes = json.loads((run_dir / "metrics.json").read_text())["compress"]["changes"]
    _, model, tokenizer, _ = load_predictor(str(run_dir), load_plugins(warn=False), device="cpu")
    if compressor["name"] == "structured":
        assert changes["architecture"] == "gpt2" and changes["heads"] == [4, 2]
        assert model.transformer.h[0].attn.c_attn.weight.shape == (32, 48)
    else:
        assert changes["pruned_layers"] == 8 and changes["n_m"] == [2, 4]  # the tied LM head is left alone
    encoding = tokenizer(["john smith lives"], return_tensors="pt")
    with torch.inference_mode():
        assert torch.equal(model(**encoding).logits, captured["model"].eval()(**encoding).logits)
        generated = model.generate(**encoding, max_new_tokens=4, do_sample=False)
        assert torch.equal(generated, captured["model"].generate(**encoding, max_new_tokens=4, do_sample=False))
