"""The TSV and CSV readers: a table with a header naming its columns."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hone.components import Example
from hone.errors import DataError
from hone_plugins.readers.text import lf_lines, located, parse_float, read_text


class TableParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text_column: str | None = Field(
        "sentence", description="Header name of the text column (not required by default when a prompt or "
        "source column is set)."
    )
    text_pair_column: str | None = Field(None, description="Header name of the second text (sentence pairs).")
    label_column: str | None = Field("label", description="Header name of the label column; unset for unlabelled data.")
    label_type: Literal["class", "float"] = Field(
        "class", description="'class' keeps labels as strings; 'float' for regression."
    )
    quoted: bool | None = Field(None, description="Honour double-quoted fields (default: yes for csv, no for tsv).")
    prompt_column: str | None = Field(None, description="Header name of the prompt (causal-lm instruction data).")
    completion_column: str | None = Field(None, description="Header name of the completion of the prompt.")
    source_column: str | None = Field(None, description="Header name of the source text (seq2seq).")
    target_column: str | None = Field(None, description="Header name of the target text (seq2seq).")
    value_map: dict[str, dict[str, str]] = Field(default_factory=dict, description="Header name -> {value: "
                                                 "replacement}: every value of that column must be listed, e.g. "
                                                 "{label: {'0': negative, '1': positive}} for a completion column.")

    @field_validator("value_map", mode="before")
    @classmethod
    def _string_values(cls, mapping: Any) -> Any:
        if not isinstance(mapping, Mapping):
            return mapping
        pairs = [pair for m in mapping.values() if isinstance(m, Mapping) for pair in m.items()]
        if any(isinstance(x, bool) for pair in pairs for x in pair):
            raise ValueError("value_map values and replacements must be strings: quote them (YAML reads yes, no, "
                             "on, off, true and false as booleans)")
        # YAML reads `0: negative` with an integer key; the table's values are strings
        return {c: {str(k): str(v) for k, v in m.items()} if isinstance(m, Mapping) else m for c, m in mapping.items()}

    @model_validator(mode="after")
    def _mapped_columns_are_read(self) -> TableParams:
        read = self.columns().values()
        if unread := sorted(set(self.value_map) - set(read)):
            raise ValueError(f"value_map names {', '.join(map(repr, unread))}, which the reader does not read; "
                             f"columns read: {', '.join(read) or 'none'}")
        return self

    def columns(self) -> dict[str, str]:
        """Example key -> header name of every column to read; text and label columns by default only when no
        prompt/completion/source/target column is set."""
        generative = {"prompt": self.prompt_column, "completion": self.completion_column,
                      "source": self.source_column, "target": self.target_column}
        implicit = not any(generative.values())
        classic = {key: getattr(self, f"{key}_column") for key in ("text", "label")
                   if implicit or f"{key}_column" in self.model_fields_set}
        wanted = {**classic, "text_pair": self.text_pair_column, **generative}
        return {key: column for key, column in wanted.items() if column is not None}


class TableReader:
    """A delimited table with a header line, read with the stdlib csv module."""

    def __init__(self, params: TableParams, delimiter: str) -> None:
        self.params, self.delimiter = params, delimiter

    def read(self, path: Path) -> list[Example]:
        """Rows of ``path`` as ``{"text", "text_pair"?, "label"?}`` (label a str, or a float for regression), or
        prompt/completion/source/target, each with its location (``_source``, ``_line``)."""
        p = self.params
        quoted = p.quoted if p.quoted is not None else self.delimiter != "\t"
        rows = csv.reader(
            lf_lines(read_text(path)),
            delimiter=self.delimiter,
            quoting=csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE,
            strict=True,
        )
        header: list[str] | None = None
        wanted = p.columns()
        maps = {key: p.value_map[column] for key, column in wanted.items() if column in p.value_map}
        indices: dict[str, int] = {}
        examples: list[Example] = []
        start = 1
        try:
            for row in rows:
                line, start = start, rows.line_num + 1
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if header is None:
                    header = [name.strip() for name in row]
                    for key, column in wanted.items():
                        if column not in header:
                            available = ", ".join(header)
                            message = f"no column {column!r} in the header; available columns: {available}"
                            raise DataError(path, line, message)
                        indices[key] = header.index(column)
                    continue
                if len(row) != len(header):
                    raise DataError(path, line, f"expected {len(header)} fields (as in the header), got {len(row)}")
                example: Example = {key: row[index].strip() for key, index in indices.items()}
                for key, mapping in maps.items():
                    if example[key] not in mapping:
                        known = ", ".join(map(repr, mapping))
                        raise DataError(path, line, f"{example[key]!r} in column {wanted[key]!r} is not in its "
                                        f"value_map ({known})")
                    example[key] = mapping[example[key]]
                if p.label_type == "float" and "label" in example:
                    example["label"] = parse_float(example["label"], path, line)
                elif example.get("label") == "":
                    raise DataError(path, line, f"empty label in column {p.label_column!r}")
                examples.append({**example, **located(path, line)})
        except csv.Error as error:
            raise DataError(path, rows.line_num, f"malformed {'CSV' if quoted else 'TSV'}: {error}") from None
        if header is None:
            raise DataError(path, None, "empty file: expected a header line and rows")
        if not examples:
            raise DataError(path, None, "no rows after the header")
        return examples
