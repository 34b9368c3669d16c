"""Causal-LM records into features: ``text`` in sliding windows, ``prompt``/``completion``, and ``messages``.

Every feature has ``input_ids``, ``attention_mask``, ``labels`` (-100 where no loss is taken) and
``length``; instruction records also keep ``_prompt_ids`` (what generation starts from) and ``_reference``
(the text it should produce), which evaluation uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hone_plugins.tasks import chat, common

IGNORE = common.IGNORE_INDEX


def record_format(example: Mapping[str, Any]) -> str:
    """``messages``, ``prompt`` (prompt and completion) or ``text``; a DataError for anything else."""
    if example.get("messages") is not None:
        return "messages"
    if example.get("prompt") is not None or example.get("completion") is not None:
        if example.get("prompt") is None or example.get("completion") is None:
            raise common.data_error(example, "a prompt/completion record needs both 'prompt' and 'completion'")
        return "prompt"
    if example.get("text") is not None:
        return "text"
    raise common.data_error(example, "a causal-lm record needs 'text', 'prompt' and 'completion', or 'messages'")


def windows(length: int, max_length: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first scored) of each window: every token after the first is scored exactly once, with
    up to ``max_length`` tokens of context (HF's perplexity guide; ``stride`` < ``max_length``)."""
    if length <= max_length:
        return [(0, length, 0)]
    spans, scored = [], 0
    while scored < length:
        end = min(scored + stride, length) if spans else max_length
        spans.append((max(end - max_length, 0), end, scored))
        scored = end
    return spans


def plain_prompt_ids(tokenizer: Any, prompts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of each prompt as generation sees it: no closing EOS/SEP, the last ``max_length`` tokens."""
    rows = tokenizer(list(prompts), return_token_type_ids=False)["input_ids"]
    fallback = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    closing = {tokenizer.eos_token_id, tokenizer.sep_token_id} - {None}
    kept = []
    for ids in rows:
        # a tokenizer that appends an end-of-sequence token would make the model start a new text
        if len(ids) > 1 and ids[-1] in closing:
            ids = ids[:-1]
        kept.append(list(ids[-max_length:]) or [fallback])
    return kept


def feature(ids: list[int], labels: list[int], **extra: Any) -> dict[str, Any]:
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels, "length": len(ids), **extra}


class LMEncoder:
    """Turns causal-LM records into features (see the module docstring)."""

    def __init__(self, max_length: int, stride: int, completion_only_loss: bool, chat_template: str | None) -> None:
        self.max_length, self.stride = max_length, stride
        self.completion_only_loss, self.chat_template = completion_only_loss, chat_template

    def encode(self, examples: Sequence[Mapping[str, Any]], tokenizer: Any) -> list[dict[str, Any]]:
        formats = [record_format(e) for e in examples]
        for example, kind in zip(examples, formats):
            if kind != formats[0]:
                message = f"a '{kind}' record among '{formats[0]}' records: use one format per file"
                raise common.data_error(example, message)
        if not examples:
            return []
        if formats[0] != "text" and tokenizer.eos_token_id is None:
            raise ValueError(f"the tokenizer ({type(tokenizer).__name__}) has no EOS token to end completions with")
        if formats[0] == "text":
            return self.texts(examples, tokenizer)
        template = None
        if formats[0] == "messages" or not isinstance(examples[0]["prompt"], str):
            template = chat.template_of(tokenizer, self.chat_template)
        encode = self.messages if formats[0] == "messages" else self.prompt_completion
        features = []
        for example in examples:
            try:
                features.append(encode(example, tokenizer, template))
            except chat.TemplateFailure as error:
                raise common.data_error(example, str(error)) from None
        return features

    def texts(self, examples: Sequence[Mapping[str, Any]], tokenizer: Any) -> list[dict[str, Any]]:
        rows = tokenizer([str(e["text"]) for e in examples], return_token_type_ids=False, verbose=False)["input_ids"]
        features = []
        for ids in rows:
            for begin, end, scored in windows(len(ids), self.max_length, self.stride):
                window = list(ids[begin:end])
                features.append(feature(window, [t if begin + k >= scored else IGNORE for k, t in enumerate(window)]))
        return features

    def prompt_completion(self, example: Mapping[str, Any], tokenizer: Any, template: str | None) -> dict[str, Any]:
        prompt, completion = example["prompt"], example["completion"]
        if isinstance(prompt, str) != isinstance(completion, str):
            raise common.data_error(example, "'prompt' and 'completion' must both be strings or both be message lists")
        if template is not None:
            if isinstance(prompt, str):
                raise common.data_error(example, "a string prompt among conversational (message list) prompts")
            first, rest = chat.checked(example, "prompt"), chat.checked(example, "completion")
            messages = first + rest
            trained = range(len(first), len(messages)) if self.completion_only_loss else None
            ids, mask = chat.encode(tokenizer, template, messages, trained)
            return self.finish(example, tokenizer, ids, mask, chat.prompt_ids(tokenizer, template, first),
                               "\n".join(m["content"] for m in rest))
        if not isinstance(prompt, str):
            raise common.data_error(example, "a conversational prompt among string prompts")
        head = prompt_ids = plain_prompt_ids(tokenizer, [prompt], self.max_length)[0]
        tail = list(tokenizer(completion, add_special_tokens=False)["input_ids"])
        if not tail or tail[-1] != tokenizer.eos_token_id:
            tail.append(tokenizer.eos_token_id)
        tail = tail[: self.max_length - 1]
        head = head[len(head) + len(tail) - self.max_length :] if len(head) + len(tail) > self.max_length else head
        mask = [int(not self.completion_only_loss)] * len(head) + [1] * len(tail)
        return self.finish(example, tokenizer, head + tail, mask, prompt_ids, completion)

    def messages(self, example: Mapping[str, Any], tokenizer: Any, template: str | None) -> dict[str, Any]:
        assert template is not None
        messages = chat.checked(example, "messages")
        assistant = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
        if not assistant:
            raise common.data_error(example, "a messages record needs at least one assistant message to learn")
        ids, mask = chat.encode(tokenizer, template, messages, assistant if self.completion_only_loss else None, True)
        last = assistant[-1]
        if last:
            prompt = chat.prompt_ids(tokenizer, template, messages[:last])
        else:  # the assistant speaks first: generation starts from nothing
            prompt = plain_prompt_ids(tokenizer, [""], 1)[0]
        return self.finish(example, tokenizer, ids, mask, prompt, messages[last]["content"])

    def finish(self, example: Mapping[str, Any], tokenizer: Any, ids: list[int], mask: list[int],
               prompt: list[int], reference: str) -> dict[str, Any]:
        """The feature: EOS closing a trained ending, cut to ``max_length``, labels from the mask."""
        if mask and mask[-1] and ids[-1] != tokenizer.eos_token_id:
            ids, mask = ids + [tokenizer.eos_token_id], mask + [1]
        ids, mask = ids[: self.max_length], mask[: self.max_length]
        if not any(mask[1:]):
            raise common.data_error(example, f"no completion/assistant token is left within max_length "
                                    f"{self.max_length} (the prompt fills it): raise max_length or shorten the record")
        labels = [t if m else IGNORE for t, m in zip(ids, mask)]
        return feature(ids, labels, _prompt_ids=prompt[-self.max_length :], _reference=reference)
