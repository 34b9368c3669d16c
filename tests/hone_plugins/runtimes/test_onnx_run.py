"""An onnx-int8 compress stage in a run: evaluated within an accuracy budget, saved without pickle,
and served by ``hone predict`` with the in-memory model's predictions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

for _module in ("onnx", "onnxscript", "onnxruntime"):
    pytest.importorskip(_module)

import torch
from hone.errors import Interrupted
from hone.plugins import load_plugins

from tests.reproducible import reproducible

from tests.hone_plugins.stages.test_compress_stage import HEAD, SENTENCES, TEST, StopAt, logits, predict_cli, run_capturing, spec_with


@pytest.mark.slow
def test_an_onnx_int8_stage_evaluates_saves_and_predicts(tmp_path: Path, tiny_bert: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from hone_plugins.commands.predict import load_predictor
    from hone_plugins.runtimes.onnxruntime import OnnxRuntimeModel

    stage = {"type": "compress", "name": "int8", "compressor": {"name": "onnx-int8"}, "metrics": ["accuracy"],
             "max_drop": {"metric": "accuracy", "value": 0.2}}
    spec = spec_with(tiny_bert, HEAD, stage, TEST)
    run_dir, captured = run_capturing(tmp_path, spec, monkeypatch)
    results = json.loads((run_dir / "metrics.json").read_text())
    result = results["int8"]
    assert result["budget"]["tried"][0]["within_budget"] and result["validation"]["accuracy"] > 0
    assert results["test"]["test"]["accuracy"] > 0
    assert result["changes"]["onnx_int8_bytes"] < result["changes"]["onnx_fp32_bytes"]
    assert result["after"]["size_bytes"] < result["before"]["size_bytes"]
    assert sorted(p.name for p in (run_dir / "model").glob("*.safetensors")) == ["compressed.safetensors"]

    _, model, tokenizer, _ = load_predictor(str(run_dir), load_plugins(warn=False), device="cpu")
    assert isinstance(model, OnnxRuntimeModel) and isinstance(captured["model"], OnnxRuntimeModel)
    assert torch.equal(logits(model, tokenizer), logits(captured["model"], tokenizer))
    task = load_plugins(warn=False).registries.get("task", "token-classification").build({"max_length": 48})
    labels = json.loads((run_dir / "model" / "hone.json").read_text())["labels"]
    expected = task.predict(captured["model"], tokenizer, [{"text": s} for s in SENTENCES], labels, {"batch_size": 32})
    assert predict_cli(run_dir, tmp_path) == json.loads(json.dumps(expected))

    # stopped after the stage's checkpoint: resuming rebuilds the ONNX Runtime model from the recipe and the checkpoint
    with pytest.raises(Interrupted):
        run_capturing(tmp_path, spec, monkeypatch, "stopped", callbacks=[("stop", StopAt("stage_start", "test"))])
    resumed, again = run_capturing(tmp_path, spec, monkeypatch, "stopped", resume=True)
    assert isinstance(again["model"], OnnxRuntimeModel)
    assert torch.equal(logits(again["model"], tokenizer), logits(captured["model"], tokenizer))
    assert reproducible(json.loads((resumed / "metrics.json").read_text()))["test"] == reproducible(results)["test"]
