"""The seq2seq task: T5 (and BART-like models) and bert2bert, teacher-forced loss, generation, save and reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hone.errors import DataError
from hone.plugins import load_plugins
from tests.hone_plugins.tasks.generative import inputs, train

PAIRS = [{"source": "john smith lives in", "target": "paris"}, {"source": "mary was in", "target": "london"}]


def build(**params: Any) -> Any:
    return load_plugins(warn=False).registries.get("task", "seq2seq").build(params)


def save(model: Any, tokenizer: Any, folder: Path) -> Path:
    """What hone does with a run's final model."""
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_encode_collate_and_loss(tiny_t5: Path) -> None:
    import torch

    task = build(max_length=8, max_target_length=4)
    assert task.labels_from(PAIRS) == [] and task.default_metrics == ("rouge",)
    model, tokenizer = task.load(str(tiny_t5), [])
    features = task.encode(PAIRS, tokenizer, [])
    assert features[0]["input_ids"] == tokenizer(PAIRS[0]["source"])["input_ids"][:7] + [tokenizer.eos_token_id]
    paris = list("paris".encode())
    assert features[0]["labels"] == [b + 3 for b in paris[:3]] + [tokenizer.eos_token_id]  # bytes, then </s>
    assert features[0]["decoder_input_ids"] == [0] + features[0]["labels"][:-1]  # T5 starts from <pad>
    assert features[0]["_reference"] == "paris"
    batch = task.collate(features, tokenizer)
    assert batch["labels"].shape == batch["decoder_input_ids"].shape == (2, 8)
    assert batch["decoder_attention_mask"][0].tolist() == [1] * 4 + [0] * 4
    model.eval()
    with torch.no_grad():
        own = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
        assert torch.allclose(task.loss(model(**inputs(batch)), batch), own)
    with pytest.raises(DataError, match="pairs.jsonl:3: a seq2seq example needs a string 'target'"):
        task.encode([{"source": "x", "_source": "pairs.jsonl", "_line": 3}], tokenizer, [])


def test_generate_predict_save_and_reload(tiny_t5: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForSeq2SeqLM

    task = build(postprocess={"label_map": {"paris": "PARIS"}})
    model, tokenizer = task.load(str(tiny_t5), [])
    batch = task.collate(task.encode(PAIRS, tokenizer, []), tokenizer)
    train(task, model, batch, steps=100, lr=1e-2)
    predictions, references, details = task.generate(model, batch, [])
    assert predictions == references == ["PARIS", "london"]
    assert details == [{"input": p["source"], "generated": p["target"]} for p in PAIRS]
    results = task.predict(model, tokenizer, [{"source": p["source"]} for p in PAIRS], [], {})
    assert results == [{"generated": "paris", "prediction": "PARIS"}, {"generated": "london", "prediction": "london"}]
    assert task.predict(model, tokenizer, [{"text": "mary was in"}], [], {"max_new_tokens": 3})[0]["generated"] == "lon"
    folder = save(model, tokenizer, tmp_path / "model")
    reloaded, reloaded_tokenizer = build().load(str(folder), [])
    assert task.predict(reloaded, reloaded_tokenizer, [{"source": "mary was in"}], [], {})[0]["generated"] == "london"
    plain = AutoModelForSeq2SeqLM.from_pretrained(folder)
    ids = tokenizer(["mary was in"], return_tensors="pt")
    with torch.no_grad():
        assert tokenizer.decode(plain.generate(**ids, max_new_tokens=10)[0], skip_special_tokens=True) == "london"
    with pytest.raises(ValueError, match=r"record 0: expected key 'source' or 'text'"):
        task.predict(model, tokenizer, [{"prompt": "x"}], [], {})


def test_bert2bert_from_an_encoder_checkpoint(tiny_bert: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForSeq2SeqLM

    with pytest.raises(ValueError, match="set encoder_decoder: true"):
        build().load(str(tiny_bert), [])
    task = build(encoder_decoder=True)
    model, tokenizer = task.load(str(tiny_bert), [])
    assert type(model).__name__ == "EncoderDecoderModel" and model.decoder.config.is_decoder
    cls, sep, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    for config in (model.config, model.generation_config):
        assert (config.decoder_start_token_id, config.eos_token_id, config.pad_token_id) == (cls, sep, pad)
    features = task.encode(PAIRS, tokenizer, [])
    assert features[0]["labels"] == tokenizer("paris")["input_ids"][1:]  # no [CLS]: the decoder starts from it
    assert features[0]["decoder_input_ids"] == [cls] + features[0]["labels"][:-1]
    batch = task.collate(features, tokenizer)
    assert train(task, model, batch, steps=100, lr=3e-3) < 0.05
    assert task.generate(model, batch, [])[0] == ["paris", "london"]
    folder = save(model, tokenizer, tmp_path / "bert2bert")
    reloaded, reloaded_tokenizer = task.load(str(folder), [])  # a saved EncoderDecoderModel loads as it is
    assert type(reloaded).__name__ == "EncoderDecoderModel"
    assert task.predict(reloaded, reloaded_tokenizer, [{"source": "mary was in"}], [], {})[0]["generated"] == "london"
    plain = AutoModelForSeq2SeqLM.from_pretrained(folder)
    with torch.no_grad():
        output = plain.generate(**tokenizer(["john smith lives in"], return_tensors="pt", return_token_type_ids=False),
                                max_new_tokens=5)
    assert tokenizer.decode(output[0], skip_special_tokens=True) == "paris"
