"""The built-in readers: discovery, parsing, located errors, real CoNLL-2003 / SST-2 counts."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from hone.errors import DataError
from hone.plugins import load_plugins

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "examples" / "data"


@pytest.fixture(scope="module")
def host() -> Any:
    return load_plugins()


def reader(host: Any, name: str, **params: Any) -> Any:
    return host.registries.get("reader", name).build(params)


def plain(examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Examples without their location keys (``_source``, ``_line``)."""
    return [{k: v for k, v in e.items() if not k.startswith("_")} for e in examples]


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def data_error(host: Any, name: str, path: Path, **params: Any) -> DataError:
    with pytest.raises(DataError) as info:
        reader(host, name, **params).read(path)
    assert info.value.path == str(path)
    return info.value


CONLL = """-DOCSTART- -X- -X- O

Mara NNP B-NP B-PER
Velling NNP I-NP I-PER
visited VBD B-VP O
Oslo NNP B-NP B-LOC
. . O O

Kestrel NNP B-NP B-ORG
Systems NNPS I-NP I-ORG
grew VBD B-VP O
"""


def test_readers_are_registered_with_descriptions(host: Any) -> None:
    for name in ("conll", "tsv", "csv", "jsonl"):
        component = host.registries.get("reader", name)
        assert component.doc and component.origin.distribution == "hone-ml"


def test_conll_reads_sentences(host: Any, tmp_path: Path) -> None:
    examples = reader(host, "conll", tag_column=3).read(write(tmp_path, "a.txt", CONLL))
    assert [(e["_source"], e["_line"], e["_token_per_line"]) for e in examples] == [(str(tmp_path / "a.txt"), 3, True),
                                                                                    (str(tmp_path / "a.txt"), 9, True)]
    assert plain(examples) == [
        {"tokens": ["Mara", "Velling", "visited", "Oslo", "."], "tags": ["B-PER", "I-PER", "O", "B-LOC", "O"]},
        {"tokens": ["Kestrel", "Systems", "grew"], "tags": ["B-ORG", "I-ORG", "O"]},
    ]


def test_conll_crlf_tabs_and_columns(host: Any, tmp_path: Path) -> None:
    path = write(tmp_path, "b.tsv", "B-PER\tAna\r\nO\tran\r\n\r\n")
    assert reader(host, "conll", separator="\t", token_column=1, tag_column=0).read(path) == [
        {"tokens": ["Ana", "ran"], "tags": ["B-PER", "O"], "_source": str(path), "_line": 1, "_token_per_line": True}
    ]


def test_conll_docstart_kept_when_asked(host: Any, tmp_path: Path) -> None:
    path = write(tmp_path, "c.txt", "-DOCSTART- O\n\nAna B-PER\n")
    assert len(reader(host, "conll").read(path)) == 1
    assert reader(host, "conll", skip_docstart=False).read(path)[0] == {"tokens": ["-DOCSTART-"], "tags": ["O"], "_source": str(path),
                                                                   "_line": 1, "_token_per_line": True}


def test_conll_iob1_is_converted_to_iob2(host: Any, tmp_path: Path) -> None:
    text = "Ana I-PER\nLind I-PER\nBen B-PER\nmet O\nOslo I-LOC\nBank I-ORG\nCity I-ORG\n"
    path = write(tmp_path, "iob1.txt", text)
    assert reader(host, "conll", scheme="iob1").read(path)[0]["tags"] == [
        "B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG"
    ]
    assert reader(host, "conll").read(path)[0]["tags"][0] == "I-PER"


@pytest.mark.parametrize(
    ("content", "line", "words"),
    [
        ("a B-X\nb O\n\nc d O\n", 4, "expected 2 columns (as on line 1), got 3"),
        ("a O\nb B-PER\nc PER\n", 3, "invalid tag 'PER'"),
        ("a O\nb E-PER\n", 2, "invalid tag 'E-PER'"),
        (b"a O\nb O\n\nc\xff O\n", 4, "not valid UTF-8"),
    ],
)
def test_conll_errors_are_located(host: Any, tmp_path: Path, content: str | bytes, line: int, words: str) -> None:
    error = data_error(host, "conll", write(tmp_path, "bad.txt", content))
    assert error.line == line and words in error.message
    assert str(error).startswith(f"{tmp_path / 'bad.txt'}:{line}: ")


@pytest.mark.parametrize("content", ["", "\n\n", "-DOCSTART- -X- -X- O\n\n"])
def test_conll_empty_file(host: Any, tmp_path: Path, content: str) -> None:
    error = data_error(host, "conll", write(tmp_path, "empty.txt", content))
    assert error.line is None and "no sentences" in error.message


def test_conll_column_out_of_range(host: Any, tmp_path: Path) -> None:
    error = data_error(host, "conll", write(tmp_path, "short.txt", "\na O\n"), tag_column=3)
    assert error.line == 2 and "tag_column 3" in error.message


def test_missing_file_is_a_data_error(host: Any, tmp_path: Path) -> None:
    assert "cannot read" in data_error(host, "conll", tmp_path / "nope.txt").message


def test_tsv_reads_and_strips(host: Any, tmp_path: Path) -> None:
    path = write(tmp_path, "s.tsv", 'sentence\tlabel\nit \'s "great" \t1\n\nawful . \t0\n')
    examples = reader(host, "tsv").read(path)
    assert [(e["_source"], e["_line"]) for e in examples] == [(str(path), 2), (str(path), 4)]
    assert plain(examples) == [
        {"text": 'it \'s "great"', "label": "1"},
        {"text": "awful .", "label": "0"},
    ]


def test_csv_pairs_and_float_labels(host: Any, tmp_path: Path) -> None:
    content = 'premise,hypothesis,score\n"A man, smiling",A person,4.5\nx,"multi\nline",1e-1\n'
    path = write(tmp_path, "p.csv", content)
    examples = reader(
        host, "csv", text_column="premise", text_pair_column="hypothesis", label_column="score", label_type="float"
    ).read(path)
    assert plain(examples) == [
        {"text": "A man, smiling", "text_pair": "A person", "label": 4.5},
        {"text": "x", "text_pair": "multi\nline", "label": 0.1},
    ]


def test_tsv_without_labels(host: Any, tmp_path: Path) -> None:
    path = write(tmp_path, "u.tsv", "sentence\nhello\n")
    assert plain(reader(host, "tsv", label_column=None).read(path)) == [{"text": "hello"}]


@pytest.mark.parametrize(
    ("name", "content", "params", "line", "words"),
    [
        ("tsv", "text\tlabel\na\t1\n", {}, 1, "no column 'sentence' in the header; available columns: text, label"),
        ("csv", "sentence,label\na,1\nb,0,extra\n", {}, 3, "expected 2 fields (as in the header), got 3"),
        ("tsv", "sentence\tlabel\na\t1\n\nb\n", {}, 4, "expected 2 fields"),
        ("tsv", "sentence\tlabel\na\t0.5\nb\thigh\n", {"label_type": "float"}, 3, "label 'high' is not a finite"),
        ("tsv", "sentence\tlabel\na\tnan\n", {"label_type": "float"}, 2, "not a finite number"),
        ("tsv", "sentence\tlabel\na\t1\nb\t \n", {}, 3, "empty label in column 'label'"),
        ("csv", 'sentence,label\na,1\n"b"c,0\n', {}, 3, "malformed CSV"),
        ("tsv", b"sentence\tlabel\na\t1\nb\xe9\t0\n", {}, 3, "not valid UTF-8"),
    ],
)
def test_table_errors_are_located(
    host: Any, tmp_path: Path, name: str, content: str | bytes, params: dict[str, Any], line: int, words: str
) -> None:
    error = data_error(host, name, write(tmp_path, f"bad.{name}", content), **params)
    assert error.line == line and words in error.message


@pytest.mark.parametrize(
    ("content", "words"), [("", "empty file"), ("\n", "empty file"), ("sentence\tlabel\n", "no rows")]
)
def test_table_empty(host: Any, tmp_path: Path, content: str, words: str) -> None:
    error = data_error(host, "tsv", write(tmp_path, "e.tsv", content))
    assert error.line is None and words in error.message


def test_jsonl_maps_fields(host: Any, tmp_path: Path) -> None:
    path = write(tmp_path, "a.jsonl", '{"text": "hi", "label": 1}\n\n{"text": "yo", "label": "0", "id": 7}\n')
    examples = reader(host, "jsonl").read(path)
    assert plain(examples) == [{"text": "hi", "label": "1"}, {"text": "yo", "label": "0"}]
    assert [(e["_source"], e["_line"]) for e in examples] == [(str(path), 1), (str(path), 3)]
    path = write(tmp_path, "b.jsonl", '{"words": ["Ana", "ran"], "ner": ["B-PER", "O"]}\n')
    assert plain(reader(host, "jsonl", tokens_field="words", tags_field="ner").read(path)) == [
        {"tokens": ["Ana", "ran"], "tags": ["B-PER", "O"]}
    ]
    path = write(tmp_path, "c.jsonl", '{"q": "a", "p": "b", "y": "2.5"}\n')
    pairs = reader(host, "jsonl", text_field="q", text_pair_field="p", label_field="y", label_type="float")
    assert plain(pairs.read(path)) == [{"text": "a", "text_pair": "b", "label": 2.5}]


@pytest.mark.parametrize(
    ("content", "params", "line", "words"),
    [
        ('{"text": "a", "label": 1}\n{"text": "b", "label": 0\n', {}, 2, "invalid JSON"),
        ('{"text": "a", "label": 1}\n[1, 2]\n', {}, 2, "expected a JSON object"),
        ('{"text": "a", "label": 1}\n\n{"text": "b"}\n', {}, 3, "missing field(s) label (compared with"),
        ('{"text": "a"}\n{"text": "b", "label": 1}\n', {}, 2, "unexpected field(s) label"),
        ('{"text": "a"}\n', {"label_field": "y"}, 1, "missing field 'y'"),
        ('{"sentence": "a"}\n', {}, 1, "none of the fields"),
        ('{"tokens": ["a", "b"], "tags": ["O"]}\n', {}, 1, "2 tokens but 1 tags"),
        ('{"tokens": ["a"], "tags": ["X"]}\n', {}, 1, "invalid tag 'X'"),
        ('{"text": 3}\n', {}, 1, "must be a string"),
        ('{"text": "a", "label": "x"}\n', {"label_type": "float"}, 1, "not a finite number"),
        (b'{"text": "a"}\n{"text": "\xc3"}\n', {}, 2, "not valid UTF-8"),
    ],
)
def test_jsonl_errors_are_located(
    host: Any, tmp_path: Path, content: str | bytes, params: dict[str, Any], line: int, words: str
) -> None:
    error = data_error(host, "jsonl", write(tmp_path, "bad.jsonl", content), **params)
    assert error.line == line and words in error.message


def test_jsonl_empty(host: Any, tmp_path: Path) -> None:
    assert data_error(host, "jsonl", write(tmp_path, "e.jsonl", "\n")).line is None


def test_unknown_params_are_refused(host: Any) -> None:
    with pytest.raises(Exception, match="delimiter"):
        reader(host, "tsv", delimiter=";")


def test_sample_files_parse(host: Any) -> None:
    conll = reader(host, "conll")
    splits = {name: conll.read(SAMPLES / "ner-sample" / f"{name}.txt") for name in ("train", "valid", "test")}
    assert [len(s) for s in splits.values()] == [60, 20, 20]
    types = {tag[2:] for sentence in splits["train"] for tag in sentence["tags"] if tag != "O"}
    assert types == {"PER", "ORG", "LOC", "MISC"}
    rows = reader(host, "tsv").read(SAMPLES / "sentiment-sample.tsv")
    assert len(rows) == 80 and Counter(r["label"] for r in rows) == {"0": 40, "1": 40}
    assert all(r["text"] == r["text"].strip() for r in rows)
    records = reader(host, "jsonl").read(SAMPLES / "sample.jsonl")
    assert records and all(set(plain([r])[0]) == {"text", "label"} for r in records)


@pytest.mark.slow
def test_conll2003_counts(host: Any, shared_data: Path) -> None:
    conll = reader(host, "conll", tag_column=3)
    train = conll.read(shared_data / "conll2003" / "train.txt")
    tags = Counter(tag for sentence in train for tag in sentence["tags"])
    assert len(train) == 14_041 and sum(len(s["tokens"]) for s in train) == 203_621
    assert tags["B-PER"] == 6_600 and tags["I-MISC"] == 1_155 and tags["O"] == 169_578 and len(tags) == 9
    assert all(len(s["tokens"]) == len(s["tags"]) for s in train)
    valid = conll.read(shared_data / "conll2003" / "valid.txt")
    test = conll.read(shared_data / "conll2003" / "test.txt")
    assert (len(valid), len(test)) == (3_250, 3_453)
    assert sum(len(s["tokens"]) for s in test) == 46_435
    # The data is IOB2 already, so reading it as IOB1 must change nothing.
    assert reader(host, "conll", scheme="iob1").read(shared_data / "conll2003" / "valid.txt") == valid


@pytest.mark.slow
def test_sst2_counts(host: Any, shared_data: Path) -> None:
    tsv = reader(host, "tsv")
    dev = tsv.read(shared_data / "sst2" / "dev.tsv")
    assert len(dev) == 872 and Counter(r["label"] for r in dev) == {"0": 428, "1": 444}
    assert dev[0]["text"] == "it 's a charming and often affecting journey ."
    train = tsv.read(shared_data / "sst2" / "train.tsv")
    assert len(train) == 67_349 and Counter(r["label"] for r in train)["0"] == 29_780


def test_importing_readers_does_not_import_torch() -> None:
    code = "import sys, hone_plugins.readers; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_value_map_turns_a_columns_values_into_texts(host: Any, tmp_path: Path) -> None:
    table = write(tmp_path, "sst.tsv", "sentence\tlabel\na fine film\t1\na dull one\t0\n")
    params = {"prompt_column": "sentence", "completion_column": "label", "value_map": {"label": {0: "negative",
                                                                                                 1: "positive"}}}
    examples = reader(host, "tsv", **params).read(table)
    assert plain(examples) == [{"prompt": "a fine film", "completion": "positive"},
                               {"prompt": "a dull one", "completion": "negative"}]
    write(tmp_path, "sst.tsv", "sentence\tlabel\na fine film\t1\na dull one\t2\n")
    with pytest.raises(DataError, match=r"sst.tsv:3: '2' in column 'label' is not in its value_map \('0', '1'\)"):
        reader(host, "tsv", **params).read(table)
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="value_map names 'stars', which the reader does not read; columns "
                                              "read: sentence, label"):
        reader(host, "tsv", value_map={"stars": {"1": "bad"}})
    with pytest.raises(ValidationError, match="quote them"):
        reader(host, "tsv", prompt_column="sentence", completion_column="label", value_map={"label": {"1": True}})
