"""ONNX export and serving on tiny random models: ONNX Runtime matches torch at several shapes, a
mismatch is an error that writes nothing, and ``hone predict --runtime onnxruntime`` gives torch's
spans and labels."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

for _module in ("onnx", "onnxscript", "onnxruntime"):
    pytest.importorskip(_module)

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    BertForTokenClassification,
)

from hone.errors import HoneError
from hone_plugins.exporters.layout import MODEL_FILE, ONNX_JSON, RUN_FOLDER
from hone_plugins.exporters.onnx import OnnxExportError, default_batches, export_onnx
from hone_plugins.runtimes.onnxruntime import OnnxRuntimeModel, load_export

NER_LABELS = ["O", "B-LOC", "B-PER", "I-LOC", "I-PER"]
SENTIMENT = ["negative", "positive"]
SENTENCES = ["Peter Blackburn flew from Paris to London .", "john smith said the film was very good",
             "the EU rejects German call to boycott British lamb .", "mary"]


def quiet() -> None:
    from transformers.utils import logging

    logging.set_verbosity_error()


def labelled(model_class: Any, source: Path, labels: list[str]) -> torch.nn.Module:
    quiet()
    torch.manual_seed(0)
    return model_class.from_pretrained(source, num_labels=len(labels), id2label=dict(enumerate(labels)),
                                       label2id={label: i for i, label in enumerate(labels)}).eval()


@pytest.fixture(scope="module")
def ner(tiny_bert: Path) -> tuple[torch.nn.Module, Any]:
    model = labelled(AutoModelForTokenClassification, tiny_bert, NER_LABELS)
    with torch.no_grad():  # a random head tags almost everything O; favour entity tags so that spans appear
        model.classifier.bias.copy_(torch.tensor([0.0, 0.3, 0.3, 0.1, 0.1]))
    return model, AutoTokenizer.from_pretrained(tiny_bert)


@pytest.fixture(scope="module")
def ner_run(ner: tuple[torch.nn.Module, Any], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A run directory as hone leaves it: ``model/`` with ``hone.json``, and the ONNX export in ``export/onnx/``."""
    model, tokenizer = ner
    run = tmp_path_factory.mktemp("ner-run")
    model.save_pretrained(run / "model")
    tokenizer.save_pretrained(run / "model")
    meta = {"task": "token-classification", "task_params": {"max_length": 48}, "labels": NER_LABELS}
    (run / "model" / "hone.json").write_text(json.dumps(meta))
    report = export_onnx(model, tokenizer, run / RUN_FOLDER, task=meta["task"], task_params=meta["task_params"],
                         labels=NER_LABELS)
    return run, report


def logits(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.inference_mode():
        return model(**batch).logits.float()


def test_export_writes_the_folder_checked_at_two_shapes(ner_run: tuple[Path, dict[str, Any]]) -> None:
    import onnx

    run, report = ner_run
    folder = run / RUN_FOLDER
    assert report["max_abs_diff"] <= report["atol"] == 1e-4
    assert len({tuple(shape) for shape in report["check_shapes"]}) == 2
    assert {p[0] for p in report["check_shapes"]} == {2, 3} and report["opset"] == 20 and report["seconds"] > 0
    assert {MODEL_FILE, ONNX_JSON, "config.json", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    assert report["onnx_bytes"] == (folder / MODEL_FILE).stat().st_size < report["size_bytes"]
    assert [p.name for p in folder.parent.iterdir()] == ["onnx"]  # no temporary folder left behind
    meta = json.loads((folder / ONNX_JSON).read_text())
    assert meta["task"] == "token-classification" and meta["labels"] == NER_LABELS
    assert meta["task_params"] == {"max_length": 48} and meta["architecture"] == "BertForTokenClassification"
    assert meta["inputs"] == ["input_ids", "attention_mask", "token_type_ids"] and meta["outputs"] == ["logits"]
    graph = onnx.load(folder / MODEL_FILE).graph
    assert [[d.dim_param for d in i.type.tensor_type.shape.dim] for i in graph.input] == [["batch", "sequence"]] * 3
    assert not any(node.metadata_props for node in graph.node)  # no stack traces with this machine's paths


def test_the_exported_model_serves_other_shapes_like_torch(ner: tuple[torch.nn.Module, Any],
                                                           ner_run: tuple[Path, dict[str, Any]]) -> None:
    model, _ = ner
    served, served_tokenizer, meta = load_export(ner_run[0])  # the run directory: its export/onnx/
    assert meta["labels"] == NER_LABELS and served.config.id2label[2] == "B-PER"
    for texts in (["a"], SENTENCES * 2):
        batch = dict(served_tokenizer(texts, padding=True, return_tensors="pt"))
        assert torch.allclose(logits(served, batch), logits(model, batch), atol=1e-4)


def test_the_served_model_behaves_like_a_torch_module_for_tasks(ner_run: tuple[Path, dict[str, Any]]) -> None:
    served, tokenizer, _ = load_export(ner_run[0] / RUN_FOLDER)
    assert served.eval() is served and served.to("cpu") is served and next(served.parameters()).device.type == "cpu"
    batch = dict(tokenizer(["john smith"], return_tensors="pt"))
    copied = copy.deepcopy(served)  # a session cannot be copied: the copy makes its own
    assert torch.equal(logits(copied, batch), logits(served, batch))
    without_mask = {"input_ids": batch["input_ids"]}  # defaults as in transformers: attend everywhere, segment 0
    assert torch.equal(logits(served, without_mask), logits(served, batch))
    with pytest.raises(TypeError, match="cannot take labels"):
        served(**batch, labels=torch.zeros_like(batch["input_ids"]))
    with pytest.raises(HoneError, match="--runtime torch"):
        served.generate(**batch)


EXPORTS = [
    ("sequence-classification", AutoModelForSequenceClassification, "tiny_bert"),
    ("causal-lm", AutoModelForCausalLM, "tiny_gpt2"),
]


@pytest.mark.parametrize(("task", "model_class", "fixture"), EXPORTS, ids=[e[0] for e in EXPORTS])
def test_sequence_classification_and_causal_lm_export(task: str, model_class: Any, fixture: str, tmp_path: Path,
                                                      request: pytest.FixtureRequest) -> None:
    source = request.getfixturevalue(fixture)
    quiet()
    torch.manual_seed(0)
    model = (model_class.from_pretrained(source, num_labels=2) if task != "causal-lm"
             else model_class.from_pretrained(source)).eval()
    tokenizer = AutoTokenizer.from_pretrained(source)
    if task == "causal-lm":  # as GPT-2's own tokenizer, which makes no token_type_ids
        tokenizer.model_input_names = ["input_ids", "attention_mask"]
    report = export_onnx(model, tokenizer, tmp_path / "onnx", task=task)
    assert report["max_abs_diff"] <= 1e-4
    served, _, _ = load_export(tmp_path / "onnx")
    batch = default_batches(model, tokenizer)[1]
    assert served(**batch).logits.shape == logits(model, batch).shape
    if task == "causal-lm":  # exported without token_type_ids: text pairs (segment 1) would be silently wrong
        assert report["inputs"] == ["input_ids", "attention_mask"]
        with pytest.raises(HoneError, match="exported without token_type_ids"):
            served(**batch, token_type_ids=torch.ones_like(batch["input_ids"]))


def test_static_axes_fix_the_traced_shape(ner: tuple[torch.nn.Module, Any], tmp_path: Path) -> None:
    import onnx

    model, tokenizer = ner
    batch = default_batches(model, tokenizer)[0]
    collated = {**batch, "labels": torch.zeros_like(batch["input_ids"]), "_word_ids": [[None]]}  # as a task collates
    other = default_batches(model, tokenizer)[1]  # another shape: a static graph cannot take it, so it is not checked
    report = export_onnx(model, tokenizer, tmp_path / "onnx", dynamic_axes=False, sample_batches=[collated, other])
    assert report["check_shapes"] == [list(batch["input_ids"].shape)]
    graph = onnx.load(tmp_path / "onnx" / MODEL_FILE).graph
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == list(batch["input_ids"].shape)


class Drifting(BertForTokenClassification):
    """Traces to a graph that adds 0.5 to every logit: what a bad export looks like."""

    def forward(self, input_ids: Any = None, attention_mask: Any = None, token_type_ids: Any = None, **kwargs: Any) -> Any:
        output = super().forward(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, **kwargs)
        if torch.compiler.is_exporting():
            output.logits = output.logits + 0.5
        return output


def test_a_mismatch_names_the_difference_and_writes_nothing(ner: tuple[torch.nn.Module, Any], tmp_path: Path) -> None:
    model, tokenizer = ner
    drifting = Drifting(model.config).eval()
    drifting.load_state_dict(model.state_dict())
    folder = tmp_path / "onnx"
    folder.mkdir()
    (folder / "previous.txt").write_text("an earlier export")
    with pytest.raises(OnnxExportError, match=r"differ from torch's by up to 0\.5 \(atol 0\.0001\) on check batch [12] of shape \[[23], "):
        export_onnx(drifting, tokenizer, folder)
    assert [p.name for p in tmp_path.iterdir()] == ["onnx"] and [p.name for p in folder.iterdir()] == ["previous.txt"]
    assert export_onnx(drifting, tokenizer, folder, atol=0.51)["max_abs_diff"] == pytest.approx(0.5, abs=1e-4)
    assert not (folder / "previous.txt").exists()  # a successful export replaces the folder whole


def test_models_that_cannot_be_checked_on_the_cpu_are_refused_before_exporting(
        ner: tuple[torch.nn.Module, Any], tmp_path: Path) -> None:
    from hone_plugins.compressors.quantization import DynamicInt8

    model, tokenizer = ner
    with pytest.raises(OnnxExportError, match="needs float32 weights; the model has bfloat16"):
        export_onnx(copy.deepcopy(model).to(torch.bfloat16), tokenizer, tmp_path / "onnx")
    quantized, _ = DynamicInt8(["*"], []).compress(copy.deepcopy(model))
    with pytest.raises(OnnxExportError, match="torch.ao quantized layers"):
        export_onnx(quantized, tokenizer, tmp_path / "onnx")
    with pytest.raises(OnnxExportError, match="at least 2 rows and 2 tokens"):
        export_onnx(model, tokenizer, tmp_path / "onnx", sample_batches=[dict(tokenizer(["paris"], return_tensors="pt"))])
    assert not (tmp_path / "onnx").exists()


def predict_cli(source: Path, tmp_path: Path, *options: str) -> list[dict[str, Any]]:
    from hone.cli import main

    inputs, outputs = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inputs.write_text("".join(json.dumps({"text": s}) + "\n" for s in SENTENCES))
    assert main(["predict", str(source), "--input", str(inputs), "--output", str(outputs), "--batch-size", "3", *options]) == 0
    return [json.loads(line) for line in outputs.read_text().splitlines()]


def without_scores(results: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in keys} | {"entities": [{k: v for k, v in e.items() if k != "score"}
                                                                          for e in r.get("entities", [])]} for r in results]


def test_predict_with_onnxruntime_gives_torchs_spans(ner_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    run = ner_run[0]
    expected = predict_cli(run, tmp_path, "--device", "cpu")
    served = predict_cli(run, tmp_path, "--runtime", "onnxruntime")
    assert any(result["entities"] for result in expected)
    assert without_scores(served, ()) == without_scores(expected, ())
    scores = [(a["score"], b["score"]) for r, s in zip(served, expected) for a, b in zip(r["entities"], s["entities"])]
    assert all(a == pytest.approx(b, abs=1e-5) for a, b in scores)
    assert predict_cli(run / RUN_FOLDER, tmp_path, "--runtime", "onnxruntime") == served  # the export folder itself


def test_predict_with_onnxruntime_gives_torchs_labels(tiny_bert: Path, tmp_path: Path) -> None:
    model = labelled(AutoModelForSequenceClassification, tiny_bert, SENTIMENT)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    export_onnx(model, tokenizer, tmp_path / "onnx", task="sequence-classification", labels=SENTIMENT)
    expected = predict_cli(tmp_path / "model", tmp_path, "--task", "sequence-classification", "--device", "cpu")
    served = predict_cli(tmp_path / "onnx", tmp_path, "--runtime", "onnxruntime")
    assert [r["label"] for r in served] == [r["label"] for r in expected] and set(served[0]["probabilities"]) == set(SENTIMENT)
    for got, want in zip(served, expected):
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)


def test_predict_with_onnxruntime_on_a_run_without_export_says_so(ner_run: tuple[Path, dict[str, Any]], tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from hone.cli import main

    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"text": "paris"}\n')
    assert main(["predict", str(ner_run[0] / "model"), "--runtime", "onnxruntime", "--input", str(inputs)]) == 2
    assert f"no ONNX export here (expected {ner_run[0] / 'model' / RUN_FOLDER / ONNX_JSON}" in capsys.readouterr().err
    assert isinstance(load_export(ner_run[0])[0], OnnxRuntimeModel)
