"""Causal language modelling: next-token loss for perplexity, generation for prediction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from hone_plugins.tasks import common


class CausalLM:
    """Next-token prediction with a causal LM head; one truncated block per text."""

    default_metrics: tuple[str, ...] = ("perplexity",)

    def __init__(self, max_length: int = 128) -> None:
        self.max_length = max_length

    def labels_from(self, examples: Sequence[Mapping[str, Any]]) -> list[str]:
        return []

    def load(
        self, source: str, labels: list[str], *, trust_remote_code: bool = False, revision: str | None = None
    ) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        hub = common.hub_kwargs(trust_remote_code, revision)
        with common.quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(source, **hub)
            model = AutoModelForCausalLM.from_pretrained(source, **hub)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return model, tokenizer

    def encode(self, examples: Sequence[Mapping[str, Any]], tokenizer: Any, labels: list[str]) -> list[dict[str, Any]]:
        for example in examples:
            if example.get("text") is None:
                raise common.data_error(example, "a causal-lm example needs 'text'")
        # many decoder-only models reject token_type_ids
        encoding = tokenizer(
            [str(e["text"]) for e in examples], truncation=True, max_length=self.max_length, return_token_type_ids=False
        )
        features = []
        for index in range(len(examples)):
            feature = common.feature(encoding, index)
            feature["labels"] = list(feature["input_ids"])
            features.append(feature)
        return features

    def collate(self, features: Sequence[Mapping[str, Any]], tokenizer: Any) -> dict[str, Any]:
        return common.collate(features, tokenizer)

    def loss(self, outputs: Any, batch: Mapping[str, Any], label_smoothing: float = 0.0) -> torch.Tensor:
        logits = outputs.logits[:, :-1].float()
        labels = batch["labels"][:, 1:].to(logits.device)
        return F.cross_entropy(
            logits.flatten(0, 1), labels.flatten(), ignore_index=common.IGNORE_INDEX, label_smoothing=label_smoothing
        )

    def decode(
        self, outputs: Any, batch: Mapping[str, Any], labels: list[str]
    ) -> tuple[list[Any], list[Any], list[Any]]:
        return [], [], []

    def prompt_ids(self, tokenizer: Any, prompts: Sequence[str]) -> list[list[int]]:
        """Token ids of each prompt, keeping its last ``max_length`` tokens."""
        rows = tokenizer(list(prompts), return_token_type_ids=False)["input_ids"]
        fallback = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        closing = {tokenizer.eos_token_id, tokenizer.sep_token_id} - {None}
        kept = []
        for ids in rows:
            # a tokenizer that appends an end-of-sequence token would make the model start a new text
            if len(ids) > 1 and ids[-1] in closing:
                ids = ids[:-1]
            kept.append(ids[-self.max_length :] or [fallback])
        return kept

    def predict(
        self,
        model: Any,
        tokenizer: Any,
        records: Sequence[Mapping[str, Any]],
        labels: list[str],
        options: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        prompts = [str(r[common.require(r, i, ("prompt", "text"))]) for i, r in enumerate(records)]
        generation: dict[str, Any] = {
            "max_new_tokens": int(options.get("max_new_tokens", 20)),
            "do_sample": bool(options.get("do_sample", False)),
            "pad_token_id": tokenizer.pad_token_id,
        }
        if generation["do_sample"]:
            generation.update({k: options[k] for k in ("temperature", "top_k") if options.get(k) is not None})
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        device = common.device_of(model)
        results: list[dict[str, Any]] = []
        with common.evaluating(model):
            for chunk in common.batched(prompts, options.get("batch_size", 32)):
                rows = self.prompt_ids(tokenizer, chunk)
                width = max(len(ids) for ids in rows)
                # left padding, so that every prompt's continuation starts right after it
                input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in rows], device=device)
                attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in rows], device=device)
                output = model.generate(input_ids=input_ids, attention_mask=attention, **generation)
                texts = tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
                results.extend({"generated": text} for text in texts)
        return results
