"""Causal language modelling: next-token loss (perplexity), instruction tuning, generation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn.functional as F

from hone_plugins.tasks import chat, common, lm_data
from hone_plugins.tasks.label_logits import logits_at_labels, shifted_pairs
from hone_plugins.tasks.generation import GenerationParams, PostprocessParams, generate_texts, postprocess
from hone_plugins.tasks.packing import isolation_problem, pack


def decoder_kwargs(config: Any) -> dict[str, Any]:
    """``is_decoder=True`` for an encoder checkpoint (BERT, RoBERTa...): its causal-LM head attends causally only
    then. Decoder-only configs have no ``is_decoder`` in transformers 5; encoder-decoders are left alone."""
    if getattr(config, "is_decoder", None) is False and not getattr(config, "is_encoder_decoder", False):
        return {"is_decoder": True}
    return {}


def left_padded(rows: Sequence[list[int]], pad: int, device: torch.device) -> tuple[dict[str, torch.Tensor], int]:
    """Prompts left-padded, so that every continuation starts right after its prompt, and their width."""
    width = max(len(ids) for ids in rows)
    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in rows], device=device)
    attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in rows], device=device)
    return {"input_ids": input_ids, "attention_mask": attention}, width


class CausalLM:
    """Next-token prediction with a causal LM head; ``text``, ``prompt``/``completion`` or ``messages`` records."""

    default_metrics: tuple[str, ...] = ("perplexity",)
    label_shift = 1  # the logits at position t predict the token at t + 1

    def __init__(
        self,
        max_length: int = 128,
        stride: int | None = None,
        completion_only_loss: bool = True,
        chat_template: str | None = None,
        packing: bool = False,
        generation: GenerationParams | None = None,
        postprocess: PostprocessParams | None = None,
    ) -> None:
        self.max_length, self.packing, self.chat_template = max_length, packing, chat_template
        self.generation = generation or GenerationParams()
        self.postprocess = postprocess or PostprocessParams()
        stride = stride or max(1, max_length // 2)
        self.encoder = lm_data.LMEncoder(max_length, stride, completion_only_loss, chat_template)
        self._tokenizer: Any = None  # the last one seen: generate() decodes with it

    def labels_from(self, examples: Sequence[Mapping[str, Any]]) -> list[str]:
        return []

    def load(
        self, source: str, labels: list[str], *, trust_remote_code: bool = False, revision: str | None = None
    ) -> tuple[Any, Any]:
        common.quiet_transformers()  # first: importing transformers imports torchao
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        hub = common.hub_kwargs(trust_remote_code, revision)
        tokenizer = AutoTokenizer.from_pretrained(source, **hub)
        config = AutoConfig.from_pretrained(source, **hub)
        model = AutoModelForCausalLM.from_pretrained(source, **hub, **decoder_kwargs(config))
        self.prepare(model, tokenizer)
        if self.packing and (problem := isolation_problem(model)):
            raise ValueError(f"packing: true cannot keep examples apart in {type(model).__name__} "
                             f"(attention {model.config._attn_implementation}): {problem}; set packing: false")
        return model, tokenizer

    def prepare(self, model: Any, tokenizer: Any) -> None:
        """Special tokens generation needs, on the tokenizer and the model (both are saved with them)."""
        if tokenizer.eos_token is None and tokenizer.sep_token is not None:
            tokenizer.eos_token = tokenizer.sep_token  # BERT-style vocabularies end a text with [SEP]
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if self.chat_template:
            tokenizer.chat_template = self.chat_template
        for config in (model.config, model.generation_config):
            if getattr(config, "pad_token_id", None) is None:
                config.pad_token_id = tokenizer.pad_token_id
        if model.generation_config.eos_token_id is None:
            model.generation_config.eos_token_id = tokenizer.eos_token_id
        self._tokenizer = tokenizer

    def encode(self, examples: Sequence[Mapping[str, Any]], tokenizer: Any, labels: list[str]) -> list[dict[str, Any]]:
        self._tokenizer = tokenizer
        return self.encoder.encode(examples, tokenizer)

    def collate(self, features: Sequence[Mapping[str, Any]], tokenizer: Any) -> dict[str, Any]:
        self._tokenizer = tokenizer
        if self.packing:
            return pack(features, tokenizer, self.max_length)
        return common.collate(features, tokenizer)

    def loss_scope(self, model: Any, batch: Mapping[str, Any]) -> AbstractContextManager[None]:
        """The training loss's forward computes logits at the labelled positions only (the answers, with
        completion-only loss): the vocabulary projection of prompts and padding is skipped."""
        return logits_at_labels(model, batch["labels"], self.label_shift)

    def loss(self, outputs: Any, batch: Mapping[str, Any], label_smoothing: float = 0.0) -> torch.Tensor:
        logits, labels = shifted_pairs(outputs.logits, batch["labels"].to(outputs.logits.device), self.label_shift)
        return F.cross_entropy(logits.float(), labels, ignore_index=common.IGNORE_INDEX, label_smoothing=label_smoothing)

    def decode(
        self, outputs: Any, batch: Mapping[str, Any], labels: list[str]
    ) -> tuple[list[Any], list[Any], list[Any]]:
        return [], [], []

    def complete(self, model: Any, tokenizer: Any, rows: Sequence[list[int]], settings: GenerationParams) -> list[str]:
        """The generated continuation of each prompt (token ids), cut at the stop strings."""
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        inputs, width = left_padded(rows, pad, common.device_of(model))
        return generate_texts(model, tokenizer, settings, inputs, width)

    def generate(
        self, model: Any, batch: Mapping[str, Any], labels: list[str], tokenizer: Any = None
    ) -> tuple[list[Any], list[Any], list[dict[str, Any]]]:
        """(predictions, references, details) of an evaluation batch of instruction records: both sides
        post-processed alike, each detail the prompt and the raw generated text; ``([], [], [])`` for ``text``
        records (perplexity only)."""
        if "_reference" not in batch:
            return [], [], []
        tokenizer = tokenizer or self._tokenizer
        if tokenizer is None:
            raise RuntimeError("CausalLM.generate needs the tokenizer: load, encode or collate with it first")
        prompts = batch["_prompt_ids"]
        texts = self.complete(model, tokenizer, prompts, self.generation)
        inputs = tokenizer.batch_decode(prompts, skip_special_tokens=True)
        return ([postprocess(t, self.postprocess) for t in texts],
                [postprocess(r, self.postprocess) for r in batch["_reference"]],
                [{"input": i, "generated": t} for i, t in zip(inputs, texts)])

    def prompt_of(self, record: Mapping[str, Any], index: int, tokenizer: Any) -> list[int]:
        """Token ids a ``prompt`` (text or messages), ``messages`` or ``text`` record generates from."""
        key = common.require(record, index, ("messages", "prompt", "text"))
        value = record[key]
        if isinstance(value, str) and key != "messages":
            return lm_data.plain_prompt_ids(tokenizer, [value], self.max_length)[0]
        if key == "text":
            raise common.record_error(record, index, f"'text' must be a string, got {type(value).__name__}")
        if problem := chat.invalid(value, key):
            raise common.record_error(record, index, problem)
        template = chat.template_of(tokenizer, self.chat_template)
        try:
            return chat.prompt_ids(tokenizer, template, value)[-self.max_length :]
        except chat.TemplateFailure as error:  # e.g. roles that must alternate
            raise common.record_error(record, index, str(error)) from None

    def predict(
        self,
        model: Any,
        tokenizer: Any,
        records: Sequence[Mapping[str, Any]],
        labels: list[str],
        options: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        settings = self.generation.merged(options)
        rows = [self.prompt_of(record, index, tokenizer) for index, record in enumerate(records)]
        texts: list[str] = []
        for chunk in common.batched(rows, options.get("batch_size") or 32):
            texts.extend(self.complete(model, tokenizer, chunk, settings))
        return [{"generated": t, "prediction": postprocess(t, self.postprocess)} for t in texts]
