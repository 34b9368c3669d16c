"""LoRA and DoRA in train stages: trained fraction, small checkpoints, exact resume, merged and adapter outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hone.errors import HoneError
from hone.run.events import read_events
from hone.run.runner import run
from hone.spec.loading import load_spec

from tests.conftest import REPO
from tests.reliability.helpers import causal_lm, kill_harness, ner_spec, read_json, write_spec
from tests.reliability.test_kill_resume import CrashInStage

pytest.importorskip("peft", reason="peft (the adapters extra) is not installed")


def adapter_spec(model: Path, adapter: dict[str, Any], **train: Any) -> dict[str, Any]:
    stage = {"type": "train", "name": "lora", "epochs": 2, "batch_size": 8, "logging_steps": 1,
             "optimizer": {"name": "adamw", "lr": 1e-2}, "adapter": adapter, **train}
    # after_run: all keeps the checkpoints these tests read once the run has finished
    return ner_spec(model, stages=[stage, {"type": "evaluate", "name": "test", "split": "test"}],
                    checkpoints={"after_run": "all"})


def run_file(spec_file: Path, out: Path, **kwargs: Any) -> Path:
    spec, host = load_spec(spec_file)
    return run(spec, host, out=out, **kwargs)


def trained_run(tmp_path: Path, spec: dict[str, Any]) -> Path:
    return run_file(write_spec(tmp_path, spec), tmp_path / "run")


def checkpoint_keys(run_dir: Path, tag: str) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(run_dir / "checkpoints" / tag / "model.safetensors"), "pt") as handle:
        return list(handle.keys())


def logits(model: Any, ids: Any) -> Any:
    import torch

    with torch.no_grad():
        return model.eval()(input_ids=ids).logits


@pytest.mark.parametrize("name", ["lora", "dora"])
def test_an_adapter_trains_token_classification_with_its_head_and_keeps_checkpoints_small(
        tmp_path: Path, tiny_bert: Path, name: str) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForTokenClassification

    run_dir = trained_run(tmp_path, adapter_spec(tiny_bert, {"name": name, "r": 4}))
    result = read_json(run_dir / "metrics.json")["lora"]
    start = next(e for e in read_events(run_dir / "events.jsonl") if e["event"] == "stage_start")
    assert 0 < result["trainable_parameters"] < result["total_parameters"] / 5
    assert result["trainable_fraction"] == pytest.approx(result["trainable_parameters"] / result["total_parameters"])
    assert start["trainable_parameters"] == result["trainable_parameters"]
    keys = checkpoint_keys(run_dir, "stage0-epoch002")
    assert keys and all("lora_" in k or ".modules_to_save." in k for k in keys), keys
    assert any("classifier.modules_to_save" in k for k in keys), "the task's head is not trained"
    assert any("lora_magnitude_vector" in k for k in keys) == (name == "dora")

    merged = AutoModelForTokenClassification.from_pretrained(run_dir / "model")  # plain transformers
    base = AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=merged.config.num_labels)
    base_head = base.classifier.weight.clone()
    adapted = PeftModel.from_pretrained(base, run_dir / "adapter" / "lora")
    ids = torch.randint(5, 60, (3, 11))
    assert torch.allclose(logits(merged, ids), logits(adapted, ids), atol=1e-5)
    assert not torch.allclose(merged.classifier.weight, base_head), "the head did not train"
    assert (run_dir / "adapter" / "lora" / "tokenizer.json").exists()


@pytest.mark.parametrize("name", ["lora", "dora"])
def test_an_adapter_trains_a_causal_lm_whose_tied_head_stays_frozen(tmp_path: Path, name: str) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    spec = causal_lm(adapter_spec(Path("."), {"name": name}), tmp_path)
    run_dir = trained_run(tmp_path, spec)
    result = read_json(run_dir / "metrics.json")["lora"]
    assert result["trainable_parameters"] < result["total_parameters"] / 10
    assert all("lora_" in k for k in checkpoint_keys(run_dir, "stage0-epoch002"))  # c_attn's adapters only
    merged = AutoModelForCausalLM.from_pretrained(run_dir / "model")
    base = AutoModelForCausalLM.from_pretrained(tmp_path / "tiny-gpt2")
    adapted = PeftModel.from_pretrained(base, run_dir / "adapter" / "lora")
    ids = torch.randint(5, 60, (2, 9))
    assert torch.allclose(logits(merged, ids), logits(adapted, ids), atol=1e-5)
    assert merged.get_output_embeddings().weight.data_ptr() == merged.get_input_embeddings().weight.data_ptr()


def test_a_run_stopped_inside_an_adapter_stage_resumes_to_the_same_metrics(tmp_path: Path, tiny_bert: Path) -> None:
    spec_file = write_spec(tmp_path, adapter_spec(tiny_bert, {"name": "lora", "r": 4}, checkpoint_steps=3))
    expected = read_json(run_file(spec_file, tmp_path / "reference") / "metrics.json")
    # crashed after step 5: the step-3 checkpoint holds the adapter alone
    with pytest.raises(HoneError, match="crash injected"):
        run_file(spec_file, tmp_path / "run", callbacks=[("crash", CrashInStage("lora", 8))])
    keys = checkpoint_keys(tmp_path / "run", "stage0-step0000003")
    assert all("lora_" in k or "modules_to_save" in k for k in keys)
    run_file(spec_file, tmp_path / "run", resume=True)
    events = read_events(tmp_path / "run" / "events.jsonl")
    resumed = [e for e in events if e["event"] == "stage_start" and e["stage"] == "lora"]
    assert len(resumed) == 2 and resumed[1]["resumed_at_step"] == 3
    harness = kill_harness()
    assert harness.comparable(read_json(tmp_path / "run" / "metrics.json")) == harness.comparable(expected)


@pytest.mark.parametrize(("adapter", "train", "message"), [
    ({"name": "lora", "r": 0}, {}, "r"),
    ({"name": "lora", "target_modules": []}, {}, "target_modules"),
    ({"name": "lora"}, {"train_only": ["classifier.*"]}, "train_only cannot apply"),
    ({"name": "lorra"}, {}, "Did you mean 'lora'"),
])
def test_bad_adapter_settings_are_refused_at_validation(tmp_path: Path, tiny_bert: Path, adapter: dict[str, Any],
                                                        train: dict[str, Any], message: str) -> None:
    with pytest.raises(HoneError, match=message) as error:
        load_spec(write_spec(tmp_path, adapter_spec(tiny_bert, adapter, **train)))
    assert "stages.0" in str(error.value) or "stages[0]" in str(error.value) or "line" in str(error.value)


def test_an_unknown_target_module_is_refused_before_any_work(tmp_path: Path, tiny_bert: Path) -> None:
    spec_file = write_spec(tmp_path, adapter_spec(tiny_bert, {"name": "lora", "target_modules": ["q_proj"]}))
    with pytest.raises(HoneError, match=r"target_modules \['q_proj'\] match no module of BertForTokenClassification"
                                        r".*query"):
        run_file(spec_file, tmp_path / "run")
    assert not [e for e in read_events(tmp_path / "run" / "events.jsonl") if e["event"] in ("stage_start", "step_end")]
    assert json.loads((tmp_path / "run" / "state.json").read_text())["status"] == "failed"


def test_sequence_classification_trains_its_head_through_an_adapter(tmp_path: Path, tiny_bert: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from transformers import AutoModelForSequenceClassification

    from tests.runs import predict

    sentiment = REPO / "examples" / "data" / "sentiment-sample.tsv"
    spec = adapter_spec(tiny_bert, {"name": "lora"}, epochs=1)
    spec.update(task={"name": "sequence-classification", "max_length": 32},
                data={"reader": "tsv", "path": str(sentiment), "split": [0.5, 0.25, 0.25]})
    run_dir = trained_run(tmp_path, spec)
    assert all("lora_" in k or "classifier.modules_to_save" in k for k in checkpoint_keys(run_dir, "stage0-epoch001"))
    assert AutoModelForSequenceClassification.from_pretrained(run_dir / "model").config.num_labels == 2
    [result] = predict(run_dir, [{"text": "a great film"}], capsys)  # hone predict serves the merged model
    assert result["label"] in {"0", "1"} and abs(sum(result["probabilities"].values()) - 1.0) < 1e-5


def test_a_llama_takes_peft_default_targets_q_and_v_proj(tmp_path: Path, tiny_llama: Path) -> None:
    spec = dict(causal_lm(adapter_spec(Path("."), {"name": "lora"}, epochs=1), tmp_path), model=str(tiny_llama))
    run_dir = trained_run(tmp_path, spec)
    keys = checkpoint_keys(run_dir, "stage0-epoch001")
    assert {k.split(".")[-4] for k in keys} == {"q_proj", "v_proj"}
    config = json.loads((run_dir / "adapter" / "lora" / "adapter_config.json").read_text())
    assert sorted(config["target_modules"]) == ["q_proj", "v_proj"] and config["modules_to_save"] is None


def test_a_distilled_student_trains_through_an_adapter(tmp_path: Path, tiny_bert: Path) -> None:
    spec = adapter_spec(tiny_bert, {"name": "lora"}, epochs=1)
    spec["stages"][0].update(type="distill", student={"layers": [0]}, distiller="logits")
    run_dir = trained_run(tmp_path, spec)
    result = read_json(run_dir / "metrics.json")["lora"]
    assert result["trainable_parameters"] < result["total_parameters"] / 5
    assert all("lora_" in k or "modules_to_save" in k for k in checkpoint_keys(run_dir, "stage0-epoch001"))
    assert "layer.1." not in " ".join(checkpoint_keys(run_dir, "stage0-end"))  # the 1-layer student is the model


def test_after_a_stage_that_changed_the_model_checkpoints_keep_every_weight_and_resume_exactly(
        tmp_path: Path, tiny_bert: Path) -> None:
    spec = adapter_spec(tiny_bert, {"name": "dora", "r": 2}, checkpoint_steps=3)
    spec["stages"].insert(0, {"type": "train", "name": "full", "epochs": 1, "batch_size": 8,
                              "optimizer": {"name": "adamw", "lr": 3e-3}})
    spec_file = write_spec(tmp_path, spec)
    expected = read_json(run_file(spec_file, tmp_path / "reference") / "metrics.json")
    with pytest.raises(HoneError, match="crash injected"):
        run_file(spec_file, tmp_path / "run", callbacks=[("crash", CrashInStage("lora", 8))])
    keys = checkpoint_keys(tmp_path / "run", "stage1-step0000003")
    assert any("lora_" in k for k in keys) and any(k.endswith("query.base_layer.weight") for k in keys)
    run_file(spec_file, tmp_path / "run", resume=True)
    harness = kill_harness()
    assert harness.comparable(read_json(tmp_path / "run" / "metrics.json")) == harness.comparable(expected)
