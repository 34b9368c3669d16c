"""Built-in readers: CoNLL token/tag columns (:mod:`~hone_plugins.readers.conll`), TSV/CSV tables
(:mod:`~hone_plugins.readers.table`) and JSON lines (:mod:`~hone_plugins.readers.jsonl`)."""

from __future__ import annotations

from hone.hookspecs import hookimpl
from hone.registry import Register
from hone_plugins.readers.conll import ConllParams, ConllReader, check_tag, iob1_to_iob2
from hone_plugins.readers.jsonl import JsonlParams, JsonlReader
from hone_plugins.readers.table import TableParams, TableReader
from hone_plugins.readers.text import lines_of, read_text

__all__ = ["ConllParams", "ConllReader", "JsonlParams", "JsonlReader", "TableParams", "TableReader", "check_tag",
           "iob1_to_iob2", "lines_of", "read_text"]


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
