"""Viterbi decoding under IOB2's rule that I-X continues a B-X or I-X."""

from __future__ import annotations

import math

import torch

from hone_plugins.tasks.bio import allowed_transitions, viterbi

LABELS = ["O", "B-LOC", "B-PER", "I-LOC", "I-PER"]


def log(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor([[math.log(p) for p in row] for row in rows])


def test_i_tags_may_only_continue_their_own_entity() -> None:
    allowed = allowed_transitions(LABELS)
    start = len(LABELS)
    i_per = LABELS.index("I-PER")
    assert [LABELS[r] for r in range(len(LABELS)) if allowed[r, i_per]] == ["B-PER", "I-PER"]
    assert not allowed[start, i_per]  # no sentence starts inside an entity
    assert allowed[:, LABELS.index("B-LOC")].all() and allowed[:, LABELS.index("O")].all()


def test_tags_that_are_not_bio_are_unconstrained() -> None:
    assert allowed_transitions(["NOUN", "VERB", "I-X"]).all()  # I-X without B-X is a plain label


def test_viterbi_repairs_an_entity_the_argmax_would_start_with_i() -> None:
    #            O     B-LOC B-PER I-LOC I-PER
    words = log([[0.55, 0.05, 0.30, 0.05, 0.05],
                 [0.05, 0.02, 0.02, 0.01, 0.90],
                 [0.90, 0.02, 0.02, 0.03, 0.03]])
    assert [LABELS[i] for i in words.argmax(-1)] == ["O", "I-PER", "O"]
    assert [LABELS[i] for i in viterbi(words, allowed_transitions(LABELS))] == ["B-PER", "I-PER", "O"]


def test_viterbi_matches_the_argmax_when_it_breaks_no_rule() -> None:
    torch.manual_seed(0)
    words = torch.randn(30, 3).log_softmax(-1)
    assert viterbi(words, allowed_transitions(["NOUN", "VERB", "ADJ"])) == words.argmax(-1).tolist()
    assert viterbi(words[:0], allowed_transitions(LABELS[:3])) == []
