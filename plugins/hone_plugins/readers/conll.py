"""The CoNLL reader: token ... tag columns, a blank line between sentences, IOB1 or IOB2 tags."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hone.components import Example
from hone.errors import DataError
from hone_plugins.readers.text import lines_of, read_text

DOCSTART = "-DOCSTART-"


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
