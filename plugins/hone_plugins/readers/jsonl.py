"""The JSON lines reader: one object a line, its fields mapped to example keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hone.components import Example
from hone.errors import DataError
from hone_plugins.readers.conll import check_tag
from hone_plugins.readers.text import json_object, lines_of, located, parse_float, read_text


class JsonlParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text_field: str | None = Field("text", description="Field holding the text.")
    text_pair_field: str | None = Field("text_pair", description="Field holding the second text of a pair.")
    label_field: str | None = Field("label", description="Field holding the label.")
    tokens_field: str | None = Field("tokens", description="Field holding the list of tokens.")
    tags_field: str | None = Field("tags", description="Field holding the list of tags (one per token).")
    label_type: Literal["class", "float"] = Field(
        "class", description="'class' turns labels into strings; 'float' for regression."
    )
    prompt_field: str | None = Field("prompt", description="Field holding the prompt: a string, or a list of "
                                     "{role, content} messages (causal-lm).")
    completion_field: str | None = Field("completion", description="Field holding the prompt's completion: a "
                                         "string, or a list of messages.")
    messages_field: str | None = Field("messages", description="Field holding a conversation: a list of "
                                       "{role, content} messages (causal-lm).")
    source_field: str | None = Field("source", description="Field holding the source text (seq2seq).")
    target_field: str | None = Field("target", description="Field holding the target text (seq2seq).")


# the generative fields, read by default only where their value has this type (else the field is metadata)
GENERATIVE_TYPES: dict[str, tuple[type, ...]] = {
    "prompt": (str, list), "completion": (str, list), "messages": (list,), "source": (str,), "target": (str,),
}


class JsonlReader:
    """One JSON object a line; the configured fields present are mapped to example keys."""

    def __init__(self, params: JsonlParams) -> None:
        self.params = params
        fields = {"text": params.text_field, "text_pair": params.text_pair_field, "label": params.label_field,
                  "tokens": params.tokens_field, "tags": params.tags_field,
                  **{key: getattr(params, f"{key}_field") for key in GENERATIVE_TYPES}}
        self.fields = {key: name for key, name in fields.items() if name is not None}
        # Fields set explicitly must be on every line; defaults only apply where present.
        self.required = {key for key in self.fields if f"{key}_field" in params.model_fields_set}

    def read(self, path: Path) -> list[Example]:
        """Records of ``path`` with keys among text, text_pair, label, tokens, tags, prompt, completion, messages,
        source and target, and their location (``_source``, ``_line``)."""
        examples: list[Example] = []
        keys: set[str] | None = None
        first = 0
        for number, line in enumerate(lines_of(read_text(path)), 1):
            if not line.strip():
                continue
            record = json_object(line, path, number)
            for key in self.required:
                if self.fields[key] not in record:
                    raise DataError(path, number, f"missing field {self.fields[key]!r}")
            example = {key: record[name] for key, name in self.fields.items()
                       if name in record and self._mapped(key, record[name])}
            if keys is None:
                if not example:
                    wanted = ", ".join(repr(name) for name in self.fields.values())
                    message = f"none of the fields {wanted} found; the record has: {', '.join(record)}"
                    raise DataError(path, number, message)
                keys, first = set(example), number
            elif set(example) != keys:
                missing = sorted(self.fields[key] for key in keys - set(example))
                extra = sorted(self.fields[key] for key in set(example) - keys)
                what = (
                    f"missing field(s) {', '.join(missing)}"
                    if missing
                    else f"unexpected field(s) {', '.join(extra)}"
                )
                raise DataError(path, number, f"{what} (compared with the record on line {first})")
            examples.append({**self._check(example, path, number), **located(path, number)})
        if not examples:
            raise DataError(path, None, "no records found (empty file)")
        return examples

    def _mapped(self, key: str, value: Any) -> bool:
        """Whether a field becomes an example key: a generative field left at its default name only where its
        value has the expected type (else it is metadata, e.g. a "source" object)."""
        return key in self.required or key not in GENERATIVE_TYPES or isinstance(value, GENERATIVE_TYPES[key])

    def _check(self, example: Example, path: Path, line: int) -> Example:
        """Check the types of ``example`` (from ``line``) and normalise its label."""
        for key in ("text", "text_pair", "source", "target"):
            if key in example and not isinstance(example[key], str):
                raise DataError(path, line, f"field {self.fields[key]!r} must be a string")
        for key in ("prompt", "completion", "messages"):
            if key in example and not isinstance(example[key], GENERATIVE_TYPES[key]):
                kind = "a string or a list of messages" if str in GENERATIVE_TYPES[key] else "a list of messages"
                raise DataError(path, line, f"field {self.fields[key]!r} must be {kind}")
        for key in ("tokens", "tags"):
            value = example.get(key)
            if key in example and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise DataError(path, line, f"field {self.fields[key]!r} must be a list of strings")
        if "tags" in example:
            if "tokens" in example and len(example["tags"]) != len(example["tokens"]):
                counts = f"{len(example['tokens'])} tokens but {len(example['tags'])} tags"
                raise DataError(path, line, f"{counts}: expected one tag per token")
            for tag in example["tags"]:
                check_tag(tag, path, line)
        if "label" in example:
            label = example["label"]
            if self.params.label_type == "float":
                example["label"] = parse_float(label, path, line)
            elif isinstance(label, (str, int)) and not isinstance(label, bool):
                example["label"] = str(label)
            else:
                raise DataError(path, line, f"label {label!r} must be a string or an integer")
        return example
