"""Fuzzed data files (CoNLL, TSV, CSV, JSONL): always examples or a DataError with file and line, never a traceback.

    HONE_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest tests/reliability/test_fuzz_readers.py -s
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hone.errors import DataError
from hone.plugins import PluginHost, load_plugins

from .fuzzing import FUZZ, NASTY, TRIED, file_bytes, mutated_text
from .helpers import NER_SAMPLE, REPO

SAMPLES = {
    "conll": "\n".join((NER_SAMPLE / "train.txt").read_text().splitlines()[:40]) + "\n",
    "tsv": "\n".join((REPO / "examples" / "data" / "sentiment-sample.tsv").read_text().splitlines()[:12]) + "\n",
    "csv": 'sentence,other,label\n"a, quoted ""one""",x,pos\nplain text,y,neg\n"multi\nline",z,pos\n',
    "jsonl": (REPO / "examples" / "data" / "sample.jsonl").read_text()
    + '{"tokens": ["Ana", "ran"], "tags": ["B-PER", "O"], "label": 3}\n',
}
PARAMS = {
    "conll": st.fixed_dictionaries({}, optional={
        "token_column": st.integers(-5, 5), "tag_column": st.integers(-5, 5), "separator": st.sampled_from([" ", "\t", ",", "  "]),
        "skip_docstart": st.booleans(), "scheme": st.sampled_from(["iob1", "iob2"])}),
    "tsv": st.fixed_dictionaries({}, optional={
        "text_column": st.sampled_from(["sentence", "label", "text", ""]), "label_column": st.sampled_from(["label", "sentence", None]),
        "text_pair_column": st.sampled_from(["label", "nope", None]), "label_type": st.sampled_from(["class", "float"]),
        "quoted": st.sampled_from([True, False, None])}),
    "jsonl": st.fixed_dictionaries({}, optional={
        "text_field": st.sampled_from(["text", "tokens", None]), "label_field": st.sampled_from(["label", "text", None]),
        "tokens_field": st.sampled_from(["tokens", None]), "tags_field": st.sampled_from(["tags", "tokens", None]),
        "label_type": st.sampled_from(["class", "float"])}),
}
PARAMS["csv"] = PARAMS["tsv"]
# Lines that are valid JSON but stress the reader: huge numbers, deep nesting, odd types.
JSON_LINES = ['{"text": "a", "label": ' + "9" * 5000 + "}", '{"text": ' + "[" * 50_000 + "]" * 50_000 + "}", '{"text": "a", "label": 1e999}',
              '{"text": "a", "label": true}', '{"text": "a", "label": null}', '{"tokens": "ab", "tags": "O"}', "[1, 2]", '"text"',
              '{"text": "a", "label": [1]}', '{"text": "\\ud800", "label": "x"}', "NaN", '{"text": "a", "label": NaN}']


@functools.cache
def host() -> PluginHost:
    """Loaded once, and not a fixture argument: hypothesis would print all of it with every failing example."""
    return load_plugins(warn=False)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-data")


@pytest.fixture(scope="module", autouse=True)
def report_counts() -> Iterator[None]:
    yield
    counts = {k: v for k, v in sorted(TRIED.items()) if k.startswith("data")}
    print(f"\nfuzzed data files: {sum(counts.values())} {counts}")


def check_example(reader: str, example: dict[str, Any]) -> None:
    """What every task relies on, per reader."""
    if reader == "conll":
        assert example["tokens"] and len(example["tokens"]) == len(example["tags"])
        assert all(isinstance(t, str) and t for t in example["tokens"])
        assert all(tag == "O" or (tag[:2] in ("B-", "I-") and len(tag) > 2) for tag in example["tags"])
    for key in ("text", "text_pair"):
        assert key not in example or isinstance(example[key], str)
    if "label" in example:
        label = example["label"]
        assert (isinstance(label, float) and math.isfinite(label)) or isinstance(label, str)
    for key in ("tokens", "tags"):
        assert key not in example or all(isinstance(v, str) for v in example[key])


def check(host: PluginHost, reader: str, params: dict[str, Any], path: Path) -> None:
    """The one property: a list of well-formed examples, or a DataError naming the file and a real line."""
    lines = path.read_bytes().count(b"\n") + 1
    try:
        examples = host.registries.get("reader", reader).build(params).read(path)
    except DataError as error:
        TRIED[f"data-{reader}-refused"] += 1
        assert error.path == str(path) and str(error).startswith(f"{path}")
        assert error.line is None or 1 <= error.line <= lines, (error.line, lines)
        assert "\n" not in error.message
    else:
        TRIED[f"data-{reader}-read"] += 1
        assert isinstance(examples, list) and examples
        for example in examples:
            check_example(reader, example)


@FUZZ
@given(data=st.data(), reader=st.sampled_from(sorted(SAMPLES)))
def test_mutated_data_files(folder: Path, data: st.DataObject, reader: str) -> None:
    text = data.draw(mutated_text(SAMPLES[reader], max_mutations=4))
    path = folder / f"mutated.{reader}"
    path.write_bytes(data.draw(file_bytes(text)))
    check(host(), reader, data.draw(st.one_of(st.just({}), PARAMS[reader])), path)


@FUZZ
@given(data=st.data(), reader=st.sampled_from(sorted(SAMPLES)))
def test_generated_data_files(folder: Path, data: st.DataObject, reader: str) -> None:
    cell = st.one_of(st.text(max_size=12), st.sampled_from(["O", "B-PER", "I-LOC", "B-", "X-Y", *NASTY[:40]]))
    separator = data.draw(st.sampled_from([" ", "\t", ",", "\n"]))
    rows = data.draw(st.lists(st.lists(cell, min_size=0, max_size=5), max_size=8))
    text = "\n".join(separator.join(row) for row in rows)
    if reader == "jsonl":
        text = "\n".join(data.draw(st.lists(st.sampled_from(JSON_LINES + SAMPLES["jsonl"].splitlines()), max_size=6)))
    path = folder / f"generated.{reader}"
    path.write_bytes(data.draw(file_bytes(text)))
    check(host(), reader, data.draw(PARAMS[reader]), path)


@pytest.mark.parametrize("line", JSON_LINES)
def test_hostile_json_lines(folder: Path, line: str) -> None:
    path = folder / "hostile.jsonl"
    path.write_text('{"text": "fine", "label": "a"}\n' + line + "\n")
    check(host(), "jsonl", {}, path)


def test_missing_and_unreadable_files(folder: Path) -> None:
    for reader in SAMPLES:
        with pytest.raises(DataError, match="cannot read file"):
            host().registries.get("reader", reader).build({}).read(folder / "absent.txt")
        with pytest.raises(DataError, match="cannot read file"):
            host().registries.get("reader", reader).build({}).read(folder)
