"""The example plugin's in-house compressor, ``prune-unseen-embeddings``: directly, and selected by
name in a run whose saved model reloads (with the plugin) to identical predictions."""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import hone.run.runner
from hone.cli import main
from hone.components import CompressionContext
from hone.errors import HoneError
from hone.plugins import load_plugins
from hone.run.runner import run
from hone.spec.loading import load_spec

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "examples" / "hone-example-plugin" / "src"
SAMPLE = REPO / "examples" / "data" / "ner-sample"
TRAIN = ["peter smith said the company will call london", "mary was in paris"]


@pytest.fixture(scope="module")
def prune_unseen() -> Iterator[Any]:
    sys.path.insert(0, str(SOURCE))
    try:
        from hone_example_plugin import PruneUnseenEmbeddingsParams, prune_unseen_embeddings

        yield lambda **params: prune_unseen_embeddings(PruneUnseenEmbeddingsParams(**params))
    finally:
        sys.path.remove(str(SOURCE))


@pytest.fixture(scope="module")
def bert(tiny_bert: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForTokenClassification, AutoTokenizer
    from transformers.utils import logging

    logging.set_verbosity_error()
    torch.manual_seed(0)
    return AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=3).eval(), AutoTokenizer.from_pretrained(tiny_bert)


def context_for(tokenizer: Any, sentences: list[str]) -> CompressionContext:
    features = [{"input_ids": ids} for ids in tokenizer(sentences)["input_ids"]]
    return CompressionContext(train_features=features, tokenizer=tokenizer)


def logits(model: Any, input_ids: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=input_ids).logits


def test_rows_of_unseen_tokens_are_dropped_and_read_unk(prune_unseen: Any, bert: tuple[Any, Any]) -> None:
    base, tokenizer = bert
    model, report = prune_unseen().compress(copy.deepcopy(base), context_for(tokenizer, TRAIN))
    seen = set(tokenizer(TRAIN)["input_ids"][0] + tokenizer(TRAIN)["input_ids"][1]) | set(tokenizer.all_special_ids)
    assert report["rows_kept"] == len(seen) == model.get_input_embeddings().weight.shape[0]
    assert report["rows_removed"] == base.config.vocab_size - len(seen) and report["recipe"]["rows"] == len(seen)
    known = tokenizer(["the company said peter was in london"], return_tensors="pt")["input_ids"]
    assert torch.equal(logits(model, known), logits(base, known))  # seen tokens: the model is unchanged
    unseen = tokenizer(["the film was very good"], return_tensors="pt")["input_ids"]
    as_unknown = torch.where(torch.isin(unseen, torch.tensor(sorted(seen))), unseen, tokenizer.unk_token_id)
    assert torch.equal(logits(model, unseen), logits(base, as_unknown))


def test_min_count_keeps_only_frequent_tokens(prune_unseen: Any, bert: tuple[Any, Any]) -> None:
    base, tokenizer = bert
    _, once = prune_unseen().compress(copy.deepcopy(base), context_for(tokenizer, TRAIN))
    _, twice = prune_unseen(min_count=2).compress(copy.deepcopy(base), context_for(tokenizer, TRAIN))
    assert twice["rows_kept"] == len(tokenizer.all_special_ids)  # only [CLS]/[SEP] repeat, and they are special anyway
    assert once["rows_kept"] > twice["rows_kept"]


def test_it_needs_training_data_and_refuses_tied_embeddings(prune_unseen: Any, bert: tuple[Any, Any], tiny_gpt2: Path) -> None:
    from transformers import AutoModelForCausalLM

    with pytest.raises(ValueError, match="needs the training data"):
        prune_unseen().compress(copy.deepcopy(bert[0]), CompressionContext())
    with pytest.raises(ValueError, match="tied to the output layer"):
        prune_unseen().compress(AutoModelForCausalLM.from_pretrained(tiny_gpt2), context_for(bert[1], TRAIN))


def test_restore_rebuilds_the_structure_for_the_saved_weights(prune_unseen: Any, bert: tuple[Any, Any]) -> None:
    from safetensors.torch import load, save

    from hone_plugins.formats.compressed import state_dict_for_saving
    from hone_plugins.formats.compressed import load_weights

    base, tokenizer = bert
    compressor = prune_unseen()
    model, report = compressor.compress(copy.deepcopy(base), context_for(tokenizer, TRAIN))
    restored = compressor.restore(type(base)(base.config), report["recipe"])
    load_weights(restored, load(save(state_dict_for_saving(model))), "test")
    ids = tokenizer(["the film was in paris"], return_tensors="pt")["input_ids"]
    assert torch.equal(logits(restored.eval(), ids), logits(model, ids))


@pytest.fixture
def plugins_dir(tmp_path: Path) -> Path:
    """The example package as a plugins-dir module, so a run in this process can select it by name."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "in_house.py").write_text(
        f"import sys\nsys.path.insert(0, {str(SOURCE)!r})\nfrom hone_example_plugin import register_compressors  # noqa: F401\n")
    return folder


def test_selected_by_name_in_a_run_and_served_by_hone_predict(
        tmp_path: Path, tiny_bert: Path, plugins_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hone_plugins.commands.predict import load_predictor

    spec = {
        "model": str(tiny_bert), "device": "cpu", "plugins_dir": [str(plugins_dir)],
        "task": {"name": "token-classification", "max_length": 48},
        "data": {"reader": "conll", **{split: str(SAMPLE / f"{split[:5]}.txt") for split in ("train", "validation", "test")}},
        "stages": [
            {"type": "train", "batch_size": 8, "train_only": ["classifier.*"], "optimizer": {"name": "adamw", "lr": 1e-2}},
            {"type": "compress", "name": "vocab", "compressor": {"name": "prune-unseen-embeddings"}},
        ],
    }
    captured: dict[str, Any] = {}
    save = hone.run.rundir.save_model
    monkeypatch.setattr(hone.run.runner, "save_model", lambda run_dir, model, *a: captured.setdefault("m", model) and save(run_dir, model, *a))
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    parsed, host = load_spec(tmp_path / "spec.json")
    run_dir = run(parsed, host, out=tmp_path / "run")
    result = json.loads((run_dir / "metrics.json").read_text())["vocab"]
    assert 0 < result["changes"]["rows_kept"] < result["changes"]["vocabulary"]
    assert result["after"]["parameters"] < result["before"]["parameters"]

    records = [{"text": "Peter Blackburn flew from Paris to London ."}]
    task, model, tokenizer, labels = load_predictor(str(run_dir), load_plugins([plugins_dir], warn=False), device="cpu")
    assert task.predict(model, tokenizer, records, labels, {}) == task.predict(captured["m"], tokenizer, records, labels, {})
    with pytest.raises(HoneError, match="compressed with 'prune-unseen-embeddings', which no installed plugin provides.*"
                                        "--plugins-dir"):
        load_predictor(str(run_dir), load_plugins(warn=False), device="cpu")
    # `hone predict RUN_DIR` finds the in-house plugin through the run's recorded plugins_dir
    (tmp_path / "in.jsonl").write_text(json.dumps(records[0]) + "\n")
    assert main(["predict", str(run_dir), "-i", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "out.jsonl"),
                 "--device", "cpu"]) == 0
    served = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert served == task.predict(captured["m"], tokenizer, records, labels, {})
