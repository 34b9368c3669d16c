"""The instruction-tuning and seq2seq example specs validate, read SST-2 as their tasks need and fit the MiniLM."""

from __future__ import annotations

from pathlib import Path

import pytest

from hone.spec.loading import load_spec

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = {"sst2-instruction.yaml": "causal-lm", "sst2-seq2seq.yaml": "seq2seq"}
KEYS = {"causal-lm": ("prompt", "completion"), "seq2seq": ("source", "target")}


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_the_example_reads_sst2_as_texts_to_generate(name: str, shared_data: Path) -> None:
    spec, host = load_spec(REPO / "examples" / name)
    assert spec.task.name == EXAMPLES[name] and Path(spec.data.train) == shared_data / "sst2" / "train.tsv"
    reader = host.build("reader", spec.data.reader)
    dev = reader.read(Path(spec.data.validation))
    source, target = KEYS[spec.task.name]
    assert len(dev) == 872 and {e[target] for e in dev} == {"negative", "positive"}
    assert all(isinstance(e[source], str) and e[source] for e in dev)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXAMPLES))
def test_the_example_builds_its_model_from_the_minilm_and_trains_on_the_answer(name: str, shared_data: Path) -> None:
    """The MiniLM becomes a causal LM (is_decoder) or bert2bert; the loss covers the answer tokens only."""
    import torch

    from hone.run.loading import resolve_source

    spec, host = load_spec(REPO / "examples" / name)
    task = host.build("task", spec.task)
    model, tokenizer = task.load(resolve_source(spec.model.source), [])
    examples = host.build("reader", spec.data.reader).read(Path(spec.data.validation))[:4]
    batch = task.collate(task.encode(examples, tokenizer, []), tokenizer)
    answers = [tokenizer(e[KEYS[spec.task.name][1]], add_special_tokens=False)["input_ids"] for e in examples]
    scored = [[t for t in row if t != -100] for row in batch["labels"].tolist()]
    if spec.task.name == "causal-lm":
        assert type(model).__name__ == "BertLMHeadModel" and model.config.is_decoder
        assert scored == [a + [tokenizer.sep_token_id] for a in answers]  # the answer and EOS ([SEP]), no prompt
    else:
        assert type(model).__name__ == "EncoderDecoderModel" and model.config.decoder.is_decoder
        assert model.config.decoder_start_token_id == tokenizer.cls_token_id
        assert scored == [a + [tokenizer.sep_token_id] for a in answers]
    with torch.no_grad():
        inputs = {k: v for k, v in batch.items() if not k.startswith("_") and k != "labels"}
        assert torch.isfinite(task.loss(model(**inputs), batch, 0.0))
    predictions, references, _ = task.generate(model, batch, [], tokenizer)
    assert len(predictions) == 4 and references == [e[KEYS[spec.task.name][1]] for e in examples]
