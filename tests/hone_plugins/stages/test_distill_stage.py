"""The distill stage end to end on the tiny BERT: students, teachers, saving, predicting, resuming."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from hone_plugins.stages.distill import keep_layers
from hone.errors import HoneError, Interrupted
from hone.run.events import read_events
from hone.run.runner import run
from hone.spec.loading import load_spec

from tests.reproducible import reproducible

from tests.runs import InterruptAt, ner_spec, write_spec

TEACHER = {"type": "train", "name": "teacher", "epochs": 1, "batch_size": 8, "logging_steps": 1,
           "optimizer": {"name": "adamw", "lr": 3e-3}}
DISTILL = {"type": "distill", "name": "distill", "epochs": 2, "batch_size": 8, "logging_steps": 1, "checkpoint_steps": 2,
           "student": {"layers": [0]}, "distiller": {"name": "logits", "alpha": 0.7, "temperature": 2.0},
           "optimizer": {"name": "adamw", "lr": 3e-3}}
HIDDEN = {**DISTILL, "student": {"config": {"hidden_size": 16, "num_hidden_layers": 1, "intermediate_size": 32}},
          "distiller": {"name": "hidden", "attention": True, "alpha": 0.5}}
TEST = {"type": "evaluate", "name": "test", "split": "test"}


def distill_spec(model: Path, *stages: dict[str, Any]) -> dict[str, Any]:
    """The NER sample cut to 24 sentences a split: 3 batches of 8 an epoch."""
    spec = ner_spec(model, stages=list(stages or (TEACHER, DISTILL, TEST)))
    spec["data"]["limit"] = 24
    return spec


def run_spec(tmp_path: Path, spec: dict[str, Any], out: str, **kwargs: Any) -> Path:
    loaded, host = load_spec(write_spec(tmp_path, spec))
    return run(loaded, host, out=tmp_path / out, **kwargs)


def token_model(model_dir: Path) -> Any:
    from transformers import AutoModelForTokenClassification

    return AutoModelForTokenClassification.from_pretrained(model_dir, num_labels=3)


def test_a_layer_kept_student_copies_embeddings_the_chosen_layers_and_the_head(tiny_bert: Path) -> None:
    teacher = token_model(tiny_bert)
    student = keep_layers(teacher, [1])
    assert len(student.bert.encoder.layer) == 1 and student.config.num_hidden_layers == 1
    assert teacher.config.num_hidden_layers == 2 and len(teacher.bert.encoder.layer) == 2
    kept, original = student.state_dict(), teacher.state_dict()
    assert all(torch.equal(kept[k], original[k]) for k in kept if not k.startswith("bert.encoder."))
    layer = {k.split("layer.0.", 1)[1]: v for k, v in kept.items() if "encoder.layer.0." in k}
    assert layer and all(torch.equal(v, original[f"bert.encoder.layer.1.{k}"]) for k, v in layer.items())
    assert student.bert.embeddings.word_embeddings.weight.data_ptr() != teacher.bert.embeddings.word_embeddings.weight.data_ptr()
    with pytest.raises(HoneError, match="layers 0..1"):
        keep_layers(teacher, [2])


def test_a_layer_kept_decoder_renumbers_its_cache_slots(tiny_gpt2: Path) -> None:
    from transformers import AutoModelForCausalLM

    student = keep_layers(AutoModelForCausalLM.from_pretrained(tiny_gpt2), [1])
    assert student.config.num_hidden_layers == 1 and student.transformer.h[0].attn.layer_idx == 0
    generated = student.generate(torch.tensor([[5, 6, 7]]), max_new_tokens=3, do_sample=False, pad_token_id=0)
    assert generated.shape == (1, 6)


def test_train_then_distill_then_evaluate_saves_a_reloadable_student(tmp_path: Path, tiny_bert: Path) -> None:
    from hone.cli import main

    run_dir = run_spec(tmp_path, distill_spec(tiny_bert), "run")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(metrics) == ["teacher", "distill", "test"]
    assert metrics["distill"]["steps"] == 2 * 3 and 0.0 <= metrics["test"]["test"]["entity_f1"] <= 1.0
    assert metrics["distill"]["student_parameters"] < metrics["distill"]["teacher_parameters"][0]
    starts = [e for e in read_events(run_dir / "events.jsonl") if e["event"] == "stage_start"]
    assert [e["type"] for e in starts] == ["train", "distill", "evaluate"]
    assert json.loads((run_dir / "model" / "config.json").read_text())["num_hidden_layers"] == 1

    records = tmp_path / "in.jsonl"
    records.write_text(json.dumps({"text": "John Smith flew to Paris ."}) + "\n")
    assert main(["predict", str(run_dir), "--input", str(records), "--output", str(tmp_path / "out.jsonl")]) == 0
    prediction = json.loads((tmp_path / "out.jsonl").read_text())
    assert prediction["tokens"] == ["John", "Smith", "flew", "to", "Paris", "."] and len(prediction["tags"]) == 6


def test_hidden_distillation_into_a_narrower_student_trains_its_projection(tmp_path: Path, tiny_bert: Path) -> None:
    spec = {**distill_spec(tiny_bert, TEACHER, {**HIDDEN, "epochs": 1}), "checkpoints": {"after_run": "all"}}
    run_dir = run_spec(tmp_path, spec, "run")
    config = json.loads((run_dir / "model" / "config.json").read_text())
    assert config["hidden_size"] == 16 and config["num_hidden_layers"] == 1
    state = torch.load(run_dir / "checkpoints" / "stage1-epoch001" / "training_state.pt", weights_only=True)
    assert state["extra"]["projection0.weight"].shape == (32, 16)
    from safetensors.torch import load_file

    saved = load_file(str(run_dir / "model" / "model.safetensors"))
    assert not any("projection" in k for k in saved)  # the projection helps training; it is not part of the student


def _losses(run_dir: Path) -> dict[tuple[str, int], float]:
    return {(e["stage"], e["step"]): e["metrics"]["loss"] for e in read_events(run_dir / "events.jsonl") if e["event"] == "step_end"}


@pytest.mark.parametrize(("distill", "stop_in"), [(DISTILL, "distill"), (HIDDEN, "distill"), (DISTILL, "after")],
                         ids=["logits-in-distill", "hidden-in-distill", "logits-in-a-later-train-stage"])
def test_an_interrupted_distill_run_resumes_to_the_same_results(tmp_path: Path, tiny_bert: Path, distill: dict[str, Any],
                                                                stop_in: str) -> None:
    after = {**TEACHER, "name": "after", "epochs": 2}
    spec = distill_spec(tiny_bert, TEACHER, distill, after, TEST)
    reference = run_spec(tmp_path, spec, "reference")
    with pytest.raises(Interrupted):
        run_spec(tmp_path, spec, "resumed", callbacks=[("interrupt", InterruptAt(stop_in, 4))])
    assert json.loads((tmp_path / "resumed" / "state.json").read_text())["status"] == "interrupted"
    resumed = run_spec(tmp_path, spec, "resumed", resume=True)
    assert reproducible(json.loads((resumed / "metrics.json").read_text())) == reproducible(json.loads((reference / "metrics.json").read_text()))
    assert _losses(resumed) == _losses(reference)
    from safetensors.torch import load_file

    final, expected = load_file(str(resumed / "model" / "model.safetensors")), load_file(str(reference / "model" / "model.safetensors"))
    assert final.keys() == expected.keys() and all(torch.equal(final[k], expected[k]) for k in final)


def test_teachers_can_be_other_runs_averaged_or_weighted(tmp_path: Path, tiny_bert: Path) -> None:
    run_spec(tmp_path, distill_spec(tiny_bert, TEACHER), "first")
    second = run_spec(tmp_path, distill_spec(tiny_bert, {**TEACHER, "optimizer": {"name": "adamw", "lr": 1e-2}}), "second")
    # a relative teacher is a folder beside the spec file; the second is a run's final model folder
    stage = {**DISTILL, "epochs": 1, "teacher": ["first", str(second / "model")], "student": {"layers": [1]},
             "distiller": {"name": "logits", "alpha": 1.0, "teacher_weights": [0.7, 0.3]}}
    run_dir = run_spec(tmp_path, distill_spec(tiny_bert, stage, TEST), "multi")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert len(metrics["distill"]["teacher_parameters"]) == 2 and "test" in metrics["test"]


def test_a_teacher_trained_on_other_labels_is_refused(tmp_path: Path, tiny_bert: Path) -> None:
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    other = tmp_path / "other-labels"
    AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=2).save_pretrained(other)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(other)
    stage = {**DISTILL, "teacher": str(other)}
    with pytest.raises(HoneError, match="predicts labels"):
        run_spec(tmp_path, distill_spec(tiny_bert, stage), "run")


def test_a_distill_stage_is_validated_with_the_spec(tmp_path: Path, tiny_bert: Path) -> None:
    from hone.spec.loading import SpecError

    stage = {**DISTILL, "student": {"layers": [0], "source": "x"}, "distiller": {"name": "logit", "alpha": 2}}
    with pytest.raises(SpecError) as error:
        load_spec(write_spec(tmp_path, distill_spec(tiny_bert, stage)))
    message = str(error.value)
    assert "not both" in message and "logits" in message


def test_sequence_classification_and_causal_lm_distil_too(tmp_path: Path, tiny_bert: Path, tiny_gpt2: Path) -> None:
    from tests.runs import REPO

    sentiment = {"name": "sentiment", "model": str(tiny_bert), "task": {"name": "sequence-classification", "max_length": 32},
                 "data": {"reader": "tsv", "path": str(REPO / "examples" / "data" / "sentiment-sample.tsv")},
                 "stages": [{**TEACHER, "name": "teacher"}, {**DISTILL, "epochs": 1, "student": {"layers": [1]}}, TEST]}
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": "john smith lives in paris ."}) + "\n" for _ in range(16)))
    lm = {"name": "lm", "model": str(tiny_gpt2), "task": {"name": "causal-lm", "max_length": 16},
          "data": {"reader": "jsonl", "train": str(corpus), "validation": str(corpus), "test": str(corpus)},
          "stages": [{**DISTILL, "epochs": 1, "student": {"config": {"n_embd": 16, "n_layer": 1}},
                      "distiller": {"name": "hidden", "alpha": 0.5}}, TEST]}
    for spec in (sentiment, lm):
        metrics = json.loads((run_spec(tmp_path, spec, spec["name"]) / "metrics.json").read_text())
        assert metrics["distill"]["student_parameters"] < metrics["distill"]["teacher_parameters"][0]
        assert "test" in metrics["test"]


def test_a_pruned_model_recovers_by_learning_from_its_unpruned_original(tmp_path: Path, tiny_bert: Path) -> None:
    from hone.plugins import load_plugins
    from hone_plugins.commands.predict import load_predictor

    original = run_spec(tmp_path, distill_spec(tiny_bert, TEACHER), "original")
    prune = {"type": "compress", "name": "prune", "compressor": {"name": "structured", "heads_fraction": 0.5, "ffn_fraction": 0.5}}
    recover = {**DISTILL, "name": "recover", "teacher": str(original)}
    del recover["student"]  # the student is the current, pruned model
    spec = distill_spec(original / "model", prune, recover, TEST)
    reference = run_spec(tmp_path, spec, "pruned")
    metrics = json.loads((reference / "metrics.json").read_text())
    assert metrics["recover"]["student_parameters"] == metrics["prune"]["after"]["parameters"]
    assert metrics["recover"]["student_parameters"] < metrics["recover"]["teacher_parameters"][0]
    _, model, _, _ = load_predictor(str(reference / "model"), load_plugins(warn=False), device="cpu")
    assert sum(p.numel() for p in model.parameters()) == metrics["recover"]["student_parameters"]

    with pytest.raises(Interrupted):  # the pruned student comes back from its saved recipe on resume
        run_spec(tmp_path, spec, "resumed", callbacks=[("interrupt", InterruptAt("recover", 4))])
    resumed = run_spec(tmp_path, spec, "resumed", resume=True)
    assert reproducible(json.loads((resumed / "metrics.json").read_text())) == reproducible(metrics)
    assert _losses(resumed) == _losses(reference)


def test_a_distill_stage_needs_a_student_or_a_teacher(tmp_path: Path, tiny_bert: Path) -> None:
    from hone.spec.loading import SpecError

    stage = {k: v for k, v in DISTILL.items() if k != "student"}
    with pytest.raises(SpecError, match="`student` to train, or a `teacher`"):
        load_spec(write_spec(tmp_path, distill_spec(tiny_bert, stage)))


QA = [("john smith lives in", " paris"), ("mary was in", " london"), ("the company is in", " new york"),
      ("he said the film was", " good"), ("she said the movie was", " bad"), ("reuters said they will", " reject")]


def answers_spec(model: Path, data: Path, task: dict[str, Any], student: dict[str, Any], loss: str) -> dict[str, Any]:
    """A teacher memorises six answers, a one-layer student learns them from its logits alone (alpha 1)."""
    optimizer = {"name": "adamw", "lr": 1e-2, "weight_decay": 0.0}
    loop = {"batch_size": 6, "scheduler": "constant", "optimizer": optimizer, "logging_steps": 1,
            "metrics": ["exact-match"], "dropout": 0.0}
    return {"name": "answers", "seed": 3, "model": str(model), "task": {**task, "generation": {"max_new_tokens": 4}},
            "data": {"reader": "jsonl", "train": str(data), "validation": str(data)},
            "stages": [{"type": "train", "name": "teacher", "epochs": 40, **loop},
                       {"type": "distill", "name": "distill", "epochs": 40, **loop, "student": student,
                        "distiller": {"name": "logits", "alpha": 1.0, "temperature": 1.0, "loss": loss}}]}


@pytest.mark.parametrize("loss", ["forward-kl", "reverse-kl", "jsd"])
def test_a_causal_lm_student_learns_the_answers_from_the_teachers_logits(tmp_path: Path, tiny_gpt2: Path,
                                                                          loss: str) -> None:
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "completion": c}) + "\n" for p, c in QA))
    spec = answers_spec(tiny_gpt2, data, {"name": "causal-lm", "max_length": 24}, {"config": {"n_layer": 1}}, loss)
    run_dir = run_spec(tmp_path, spec, "run")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    teacher, student = metrics["teacher"]["validation"]["exact_match"], metrics["distill"]["validation"]["exact_match"]
    assert teacher >= 0.5 and student >= 0.5, (teacher, student)
    assert metrics["distill"]["student_parameters"] < metrics["distill"]["teacher_parameters"][0]
    losses = [loss for (stage, _), loss in sorted(_losses(run_dir).items()) if stage == "distill"]
    assert losses[-1] < losses[0] / 10, losses


def test_a_seq2seq_student_is_distilled_from_a_t5_teacher(tmp_path: Path, tiny_t5: Path) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"source": p, "target": c.strip()}) + "\n" for p, c in QA))
    task = {"name": "seq2seq", "max_length": 32, "max_target_length": 16}
    spec = answers_spec(tiny_t5, data, task, {"config": {"num_layers": 1, "num_decoder_layers": 1}}, "reverse-kl")
    spec["stages"][0]["epochs"], spec["stages"][1]["epochs"] = 2, 3
    run_dir = run_spec(tmp_path, spec, "run")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["distill"]["student_parameters"] < metrics["distill"]["teacher_parameters"][0]
    config = json.loads((run_dir / "model" / "config.json").read_text())
    assert config["num_layers"] == config["num_decoder_layers"] == 1
    losses = [loss for (stage, _), loss in sorted(_losses(run_dir).items()) if stage == "distill"]
    assert len(losses) == 3 and all(math.isfinite(x) and x > 0 for x in losses) and losses[-1] < losses[0]
