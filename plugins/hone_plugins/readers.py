"""Built-in readers: CoNLL token/tag columns, TSV/CSV tables and JSON lines."""

from __future__ import annotations

import codecs
import csv
import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hone.components import Example
from hone.errors import DataError
from hone.hookspecs import hookimpl
from hone.registry import Register

DOCSTART = "-DOCSTART-"


def read_text(path: Path) -> str:
    """The file decoded as UTF-8 (a leading BOM dropped); bad bytes raise DataError with their line."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise DataError(path, None, f"cannot read file: {error.strerror or error}") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        bad = data[error.start:error.end].hex(" ")
        raise DataError(path, line, f"not valid UTF-8 (byte(s) {bad}); re-save the file as UTF-8") from None


def lines_of(text: str) -> list[str]:
    """Lines split on LF only (CR of CRLF dropped): ``str.splitlines`` also breaks on form feeds etc."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def lf_lines(text: str) -> list[str]:
    """Lines ending at LF only, each with its ending: csv's line numbers then match the other readers' (a lone CR is data)."""
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def check_tag(tag: str, path: Path, line: int | None) -> None:
    """Raise DataError unless ``tag`` is ``O``, ``B-X`` or ``I-X``."""
    if tag != "O" and not (len(tag) > 2 and tag[1] == "-" and tag[0] in "BI"):
        raise DataError(path, line, f"invalid tag {tag!r}: expected O, B-<type> or I-<type> (IOB tagging)")


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """Turn IOB1 tags into IOB2: an ``I-X`` that starts an entity becomes ``B-X``."""
    out: list[str] = []
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and (previous == "O" or previous[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        previous = tag
    return out


class ConllParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token_column: int = Field(0, description="Column of the token (0-based; negative counts from the end).")
    tag_column: int = Field(-1, description="Column of the tag (0-based; -1 is the last column).")
    separator: str | None = Field(None, min_length=1, description="Column separator; unset splits on any whitespace.")
    skip_docstart: bool = Field(True, description="Skip -DOCSTART- lines (document boundaries).")
    scheme: Literal["iob2", "iob1"] = Field("iob2", description="Tag scheme of the file; IOB1 is converted to IOB2.")


class ConllReader:
    """One token a line in columns, a blank line between sentences."""

    def __init__(self, params: ConllParams) -> None:
        self.params = params

    def read(self, path: Path) -> list[Example]:
        """Sentences of ``path`` as ``{"tokens": [...], "tags": [...]}`` with IOB2 tags, and their location: ``_source``,
        ``_line`` (the first token's line) and ``_token_per_line`` (token i is on line ``_line + i``)."""
        p = self.params
        examples: list[Example] = []
        tokens: list[str] = []
        tags: list[str] = []
        valid_tags: set[str] = set()
        expected: int | None = None
        first_line = sentence_line = 0
        token_at = tag_at = 0

        def flush() -> None:
            if tokens:
                examples.append({"tokens": tokens[:], "tags": iob1_to_iob2(tags) if p.scheme == "iob1" else tags[:],
                                 "_source": str(path), "_line": sentence_line, "_token_per_line": True})
                tokens.clear()
                tags.clear()

        for number, line in enumerate(lines_of(read_text(path)), 1):
            if not line.strip():
                flush()
                continue
            if p.skip_docstart and line.lstrip().startswith(DOCSTART):
                flush()
                continue
            columns = line.split() if p.separator is None else line.split(p.separator)
            if expected is None:
                expected, first_line = len(columns), number
                for name, index in (("token_column", p.token_column), ("tag_column", p.tag_column)):
                    if not -expected <= index < expected:
                        message = f"{name} {index} is out of range: the line has {expected} columns"
                        raise DataError(path, number, message)
                token_at, tag_at = p.token_column % expected, p.tag_column % expected
            elif len(columns) != expected:
                raise DataError(
                    path, number, f"expected {expected} columns (as on line {first_line}), got {len(columns)}"
                )
            tag = columns[tag_at]
            if tag not in valid_tags:
                check_tag(tag, path, number)
                valid_tags.add(tag)
            if not tokens:
                sentence_line = number
            tokens.append(columns[token_at])
            tags.append(tag)
        flush()
        if not examples:
            raise DataError(path, None, "no sentences found (the file is empty or holds only -DOCSTART- lines)")
        return examples


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


def parse_float(value: Any, path: Path, line: int) -> float:
    """``value`` as a finite float, or DataError naming the line."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise DataError(path, line, f"label {value!r} is not a finite number (label_type is 'float')")
    return number


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


def located(path: Path, line: int) -> dict[str, Any]:
    """The keys that let a task report a bad example as ``file:line`` (``hone_plugins.tasks.common.data_error``)."""
    return {"_source": str(path), "_line": line}


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
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(path, number, f"invalid JSON: {error.msg} (column {error.colno})") from None
            except RecursionError:
                raise DataError(path, number, "JSON nested too deeply") from None
            except ValueError as error:  # an integer of more than 4300 digits
                raise DataError(path, number, f"invalid JSON: {error}") from None
            if not isinstance(record, dict):
                raise DataError(path, number, f"expected a JSON object, got {type(record).__name__}")
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


def conll(params: ConllParams) -> ConllReader:
    """CoNLL columns (token ... tag), blank line between sentences; IOB1 or IOB2 tags."""
    return ConllReader(params)


def tsv(params: TableParams) -> TableReader:
    """Tab-separated table with a header (e.g. GLUE): text, optional text pair, label."""
    return TableReader(params, "\t")


def csv_reader(params: TableParams) -> TableReader:
    """Comma-separated table with a header: text, optional text pair, label."""
    return TableReader(params, ",")


def jsonl(params: JsonlParams) -> JsonlReader:
    """JSON lines: text/text_pair/label, tokens/tags, prompt/completion, messages or source/target per record."""
    return JsonlReader(params)


@hookimpl
def register_readers(register: Register) -> None:
    register("conll", conll, ConllParams)
    register("tsv", tsv, TableParams)
    register("csv", csv_reader, TableParams)
    register("jsonl", jsonl, JsonlParams)
