"""Sequence to sequence: ``source`` -> ``target`` with T5, BART or an EncoderDecoderModel (bert2bert)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from hone_plugins.tasks import common
from hone_plugins.tasks.generation import GenerationParams, PostprocessParams, generate_texts, postprocess


def special_tokens(tokenizer: Any) -> dict[str, int | None]:
    """Decoder start, EOS and padding for a model built from an encoder's tokenizer (BERT: [CLS], [SEP], [PAD])."""
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    eos = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    return {"decoder_start_token_id": start, "eos_token_id": eos, "pad_token_id": tokenizer.pad_token_id}


class Seq2Seq:
    """An encoder-decoder trained with teacher forcing; evaluation generates and compares texts."""

    default_metrics: tuple[str, ...] = ("rouge",)

    def __init__(
        self,
        max_length: int = 256,
        max_target_length: int = 128,
        encoder_decoder: bool = False,
        generation: GenerationParams | None = None,
        postprocess: PostprocessParams | None = None,
    ) -> None:
        self.max_length, self.max_target_length, self.encoder_decoder = max_length, max_target_length, encoder_decoder
        self.generation = generation or GenerationParams()
        self.postprocess = postprocess or PostprocessParams()
        self._decoder_start: int | None = None  # of the model loaded last: decoder inputs are built with it
        self._tokenizer: Any = None  # the last one seen: generate() decodes with it

    def labels_from(self, examples: Sequence[Mapping[str, Any]]) -> list[str]:
        return []

    def load(
        self, source: str, labels: list[str], *, trust_remote_code: bool = False, revision: str | None = None
    ) -> tuple[Any, Any]:
        common.quiet_transformers()  # first: importing transformers imports torchao
        from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, EncoderDecoderModel

        hub = common.hub_kwargs(trust_remote_code, revision)
        tokenizer = AutoTokenizer.from_pretrained(source, **hub)
        config = AutoConfig.from_pretrained(source, **hub)
        if self.encoder_decoder and not config.is_encoder_decoder:
            model = EncoderDecoderModel.from_encoder_decoder_pretrained(source, source, **hub)
            for target in (model.config, model.generation_config):
                for name, value in special_tokens(tokenizer).items():
                    setattr(target, name, value)
        elif not config.is_encoder_decoder and getattr(config, "is_decoder", None) is not None:
            raise ValueError(f"{source} is an encoder ({type(config).__name__}), not a seq2seq model: set "
                             "encoder_decoder: true to build an encoder-decoder from it (bert2bert)")
        else:
            model = AutoModelForSeq2SeqLM.from_pretrained(source, **hub)
        start = model.generation_config.decoder_start_token_id
        start = start if start is not None else model.config.decoder_start_token_id
        if start is None:
            raise ValueError(f"{source}: the model has no decoder_start_token_id (set it in its config)")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._decoder_start, self._tokenizer = int(start), tokenizer
        return model, tokenizer

    def encode(self, examples: Sequence[Mapping[str, Any]], tokenizer: Any, labels: list[str]) -> list[dict[str, Any]]:
        for example in examples:
            for key in ("source", "target"):
                if not isinstance(example.get(key), str):
                    raise common.data_error(example, f"a seq2seq example needs a string '{key}'")
        if self._decoder_start is None:
            raise RuntimeError("Seq2Seq.encode builds decoder inputs with the model's decoder start token: load first")
        self._tokenizer = tokenizer
        sources = tokenizer([e["source"] for e in examples], truncation=True, max_length=self.max_length,
                            return_token_type_ids=False)
        targets = tokenizer(text_target=[e["target"] for e in examples], truncation=True,
                            max_length=self.max_target_length, return_token_type_ids=False)["input_ids"]
        features = []
        for index, example in enumerate(examples):
            target = list(targets[index])
            if self.encoder_decoder and len(target) > 1 and target[0] == self._decoder_start:
                target = target[1:]  # [CLS] starts every decoder input already
            feature = common.feature(sources, index)
            feature.update(labels=target, decoder_input_ids=[self._decoder_start] + target[:-1],
                           _reference=example["target"])
            features.append(feature)
        return features

    def collate(self, features: Sequence[Mapping[str, Any]], tokenizer: Any) -> dict[str, Any]:
        self._tokenizer = tokenizer
        batch = common.collate(features, tokenizer)
        batch["decoder_attention_mask"] = (batch["labels"] != common.IGNORE_INDEX).long()
        return batch

    def loss(self, outputs: Any, batch: Mapping[str, Any], label_smoothing: float = 0.0) -> torch.Tensor:
        logits = outputs.logits.float()
        labels = batch["labels"].to(logits.device)
        return F.cross_entropy(
            logits.flatten(0, 1), labels.flatten(), ignore_index=common.IGNORE_INDEX, label_smoothing=label_smoothing
        )

    def decode(
        self, outputs: Any, batch: Mapping[str, Any], labels: list[str]
    ) -> tuple[list[Any], list[Any], list[Any]]:
        return [], [], []

    def complete(
        self, model: Any, tokenizer: Any, inputs: Mapping[str, torch.Tensor], settings: GenerationParams
    ) -> list[str]:
        """The generated target of each source in ``inputs`` (encoder ids and mask), cut at the stop strings."""
        device = common.device_of(model)
        encoder = {k: inputs[k].to(device) for k in ("input_ids", "attention_mask")}
        return generate_texts(model, tokenizer, settings, encoder, 0)

    def generate(
        self, model: Any, batch: Mapping[str, Any], labels: list[str], tokenizer: Any = None
    ) -> tuple[list[Any], list[Any], list[dict[str, Any]]]:
        """(predictions, references, details) of an evaluation batch: both sides post-processed alike, each
        detail the source and the raw generated text."""
        tokenizer = tokenizer or self._tokenizer
        if tokenizer is None:
            raise RuntimeError("Seq2Seq.generate needs the tokenizer: load, encode or collate with it first")
        texts = self.complete(model, tokenizer, batch, self.generation)
        inputs = tokenizer.batch_decode(batch["input_ids"], skip_special_tokens=True)
        return ([postprocess(t, self.postprocess) for t in texts],
                [postprocess(r, self.postprocess) for r in batch["_reference"]],
                [{"input": i, "generated": t} for i, t in zip(inputs, texts)])

    @staticmethod
    def source_of(record: Mapping[str, Any], index: int) -> str:
        """The text a ``source`` (or ``text``) record generates from."""
        key = common.require(record, index, ("source", "text"))
        if not isinstance(record[key], str):
            raise common.record_error(record, index, f"'{key}' must be a string, got {type(record[key]).__name__}")
        return record[key]

    def predict(
        self,
        model: Any,
        tokenizer: Any,
        records: Sequence[Mapping[str, Any]],
        labels: list[str],
        options: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        settings = self.generation.merged(options)
        sources = [self.source_of(record, index) for index, record in enumerate(records)]
        texts: list[str] = []
        for chunk in common.batched(sources, options.get("batch_size") or 32):
            encoding = tokenizer(list(chunk), truncation=True, max_length=self.max_length, padding=True,
                                 return_token_type_ids=False, return_tensors="pt")
            texts.extend(self.complete(model, tokenizer, encoding, settings))
        return [{"generated": t, "prediction": postprocess(t, self.postprocess)} for t in texts]
