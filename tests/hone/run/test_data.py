"""hone.run.data: deterministic splits and unknown-label checks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hone.run.data import check_labels, split_examples
from hone.errors import DataError

EXAMPLES = [{"text": f"t{i}", "label": str(i % 3)} for i in range(100)]


def test_split_is_deterministic_and_complete() -> None:
    first = split_examples(EXAMPLES, seed=3)
    assert first == split_examples(EXAMPLES, seed=3)
    assert first != split_examples(EXAMPLES, seed=4)
    assert list(first) == ["train", "validation", "test"]
    assert [len(part) for part in first.values()] == [80, 10, 10]
    assert sorted(e["text"] for part in first.values() for e in part) == sorted(e["text"] for e in EXAMPLES)
    assert [e["text"] for e in EXAMPLES[:3]] == ["t0", "t1", "t2"]  # input left untouched


@pytest.mark.parametrize(
    ("n", "ratios", "sizes"),
    [
        (10, (0.8, 0.1, 0.1), [8, 1, 1]),
        (7, (0.5, 0.25, 0.25), [4, 1, 2]),
        (33, (0.7, 0.3, 0.0), [23, 10, 0]),
        (5, (0.0, 0.0, 1.0), [0, 0, 5]),
        (0, (0.8, 0.1, 0.1), [0, 0, 0]),
    ],
)
def test_split_respects_ratios(n: int, ratios: tuple[float, float, float], sizes: list[int]) -> None:
    parts = split_examples([{"text": str(i)} for i in range(n)], ratios, seed=0)
    assert [len(part) for part in parts.values()] == sizes


@pytest.mark.parametrize(
    ("ratios", "words"),
    [((0.8, 0.1), "3 values"), ((0.9, 0.2, -0.1), "non-negative"), ((0.5, 0.2, 0.2), "sum to 1")],
)
def test_split_rejects_bad_ratios(ratios: tuple[float, ...], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        split_examples(EXAMPLES, ratios)


def test_check_labels_passes_known_and_unlabelled() -> None:
    check_labels([{"label": "a"}, {"text": "no label"}], ["a", "b"], "dev.tsv")


def test_check_labels_names_file_and_label() -> None:
    examples = [{"label": "pos"}, {"label": "neutral"}, {"label": "neutral"}, {"label": "mixed"}]
    with pytest.raises(DataError) as info:
        check_labels(examples, ["neg", "pos"], "data/dev.tsv")
    error = info.value
    assert error.path == "data/dev.tsv"
    assert "'neutral'" in error.message and "first is example 2" in error.message
    assert "'mixed'" in error.message and "known labels: neg, pos" in error.message


def test_core_data_imports_no_plugins_or_torch() -> None:
    code = "import sys, hone.run.data; assert not {'torch', 'hone_plugins'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
