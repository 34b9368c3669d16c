"""Conversations (OpenAI/TRL ``messages``) through a chat template, with the character spans to train on."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from hone_plugins.tasks import common

GENERATION_BLOCK = re.compile(r"\{%-?\s*generation\s*-?%\}")
Messages = list[dict[str, Any]]


def template_of(tokenizer: Any, override: str | None) -> str:
    """The chat template to use: the task's ``chat_template`` param, else the tokenizer's; a ValueError if neither."""
    template = override or getattr(tokenizer, "chat_template", None)
    if isinstance(template, Mapping):  # tokenizers with several named templates
        template = template.get("default")
    if not template:
        raise ValueError(
            "chat records (messages, or prompt/completion as message lists) need a chat template, and the "
            f"tokenizer ({type(tokenizer).__name__}) has none: give the causal-lm task a Jinja template in "
            "`chat_template:` (e.g. ChatML)"
        )
    return str(template)


def invalid(messages: Any, key: str) -> str | None:
    """What is wrong with ``messages`` as a list of ``{role, content}`` messages, or None."""
    if not isinstance(messages, list) or not messages:
        return f"'{key}' must be a non-empty list of {{role, content}} messages"
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            return f"'{key}'[{index}] must be an object with a string 'role'"
        if not isinstance(message.get("content"), str):
            return f"'{key}'[{index}] ({message['role']}) needs a string 'content'"
    return None


def checked(example: Mapping[str, Any], key: str) -> Messages:
    """``example[key]`` as a list of messages; a DataError located at the example otherwise."""
    problem = invalid(example[key], key)
    if problem:
        raise common.data_error(example, problem)
    return [dict(m) for m in example[key]]


class TemplateFailure(ValueError):
    """The chat template raised on a conversation (e.g. roles that do not alternate)."""


def render(tokenizer: Any, template: str, messages: Messages, **options: Any) -> str:
    from jinja2 import TemplateError

    try:
        return tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False, **options)
    except TemplateError as error:
        raise TemplateFailure(f"the chat template fails on this conversation: {error}") from None


def spans(
    tokenizer: Any, template: str, messages: Messages, trained: Sequence[int]
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character span of each trained message.

    A message's span runs from the end of the conversation before it (with the generation prompt, for an
    assistant message) to the end of the conversation including it, so it holds the template's closing tokens
    too. This needs a template that renders a conversation's beginning the same whatever follows it."""
    full = render(tokenizer, template, messages)
    found = []
    for i in trained:
        opening = messages[i]["role"] == "assistant"  # the generation prompt belongs to the turn before
        before = render(tokenizer, template, messages[:i], add_generation_prompt=opening) if i else ""
        through = render(tokenizer, template, messages[: i + 1])
        if not (full.startswith(before) and full.startswith(through) and len(before) <= len(through)):
            raise ValueError(
                "the chat template renders the start of a conversation differently depending on what follows "
                "(e.g. it drops earlier reasoning), so the tokens of each message cannot be found: mark the "
                "assistant turns with {% generation %} ... {% endgeneration %} in the template, or set "
                "completion_only_loss: false"
            )
        found.append((len(before), len(through)))
    return full, found


def token_mask(tokenizer: Any, text: str, char_spans: Sequence[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Token ids of ``text`` (no special tokens added, as ``apply_chat_template`` does) and 1 for each token
    overlapping a span."""
    try:
        encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    except NotImplementedError:
        name = type(tokenizer).__name__
        raise ValueError(f"chat records need a fast tokenizer (with offsets); {name} is not one") from None
    mask = [int(any(end > s and start < e for s, e in char_spans)) for start, end in encoding["offset_mapping"]]
    return list(encoding["input_ids"]), mask


def encode(
    tokenizer: Any, template: str, messages: Messages, trained: Sequence[int] | None, assistant_only: bool = False
) -> tuple[list[int], list[int]]:
    """Token ids of the conversation and the mask of the tokens to train on (``trained`` None: all of them).

    ``assistant_only`` with a template that marks ``{% generation %}`` blocks uses transformers' assistant
    token mask; otherwise the spans of the ``trained`` messages are found by rendering each prefix."""
    if trained is None:
        ids = list(tokenizer(render(tokenizer, template, messages), add_special_tokens=False)["input_ids"])
        return ids, [1] * len(ids)
    if assistant_only and GENERATION_BLOCK.search(template):
        render(tokenizer, template, messages)  # a template error as a TemplateFailure
        out = tokenizer.apply_chat_template(
            messages, chat_template=template, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        return list(out["input_ids"]), list(out["assistant_masks"])
    text, char_spans = spans(tokenizer, template, messages, trained)
    return token_mask(tokenizer, text, char_spans)


def prompt_ids(tokenizer: Any, template: str, messages: Messages) -> list[int]:
    """Token ids to generate the next assistant message from (or to continue a final assistant message)."""
    last_is_assistant = messages[-1]["role"] == "assistant"
    text = render(tokenizer, template, messages, add_generation_prompt=not last_is_assistant,
                  continue_final_message=last_is_assistant)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])
