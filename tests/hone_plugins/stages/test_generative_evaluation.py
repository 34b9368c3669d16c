"""Evaluation of generative tasks: generate instead of decode, loss weights with label_shift, predictions files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from hone.components import EvalOutput
from hone.errors import HoneError
from hone_plugins.stages.evaluation import evaluate, loss_weight, predict_split
from hone_plugins.stages.predictions import predictions_name, write_predictions


class Echo(torch.nn.Module):
    """Logits that put all mass on the input token: a fixed, known loss per position."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> Any:
        return SimpleNamespace(logits=torch.nn.functional.one_hot(input_ids, 8).float() * 5 + self.weight)


class FakeTask:
    """Decodes nothing; generates the reversed reference (so predictions can be told from references)."""

    default_metrics = ("exact-match",)
    label_shift = 1

    def __init__(self) -> None:
        self.generated_with: list[Any] = []

    def collate(self, features: list[dict[str, Any]], tokenizer: Any) -> dict[str, Any]:
        width = max(len(f["input_ids"]) for f in features)
        return {
            "input_ids": torch.tensor([f["input_ids"] + [0] * (width - len(f["input_ids"])) for f in features]),
            "labels": torch.tensor([f["labels"] + [-100] * (width - len(f["labels"])) for f in features]),
            "_reference": [f["_reference"] for f in features],
        }

    def loss(self, outputs: Any, batch: dict[str, Any], label_smoothing: float = 0.0) -> torch.Tensor:
        logits, labels = outputs.logits[:, :-1], batch["labels"][:, 1:]
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)

    def decode(self, outputs: Any, batch: Any, labels: Any) -> Any:
        raise AssertionError("a task with generate() is not decoded")

    def generate(self, model: Any, batch: dict[str, Any], labels: Any) -> Any:
        self.generated_with.append(model)
        references = batch["_reference"]
        if not any(references):
            return [], [], []
        return [r[::-1] for r in references], list(references), [{"generated": f" {r[::-1]}"} for r in references]


def feature(ids: list[int], labels: list[int], reference: str) -> dict[str, Any]:
    return {"input_ids": ids, "labels": labels, "length": len(ids), "_reference": reference}


def context(task: Any, run_dir: Path | None = None) -> Any:
    return SimpleNamespace(model=Echo(), task=task, tokenizer=None, labels=[], device=torch.device("cpu"),
                           precision="fp32", run_dir=run_dir, rank=0)


FEATURES = [feature([1, 2, 3, 4], [-100, 2, 3, 4], "abc"), feature([5, 6], [5, 6], "x"), feature([1, 1, 2], [-100, 1, 2], "yz")]


def test_generate_replaces_decode_and_results_come_back_in_the_splits_order() -> None:
    task = FakeTask()
    ctx = context(task)
    _, output = predict_split(ctx, FEATURES, batch_size=2)  # batches sorted by length: [1, 2], [0]
    assert output.predictions == ["cba", "x", "zy"] and output.references == ["abc", "x", "yz"]
    assert output.scores is None
    assert output.details == [{"generated": " cba"}, {"generated": " x"}, {"generated": " zy"}]
    assert all(model is ctx.model for model in task.generated_with)


class Wrapper(torch.nn.Module):
    """Like DistributedDataParallel: the model is its ``module``."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, **inputs: Any) -> Any:
        return self.module(**inputs)


def test_generate_gets_the_model_outside_a_ddp_wrapper() -> None:
    task = FakeTask()
    ctx = context(task)
    inner = ctx.model
    ctx.model = Wrapper(inner)
    predict_split(ctx, FEATURES, batch_size=8)
    assert task.generated_with == [inner]


def test_an_empty_generation_leaves_loss_only() -> None:
    features = [feature([1, 2, 3], [1, 2, 3], ""), feature([4, 5], [4, 5], "")]
    loss, output = predict_split(context(FakeTask()), features, batch_size=1)
    assert output.predictions == [] and output.references == [] and output.details is None
    assert loss > 0


def test_the_loss_is_weighted_by_the_labels_a_shifted_loss_scores() -> None:
    """Each batch's mean is weighted by its scored labels: the first label of a row never is (label_shift 1)."""
    per_batch = {}
    for indices in ([1, 2], [0]):  # predict_split's batches at batch_size 2
        batch = FakeTask().collate([FEATURES[i] for i in indices], None)
        with torch.no_grad():
            value = float(FakeTask().loss(Echo()(batch["input_ids"]), batch))
        per_batch[tuple(indices)] = (value,
                                     int((batch["labels"][:, 1:] != -100).sum()))
    expected = sum(loss * n for loss, n in per_batch.values()) / sum(n for _, n in per_batch.values())
    loss, _ = predict_split(context(FakeTask()), FEATURES, batch_size=2)
    assert loss == pytest.approx(expected)
    assert per_batch[(1, 2)][1] == 3 and per_batch[(0,)][1] == 3  # not 4 and 3, as counting every label gives


def test_loss_weight_without_a_shift_counts_every_label_and_examples_for_regression() -> None:
    labels = torch.tensor([[1, -100, 2], [3, 4, -100]])
    assert loss_weight(labels, 0, 2) == 4 and loss_weight(labels, 1, 2) == 2
    assert loss_weight(torch.tensor([1, 0, -100]), 0, 3) == 2  # sequence classification: one label per row
    assert loss_weight(torch.tensor([0.5, 1.5]), 0, 2) == 2


def test_predictions_names_tell_stage_split_and_epoch() -> None:
    assert predictions_name(0, "0-train", "validation", 3) == "predictions/0-train-validation-epoch003.jsonl"
    assert predictions_name(2, "test", "test") == "predictions/2-test-test.jsonl"
    assert predictions_name(1, "fine tune/all", "validation", 12) == "predictions/1-fine_tune_all-validation-epoch012.jsonl"


def test_evaluate_writes_one_record_per_example_with_reference_and_details(tmp_path: Path) -> None:
    ctx = context(FakeTask(), tmp_path)
    ctx.features = {"validation": FEATURES}
    metric = SimpleNamespace(compute=lambda output: {"n": float(len(output.predictions))})
    results = evaluate(ctx, "validation", [("n", metric)], 2, predictions_name(0, "0-train", "validation", 1))
    assert results["n"] == 3.0
    path = tmp_path / "predictions" / "0-train-validation-epoch001.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records == [{"index": 0, "prediction": "cba", "reference": "abc", "generated": " cba"},
                       {"index": 1, "prediction": "x", "reference": "x", "generated": " x"},
                       {"index": 2, "prediction": "zy", "reference": "yz", "generated": " zy"}]
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~current_umask())
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_no_file_without_a_run_directory_a_name_or_predictions(tmp_path: Path) -> None:
    ctx = context(FakeTask(), None)
    ctx.features = {"validation": FEATURES}
    evaluate(ctx, "validation", [], 2, "predictions/x.jsonl")  # no run directory: nothing to write into
    ctx.run_dir = tmp_path
    evaluate(ctx, "validation", [], 2)  # no name: not asked for
    ctx.rank = 1
    evaluate(ctx, "validation", [], 2, "predictions/x.jsonl")  # only rank 0 writes
    assert not (tmp_path / "predictions").exists()
    assert write_predictions(tmp_path, "predictions/y.jsonl", EvalOutput([], [])) is None
    assert not (tmp_path / "predictions").exists()


def test_scores_are_kept_and_a_symlink_out_of_the_run_directory_is_refused(tmp_path: Path) -> None:
    run_dir, outside = tmp_path / "run", tmp_path / "elsewhere"
    run_dir.mkdir()
    outside.mkdir()
    output = EvalOutput(predictions=["1", "0"], references=["1", "1"], scores=[[0.2, 0.8], [0.9, 0.1]])
    path = write_predictions(run_dir, "predictions/1-evaluate-test.jsonl", output)
    assert path is not None
    assert json.loads(path.read_text().splitlines()[1]) == {"index": 1, "prediction": "0", "reference": "1",
                                                            "scores": [0.9, 0.1]}
    (run_dir / "predictions").rename(run_dir / "old")
    (run_dir / "predictions").symlink_to(outside)
    with pytest.raises(HoneError, match="outside the run directory"):
        write_predictions(run_dir, "predictions/1-evaluate-test.jsonl", output)
    assert not list(outside.iterdir())


@pytest.mark.parametrize("packing", [False, True])
def test_causal_lm_evaluation_loss_is_the_mean_over_every_predicted_token(tiny_gpt2: Path, packing: bool) -> None:
    """Packed or not, in batches of any size: the token-weighted mean NLL of the texts (perplexity's log)."""
    from hone.plugins import load_plugins

    task = load_plugins(allowed=["hone.tasks"], warn=False).build("task", {"name": "causal-lm", "max_length": 32,
                                                                           "packing": packing})
    model, tokenizer = task.load(str(tiny_gpt2), [])
    texts = ["john smith lives in paris .", "the film was good", "mary said it was a very bad movie , not great"]
    features = task.encode([{"text": t} for t in texts], tokenizer, [])
    total, count = 0.0, 0
    with torch.no_grad():
        for f in features:
            ids = torch.tensor([f["input_ids"]])
            total += float(model(input_ids=ids, labels=ids).loss) * (ids.shape[1] - 1)
            count += ids.shape[1] - 1
    ctx = SimpleNamespace(model=model, task=task, tokenizer=tokenizer, labels=[], device=torch.device("cpu"),
                          precision="fp32", run_dir=None, rank=0)
    for batch_size in (1, 2, 3):
        loss, output = predict_split(ctx, features, batch_size)
        assert loss == pytest.approx(total / count, rel=1e-5)
        assert output.predictions == []  # text records: perplexity only
