"""causal-lm instruction data: prompt/completion and messages records, completion-only masks, chat templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hone.errors import DataError
from hone.plugins import load_plugins
from tests.hone_plugins.tasks.generative import CHATML, CHATML_GENERATION, PLAIN_CHAT

CHAT = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "what color is the sky?"},
    {"role": "assistant", "content": "it is blue."},
    {"role": "user", "content": "yes?"},
    {"role": "assistant", "content": "yes"},
]


ALTERNATING = "{% for m in messages %}{% if loop.index0 > 0 and m['role'] == messages[loop.index0 - 1]['role'] %}" \
    "{{ raise_exception('roles must alternate') }}{% endif %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}" \
    "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}"


def build(**params: Any) -> Any:
    return load_plugins(warn=False).registries.get("task", "causal-lm").build(params)


def trained_runs(tokenizer: Any, feature: dict[str, Any]) -> list[str]:
    """The text of each run of consecutive tokens that carry a label (the loss is taken on them)."""
    runs: list[list[int]] = []
    previous = False
    for token, label in zip(feature["input_ids"], feature["labels"]):
        if label != -100:
            if not previous:
                runs.append([])
            runs[-1].append(token)
        previous = label != -100
    return [tokenizer.decode(run) for run in runs]


def test_prompt_completion_masks_exactly_the_prompt(tiny_llama: Path) -> None:
    task = build()
    _, tokenizer = task.load(str(tiny_llama), [])
    record = {"prompt": "what color is the sky?", "completion": " it is blue."}
    (feature,) = task.encode([record], tokenizer, [])
    prompt = tokenizer(record["prompt"])["input_ids"]
    completion = tokenizer(record["completion"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert feature["input_ids"] == prompt + completion
    assert feature["labels"] == [-100] * len(prompt) + completion  # EOS appended and learnt
    assert feature["_prompt_ids"] == prompt and feature["_reference"] == " it is blue."
    (everything,) = build(completion_only_loss=False).encode([record], tokenizer, [])
    assert everything["labels"] == everything["input_ids"] == prompt + completion


def test_a_long_prompt_is_cut_from_the_left_and_the_completion_kept(tiny_llama: Path) -> None:
    task = build(max_length=12)
    _, tokenizer = task.load(str(tiny_llama), [])
    record = {"prompt": "john smith lives in paris and mary was in london", "completion": " yes"}
    (feature,) = task.encode([record], tokenizer, [])
    prompt = tokenizer(record["prompt"])["input_ids"]
    completion = tokenizer(" yes", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert feature["input_ids"] == prompt[-(12 - len(completion)) :] + completion and feature["length"] == 12
    assert feature["_prompt_ids"] == prompt[-12:]


def test_bert_prompts_drop_the_closing_sep(tiny_gpt2: Path) -> None:
    task = build()
    _, tokenizer = task.load(str(tiny_gpt2), [])  # WordPiece: no EOS, so [SEP] ends completions
    assert tokenizer.eos_token == "[SEP]"
    (feature,) = task.encode([{"prompt": "john smith", "completion": "paris"}], tokenizer, [])
    assert tokenizer.convert_ids_to_tokens(feature["input_ids"]) == ["[CLS]", "john", "smith", "paris", "[SEP]"]
    assert feature["labels"][:3] == [-100] * 3


@pytest.mark.parametrize("template", [None, CHATML_GENERATION], ids=["prefix-rendering", "generation-marks"])
def test_messages_train_exactly_the_assistant_turns(tiny_llama: Path, template: str | None) -> None:
    task = build(chat_template=template)
    _, tokenizer = task.load(str(tiny_llama), [])
    (feature,) = task.encode([{"messages": CHAT}], tokenizer, [])
    rendered = tokenizer.apply_chat_template(CHAT, chat_template=template or CHATML, tokenize=False)
    assert tokenizer.decode(feature["input_ids"]) == rendered + "<|endoftext|>"
    # each assistant turn with the template's end of turn; system and user turns, and the headers, carry no loss
    assert trained_runs(tokenizer, feature) == ["it is blue.<|im_end|>\n", "yes<|im_end|>\n<|endoftext|>"]
    prompt = tokenizer.apply_chat_template(CHAT[:4], chat_template=CHATML, tokenize=False, add_generation_prompt=True)
    assert tokenizer.decode(feature["_prompt_ids"]) == prompt and feature["_reference"] == "yes"
    (everything,) = build(chat_template=template, completion_only_loss=False).encode([{"messages": CHAT}], tokenizer, [])
    assert everything["labels"] == everything["input_ids"]


def test_conversational_prompt_completion_trains_the_completion(tiny_llama: Path) -> None:
    task = build()
    _, tokenizer = task.load(str(tiny_llama), [])
    record = {"prompt": CHAT[:4], "completion": CHAT[4:]}
    (feature,) = task.encode([record], tokenizer, [])
    assert trained_runs(tokenizer, feature) == ["yes<|im_end|>\n<|endoftext|>"]  # the prompt's assistant turn too
    assert feature["_reference"] == "yes"


def test_the_spec_template_serves_a_tokenizer_without_one(tiny_bert: Path, tiny_gpt2_bpe: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    with pytest.raises(ValueError, match="tokenizer .* has none: give the causal-lm task a Jinja template"):
        task = build()
        _, tokenizer = task.load(str(tiny_gpt2_bpe), [])
        task.encode([{"messages": CHAT}], tokenizer, [])
    task = build(chat_template=PLAIN_CHAT)
    model, tokenizer = task.load(str(tiny_bert), [])  # MiniLM-like: a BERT checkpoint without a chat template
    (feature,) = task.encode([{"messages": CHAT[1:3]}], tokenizer, [])
    assert trained_runs(tokenizer, feature) == ["it is blue. ; [SEP]"]
    tokenizer.save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path).chat_template == PLAIN_CHAT  # saved with the model
    with pytest.raises(ValueError, match="not a valid Jinja template"):
        build(chat_template="{% for m in messages %}")


def test_a_template_that_rewrites_earlier_turns_is_refused(tiny_llama: Path) -> None:
    shifting = "{% for m in messages %}{{ m['role'] + (messages | length | string) + ': ' + m['content'] + '\n' }}{% endfor %}"
    task = build(chat_template=shifting)
    _, tokenizer = task.load(str(tiny_llama), [])
    with pytest.raises(ValueError, match=r"generation %\}"):
        task.encode([{"messages": CHAT}], tokenizer, [])
    assert build(chat_template=shifting, completion_only_loss=False).encode([{"messages": CHAT}], tokenizer, [])


@pytest.mark.parametrize(
    ("records", "words"),
    [
        ([{"prompt": "x"}], "needs both 'prompt' and 'completion'"),
        ([{"messages": "hi"}], "'messages' must be a non-empty list"),
        ([{"messages": [{"role": "user"}]}], "'messages'[0] (user) needs a string 'content'"),
        ([{"messages": [{"role": "user", "content": "hi"}]}], "at least one assistant message"),
        ([{"prompt": "x", "completion": [{"role": "assistant", "content": "y"}]}], "both be strings or both"),
        ([{"text": "a"}, {"prompt": "x", "completion": "y"}], "a 'prompt' record among 'text' records"),
        ([{"prompt": " ".join(["paris"] * 40), "completion": "x"}], None),
        ([{"messages": [{"role": "user", "content": " ".join(["paris"] * 40)}, {"role": "assistant", "content": "x"}]}],
         "no completion/assistant token is left within max_length 16"),
        ([{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                        {"role": "assistant", "content": "c"}]}],
         "the chat template fails on this conversation: roles must alternate"),
    ],
)
def test_bad_records_are_located(tiny_llama: Path, records: list[dict[str, Any]], words: str | None) -> None:
    task = build(max_length=16, chat_template=ALTERNATING)
    _, tokenizer = task.load(str(tiny_llama), [])
    located = [{**record, "_source": "train.jsonl", "_line": line} for line, record in enumerate(records, 1)]
    if words is None:  # a long prompt is cut, not refused
        assert task.encode(located, tokenizer, [])[0]["length"] == 16
        return
    with pytest.raises(DataError, match=f"train.jsonl:{len(records)}: ") as info:
        task.encode(located, tokenizer, [])
    assert words in info.value.message


def test_jsonl_reader_maps_instruction_fields(tmp_path: Path) -> None:
    host = load_plugins(warn=False)
    path = tmp_path / "qa.jsonl"
    path.write_text('{"question": "sky?", "answer": "blue", "source": {"url": "x"}}\n'
                    '{"question": "grass?", "answer": "green", "source": {"url": "y"}}\n')
    examples = host.build("reader", {"name": "jsonl", "prompt_field": "question", "completion_field": "answer"}).read(path)
    assert [(e["prompt"], e["completion"], e["_line"]) for e in examples] == [("sky?", "blue", 1), ("grass?", "green", 2)]
    assert "source" not in examples[0]  # a default field holding something else is metadata, not a seq2seq source
    path.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n')
    assert host.build("reader", {"name": "jsonl"}).read(path)[0]["messages"][1]["content"] == "yo"
    path.write_text('{"messages": "hi"}\n')
    with pytest.raises(DataError, match="qa.jsonl:1: field 'messages' must be a list of messages"):
        host.build("reader", {"name": "jsonl", "messages_field": "messages"}).read(path)
    table = tmp_path / "qa.csv"
    table.write_text("q,a\nsky?,blue\n")
    (row,) = host.build("reader", {"name": "csv", "prompt_column": "q", "completion_column": "a"}).read(table)
    assert (row["prompt"], row["completion"], row["_line"]) == ("sky?", "blue", 2) and "text" not in row
