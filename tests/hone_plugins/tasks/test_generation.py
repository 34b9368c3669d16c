"""Generation settings and post-processing (shared by causal-lm and seq2seq), and the causal-lm generate/predict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from hone.components import EvalOutput
from hone.plugins import load_plugins
from hone_plugins.tasks.generation import GenerationParams, PostprocessParams, cut_at_stop, postprocess
from tests.hone_plugins.tasks.generative import CHATML, train

QA = [
    {"prompt": "what color is the sky?", "completion": " it is blue. yes"},
    {"prompt": "the capital of france is", "completion": " answer: paris"},
]


def build(**params: Any) -> Any:
    return load_plugins(warn=False).registries.get("task", "causal-lm").build(params)


@pytest.fixture(scope="module")
def trained(tiny_llama: Path) -> tuple[Any, Any]:
    """The tiny Llama overfit on QA (greedy decoding then answers each prompt with its completion)."""
    task = build()
    model, tokenizer = task.load(str(tiny_llama), [])
    batch = task.collate(task.encode(QA, tokenizer, []), tokenizer)
    assert train(task, model, batch, steps=80) < 0.05
    return model, tokenizer


class Spy:
    """Wraps ``model.generate``: records each call's keyword arguments and output."""

    def __init__(self, model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[dict[str, Any], Any]] = []
        original = model.generate

        def generate(**kwargs: Any) -> Any:
            output = original(**kwargs)
            self.calls.append((kwargs, output))
            return output

        monkeypatch.setattr(model, "generate", generate)


def test_params_are_checked() -> None:
    with pytest.raises(ValidationError, match="temperature, top_k apply only when sampling"):
        GenerationParams(temperature=0.7, top_k=5)
    with pytest.raises(ValidationError, match="quote them"):
        PostprocessParams(label_map={True: "positive"})
    with pytest.raises(ValidationError, match="stop strings must not be empty"):
        GenerationParams(stop=[""])
    with pytest.raises(ValidationError, match="invalid regex"):
        PostprocessParams(regex="(unclosed")
    settings = GenerationParams(do_sample=True, temperature=0.5, seed=3)
    assert settings.merged({"max_new_tokens": 5, "seed": None, "num_beams": None}).model_dump() == {
        **settings.model_dump(), "max_new_tokens": 5}
    assert settings.merged({"do_sample": False}).temperature is None  # greedy asked for: sampling settings dropped
    with pytest.raises(ValidationError, match="greater than 0"):
        settings.merged({"max_new_tokens": 0})


def test_postprocess_applies_alike_to_any_text() -> None:
    assert cut_at_stop("it is blue. yes\nno", [".", "\n"]) == "it is blue" and cut_at_stop("abc", ["x"]) == "abc"
    assert postprocess("  Paris \n", PostprocessParams()) == "Paris"
    assert postprocess("  Paris ", PostprocessParams(strip=False, lowercase=True)) == "  paris "
    answer = PostprocessParams(regex=r"answer:\s*(\w+)", lowercase=True, label_map={"Yes": "positive"})
    assert postprocess("Answer: YES.", answer) == "positive"  # lowercase, regex group, strip, label_map
    assert postprocess("Answer: no", answer) == "no"  # not in the map: kept
    assert postprocess("I think so", answer) == "i think so"  # the regex does not match: the text is kept
    assert postprocess("x 42 y", PostprocessParams(regex=r"\d+")) == "42"  # no group: the whole match
    assert postprocess(3.5, answer) == 3.5


def test_greedy_generation_stops_at_eos_and_at_stop_strings(tiny_llama: Path, trained: tuple[Any, Any]) -> None:
    model, tokenizer = trained
    task = build()
    records = [{"prompt": r["prompt"]} for r in QA]
    greedy = task.predict(model, tokenizer, records, [], {})
    assert [r["generated"] for r in greedy] == [" it is blue. yes", " answer: paris"]
    results = build(generation={"stop": ["."], "max_new_tokens": 20}).predict(model, tokenizer, records, [], {})
    assert [r["generated"] for r in results] == [" it is blue", " answer: paris"]
    assert [r["prediction"] for r in results] == ["it is blue", "answer: paris"]  # stripped
    assert [r["generated"] for r in task.predict(model, tokenizer, records, [], {"stop": [":"]})][1] == " answer"


def test_generation_settings_are_honoured(tiny_llama: Path, trained: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    model, tokenizer = trained
    spy = Spy(model, monkeypatch)
    task = build(generation={"max_new_tokens": 3})
    task.predict(model, tokenizer, [{"prompt": "what color is the sky?"}, {"prompt": "yes"}], [], {})
    (kwargs, output), = spy.calls
    config = kwargs["generation_config"]
    assert (config.max_new_tokens, config.num_beams, config.do_sample, config.temperature) == (3, 1, False, None)
    assert output.shape[1] - kwargs["input_ids"].shape[1] <= 3
    assert kwargs["input_ids"][1, 0] == tokenizer.pad_token_id and kwargs["attention_mask"][1, 0] == 0  # left padding
    task.predict(model, tokenizer, [{"prompt": "yes"}], [], {"max_new_tokens": 2, "num_beams": 3})
    config = spy.calls[-1][0]["generation_config"]
    assert (config.max_new_tokens, config.num_beams) == (2, 3)


def test_beam_search_matches_transformers(tiny_llama: Path) -> None:
    import torch

    task = build(generation={"num_beams": 3, "max_new_tokens": 6})
    model, tokenizer = task.load(str(tiny_llama), [])
    (result,) = task.predict(model, tokenizer, [{"prompt": "the sky"}], [], {})
    ids = torch.tensor([tokenizer("the sky")["input_ids"]])
    with torch.no_grad():
        direct = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), num_beams=3, max_new_tokens=6,
                                do_sample=False)
    assert result["generated"] == tokenizer.decode(direct[0, ids.shape[1]:], skip_special_tokens=True)


def test_seeded_sampling_is_reproducible_and_leaves_the_rng_alone(tiny_llama: Path) -> None:
    import torch

    task = build(generation={"do_sample": True, "seed": 3, "max_new_tokens": 12})
    model, tokenizer = task.load(str(tiny_llama), [])
    records = [{"prompt": "the sky"}, {"prompt": "mary"}]
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = task.predict(model, tokenizer, records, [], {})
    assert torch.equal(torch.get_rng_state(), state)  # training's RNG is untouched by evaluation
    assert task.predict(model, tokenizer, records, [], {}) == first
    assert task.predict(model, tokenizer, records, [], {"seed": 4}) != first
    greedy = task.predict(model, tokenizer, records, [], {"do_sample": False})
    assert greedy == build(generation={"max_new_tokens": 12}).predict(model, tokenizer, records, [], {})


def test_generate_gives_postprocessed_predictions_and_references(tiny_llama: Path, trained: tuple[Any, Any]) -> None:
    model, tokenizer = trained
    task = build(postprocess={"regex": r"answer:\s*(\w+)", "label_map": {"paris": "PARIS"}})
    batch = task.collate(task.encode(QA, tokenizer, []), tokenizer)
    predictions, references, details = task.generate(model, batch, [])
    assert predictions == references == ["it is blue. yes", "PARIS"]
    assert [d["generated"] for d in details] == [" it is blue. yes", " answer: paris"]  # before post-processing
    assert [d["input"] for d in details] == [q["prompt"] for q in QA]
    accuracy = load_plugins(warn=False).build("metric", "accuracy")
    assert accuracy.compute(EvalOutput(predictions=predictions, references=references))["accuracy"] == 1.0
    text = task.collate(task.encode([{"text": "the sky is blue"}], tokenizer, []), tokenizer)
    assert task.generate(model, text, []) == ([], [], [])  # text records: perplexity only


def test_predict_takes_prompt_messages_and_text_records(tiny_llama: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    task = build()
    model, tokenizer = task.load(str(tiny_llama), [])
    spy = Spy(model, monkeypatch)
    chat = [{"role": "user", "content": "what color is the sky?"}]
    records = [{"messages": chat}, {"prompt": chat}, {"prompt": "the sky"}, {"text": "the sky"},
               {"messages": chat + [{"role": "assistant", "content": "it is"}]}]
    results = task.predict(model, tokenizer, records, [], {"max_new_tokens": 2, "batch_size": 8})
    assert len(results) == 5 and all(set(r) == {"generated", "prediction"} for r in results)
    (kwargs, _), = spy.calls
    prompts = [tokenizer.decode(row[mask.bool()]) for row, mask in zip(kwargs["input_ids"], kwargs["attention_mask"])]
    asked = tokenizer.apply_chat_template(chat, chat_template=CHATML, tokenize=False, add_generation_prompt=True)
    assert prompts == [asked, asked, "the sky", "the sky", asked + "it is"]  # a final assistant turn is continued
    with pytest.raises(ValueError, match=r"record 0: 'messages'\[0\] must be an object with a string 'role'"):
        task.predict(model, tokenizer, [{"messages": ["hi"]}], [], {})


def test_a_bert_checkpoint_loads_as_a_causal_decoder(tiny_bert: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    task = build()
    model, tokenizer = task.load(str(tiny_bert), [])  # saved as a BertModel, like MiniLM
    assert type(model).__name__ == "BertLMHeadModel" and model.config.is_decoder
    model.eval()
    ids = torch.tensor([[2, 40, 41, 42, 43], [2, 40, 41, 42, 50]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    assert torch.allclose(logits[0, :4], logits[1, :4])  # causal: a later token changes nothing before it
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    for reloaded in (task.load(str(tmp_path), [])[0], AutoModelForCausalLM.from_pretrained(tmp_path)):
        assert reloaded.config.is_decoder
        with torch.no_grad():
            assert torch.allclose(reloaded.eval()(input_ids=ids).logits, logits, atol=1e-6)
    assert AutoTokenizer.from_pretrained(tmp_path).eos_token == "[SEP]"
    assert model.generation_config.eos_token_id == tokenizer.sep_token_id


def test_importing_the_task_params_needs_no_torch() -> None:
    code = "import sys, hone_plugins.tasks; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    registry = load_plugins(warn=False).registries
    assert registry.get("task", "seq2seq").info["default_metrics"] == ("rouge",)
    assert registry.get("task", "causal-lm").info["default_metrics"] == ("perplexity",)
