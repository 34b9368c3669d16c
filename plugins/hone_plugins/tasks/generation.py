"""Generation settings and post-processing shared by the generative tasks (causal-lm, seq2seq).

The params models and the text functions import no torch; ``generation_config`` and ``generating``
import it (and transformers) when called.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SAMPLING_ONLY = ("temperature", "top_p", "top_k")


class GenerationParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_new_tokens: int = Field(64, gt=0, description="Most tokens generated per example (the prompt not counted).")
    num_beams: int = Field(1, ge=1, description="Beam search width; 1 is greedy decoding (or plain sampling).")
    do_sample: bool = Field(False, description="Sample instead of choosing the most probable tokens (greedy/beams).")
    temperature: float | None = Field(None, gt=0, description="Sampling temperature (do_sample only); unset: the "
                                      "model's generation config (1.0 if it has none).")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling mass (do_sample only); unset: the "
                                "model's generation config (1.0 if it has none).")
    top_k: int | None = Field(None, ge=0, description="Sample among the k most probable tokens (do_sample only; 0: "
                              "all); unset: the model's generation config (50 if it has none).")
    seed: int = Field(0, ge=0, description="Sampling seed: every generate call restarts from it in a forked RNG, so "
                      "an evaluation is reproducible and the training RNG is left untouched.")
    stop: list[str] = Field(default_factory=list, description="Stop strings: generation ends at the first one, "
                            "and the text is cut before it.")

    @field_validator("stop")
    @classmethod
    def _non_empty(cls, stop: list[str]) -> list[str]:
        if any(not s for s in stop):
            raise ValueError("stop strings must not be empty")
        return stop

    @model_validator(mode="after")
    def _sampling(self) -> GenerationParams:
        given = [name for name in SAMPLING_ONLY if getattr(self, name) is not None]
        if given and not self.do_sample:
            verb = "applies" if len(given) == 1 else "apply"
            raise ValueError(f"{', '.join(given)} {verb} only when sampling: set do_sample: true or remove them")
        return self

    def merged(self, options: Mapping[str, Any]) -> GenerationParams:
        """These settings with the options that are given (not None) in their place, validated again."""
        update = {k: v for k, v in options.items() if k in type(self).model_fields and v is not None}
        if update.get("do_sample") is False:  # greedy asked for: the task's sampling settings no longer apply
            update.update({name: None for name in SAMPLING_ONLY if name not in update})
        return type(self).model_validate({**self.model_dump(), **update})


class PostprocessParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    strip: bool = Field(True, description="Strip surrounding whitespace.")
    lowercase: bool = Field(False, description="Lower-case the text (before the regex; label_map keys too).")
    regex: str | None = Field(None, description="Python regex searched in the text: its first group (or the whole "
                              "match if it has none) is the answer; a text it does not match is kept as it is.")
    label_map: dict[str, str] = Field(default_factory=dict, description="Answer -> label, applied last (e.g. "
                                      "{yes: positive}); answers not listed stay as they are.")

    @field_validator("label_map", mode="before")
    @classmethod
    def _strings(cls, mapping: Any) -> Any:
        if isinstance(mapping, Mapping) and any(isinstance(v, bool) for pair in mapping.items() for v in pair):
            raise ValueError("label_map answers and labels must be strings: quote them (YAML reads yes, no, on, "
                             "off, true and false as booleans)")
        return mapping

    @field_validator("regex")
    @classmethod
    def _compiles(cls, regex: str | None) -> str | None:
        if regex is not None:
            try:
                re.compile(regex)
            except re.error as error:
                raise ValueError(f"invalid regex: {error}") from None
        return regex


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any stop string."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]


def postprocess(text: Any, params: PostprocessParams) -> Any:
    """Prediction or reference as metrics compare it: lowercase, regex answer, strip, then label_map."""
    if not isinstance(text, str):
        return text
    if params.lowercase:
        text = text.lower()
    if params.regex is not None:
        found = re.search(params.regex, text, flags=re.DOTALL)
        if found is not None:
            text = found.group(1) if found.re.groups else found.group(0)
            text = "" if text is None else text  # an optional group that did not take part
    if params.strip:
        text = text.strip()
    mapping = {k.lower(): v for k, v in params.label_map.items()} if params.lowercase else params.label_map
    return mapping.get(text, text)


def eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every token id that ends generation: the model's generation config's and the tokenizer's EOS."""
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids = list(configured) if isinstance(configured, (list, tuple)) else [configured]
    return list(dict.fromkeys(i for i in [*ids, tokenizer.eos_token_id] if i is not None))


def generation_config(model: Any, tokenizer: Any, settings: GenerationParams) -> Any:
    """The model's generation config with ``settings`` applied (greedy unless ``do_sample``)."""
    import copy

    config = copy.deepcopy(model.generation_config)
    if settings.do_sample:  # unset: the checkpoint's own sampling settings (transformers': 1.0, 1.0, 50)
        sampling = {name: getattr(settings, name) for name in SAMPLING_ONLY if getattr(settings, name) is not None}
    else:  # greedy and beam search ignore them; a checkpoint's sampling defaults would only raise warnings
        sampling = dict.fromkeys(SAMPLING_ONLY)
    config.update(
        max_new_tokens=settings.max_new_tokens, num_beams=settings.num_beams, do_sample=settings.do_sample,
        num_return_sequences=1, stop_strings=list(settings.stop) or None, **sampling,
    )
    eos = eos_ids(model, tokenizer)
    config.eos_token_id = eos[0] if len(eos) == 1 else (eos or None)
    if config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos or [None])[0]
    return config


@contextmanager
def generating(model: Any, settings: GenerationParams) -> Iterator[None]:
    """Eval mode, no gradients and, when sampling, the RNG forked and seeded with ``settings.seed``."""
    import torch

    from hone_plugins.tasks import common

    with common.evaluating(model):
        if not settings.do_sample:
            yield
            return
        device = common.device_of(model)
        devices = [] if device.type == "cpu" else [device.index or 0]  # the CPU RNG is always forked
        with torch.random.fork_rng(devices=devices, device_type=device.type):
            torch.manual_seed(settings.seed)
            yield


def generate_texts(
    model: Any, tokenizer: Any, settings: GenerationParams, inputs: Mapping[str, Any], start: int
) -> list[str]:
    """Generated texts (tokens after position ``start``), special tokens dropped and cut at the stop strings."""
    config = generation_config(model, tokenizer, settings)
    with generating(model, settings):
        output = model.generate(**inputs, generation_config=config, tokenizer=tokenizer if settings.stop else None)
    texts = tokenizer.batch_decode(output[:, start:], skip_special_tokens=True)
    return [cut_at_stop(text, settings.stop) for text in texts]
