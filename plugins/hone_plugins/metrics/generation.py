"""Generation metrics: ROUGE (rouge-score), BLEU and chrF (sacrebleu), and SQuAD-style exact match.

Predictions are generated texts (after the task's post-processing); each reference is a text or a
list of texts (several references). BLEU and chrF take several references as parallel reference
streams (an example with fewer references leaves a gap in the later streams); ROUGE and exact
match score each example against its best reference.

rouge-score and sacrebleu are the optional extra ``generation``: the factories check they are
installed and ``compute`` imports them, so importing this module stays cheap.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, field_validator

from hone.components import EvalOutput
from hone.registry import Params
from hone_plugins.extras import require

INSTALL = "pip install 'hone-ml[generation]'"
RougeType = Literal["rouge1", "rouge2", "rougeL", "rougeLsum"]
ROUGE_TYPES: tuple[RougeType, ...] = ("rouge1", "rouge2", "rougeL", "rougeLsum")
# sacrebleu's tokenizers that need nothing more: ja-mecab and ko-mecab need MeCab packages, and the
# flores/spm ones download a SentencePiece model at run time.
Tokenize = Literal["13a", "intl", "zh", "char", "none"]
ARTICLES = re.compile(r"\b(a|an|the)\b", re.IGNORECASE)
PUNCTUATION = frozenset(string.punctuation)


def texts(output: EvalOutput, metric: str) -> tuple[list[str], list[list[str]]]:
    """The predicted texts and, for each, its references (one or more), checked."""
    predictions, references = list(output.predictions), list(output.references)
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references (examples must pair up)")
    if not predictions:
        raise ValueError(f"{metric} has no predictions to score (causal-lm text records generate nothing: give "
                         "prompt/completion or messages records, or score text with perplexity)")
    alternatives: list[list[str]] = []
    for i, (prediction, reference) in enumerate(zip(predictions, references)):
        if not isinstance(prediction, str):
            raise ValueError(f"example {i}: {metric} scores generated text, but the prediction is "
                             f"{type(prediction).__name__} {prediction!r:.80}, not str")
        found = [reference] if isinstance(reference, str) else reference
        if not isinstance(found, (list, tuple)) or not all(isinstance(r, str) for r in found):
            raise ValueError(f"example {i}: a reference is a text or a list of texts, got {reference!r:.80}")
        if not found:
            raise ValueError(f"example {i}: no reference (an empty list)")
        alternatives.append(list(found))
    return predictions, alternatives


def streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """sacrebleu's reference streams: stream k holds every example's k-th reference, None where it has fewer."""
    count = max(len(r) for r in references)
    return [[r[k] if k < len(r) else None for r in references] for k in range(count)]


class RougeParams(Params):
    types: list[RougeType] = Field(
        default_factory=lambda: list(ROUGE_TYPES), min_length=1,
        description="ROUGE variants, each a result of that name (F-measure): rouge1, rouge2 (n-grams), rougeL "
        "(longest common subsequence), rougeLsum (LCS over sentences, which are the lines of the text).",
    )
    use_stemmer: bool = Field(False, description="Porter-stem words before matching (rouge-score's use_stemmer).")

    @field_validator("types")
    @classmethod
    def _distinct(cls, types: list[RougeType]) -> list[RougeType]:
        repeated = sorted({t for t in types if types.count(t) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} given more than once: list each ROUGE variant once")
        return types


class Rouge:
    """Mean ROUGE F-measure over examples, each scored against its best reference (rouge-score).

    rouge-score's tokenizer lower-cases and keeps only ``[a-z0-9]`` runs: text in other scripts has no
    tokens and scores zero, so a corpus whose references have none is refused.
    """

    def __init__(self, params: RougeParams) -> None:
        self.types, self.use_stemmer = list(params.types), params.use_stemmer

    def compute(self, output: EvalOutput) -> dict[str, Any]:
        from rouge_score import rouge_scorer, tokenizers

        predictions, references = texts(output, "rouge")
        tokenizer = tokenizers.DefaultTokenizer(use_stemmer=False)
        if not any(tokenizer.tokenize(r) for refs in references for r in refs):
            raise ValueError("no reference has a word rouge-score can read: its tokenizer keeps only a-z and 0-9, "
                             "so text in other scripts scores zero; use chrf or bleu (tokenize: char or zh) instead")
        scorer = rouge_scorer.RougeScorer(self.types, use_stemmer=self.use_stemmer)
        totals = dict.fromkeys(self.types, 0.0)
        for prediction, refs in zip(predictions, references):
            scores = scorer.score_multi(refs, prediction)
            for rouge_type in self.types:
                totals[rouge_type] += scores[rouge_type].fmeasure
        return {rouge_type: float(total / len(predictions)) for rouge_type, total in totals.items()}


def rouge(params: RougeParams) -> Rouge:
    """ROUGE-1/2/L/Lsum F-measures of generated text against references (rouge-score)."""
    require("the rouge metric", ("rouge_score",), INSTALL)
    return Rouge(params)


def rouge_results(params: RougeParams) -> dict[str, str]:
    return dict.fromkeys(params.types, "max")


class BleuParams(Params):
    tokenize: Tokenize = Field(
        "13a", description="sacrebleu's tokenizer: 13a (its default, mteval-v13a), intl (Unicode punctuation), "
        "zh (Chinese), char (characters, for languages without spaces) or none (text already tokenized).",
    )
    lowercase: bool = Field(False, description="Lower-case predictions and references before matching.")


class Bleu:
    """Corpus BLEU (sacrebleu), 0-100, with sacrebleu's signature and the n-gram precisions behind it."""

    def __init__(self, params: BleuParams) -> None:
        self.params = params

    def compute(self, output: EvalOutput) -> dict[str, Any]:
        from sacrebleu.metrics import BLEU

        predictions, references = texts(output, "bleu")
        bleu = BLEU(tokenize=self.params.tokenize, lowercase=self.params.lowercase)
        score = bleu.corpus_score(predictions, streams(references))
        return {
            "bleu": float(score.score),
            "bleu_signature": str(bleu.get_signature()),
            "bleu_details": {
                "precisions": [float(p) for p in score.precisions],
                "brevity_penalty": float(score.bp),
                "length_ratio": float(score.ratio),
                "prediction_length": int(score.sys_len),
                "reference_length": int(score.ref_len),
            },
        }


def bleu(params: BleuParams) -> Bleu:
    """Corpus BLEU of generated text against one or more references (sacrebleu, 0-100)."""
    require("the bleu metric", ("sacrebleu",), INSTALL)
    return Bleu(params)


class ChrfParams(Params):
    word_order: int = Field(
        0, ge=0, le=2, description="Word n-gram order added to the character n-grams: 0 is chrF (result chrf), "
        "2 is chrF++ (result chrfpp; 1 gives chrfp).",
    )
    lowercase: bool = Field(False, description="Lower-case predictions and references before matching.")


def chrf_key(params: ChrfParams) -> str:
    """chrf, chrfp or chrfpp: sacrebleu's chrF, chrF+ and chrF++ without the '+', which trackers refuse in names."""
    return "chrf" + "p" * params.word_order


class Chrf:
    """Corpus chrF or chrF++ (sacrebleu), 0-100, with sacrebleu's signature."""

    def __init__(self, params: ChrfParams) -> None:
        self.params = params

    def compute(self, output: EvalOutput) -> dict[str, Any]:
        from sacrebleu.metrics import CHRF

        predictions, references = texts(output, "chrf")
        chrf = CHRF(word_order=self.params.word_order, lowercase=self.params.lowercase)
        score = chrf.corpus_score(predictions, streams(references))
        key = chrf_key(self.params)
        return {key: float(score.score), f"{key}_signature": str(chrf.get_signature())}


def chrf(params: ChrfParams) -> Chrf:
    """Corpus chrF / chrF++ (character n-gram F-score) against one or more references (sacrebleu, 0-100)."""
    require("the chrf metric", ("sacrebleu",), INSTALL)
    return Chrf(params)


def chrf_results(params: ChrfParams) -> dict[str, str]:
    return {chrf_key(params): "max"}


class ExactMatchParams(Params):
    lowercase: bool = Field(True, description="Compare texts lower-cased.")
    remove_punctuation: bool = Field(True, description="Drop ASCII punctuation (string.punctuation) before comparing.")
    remove_articles: bool = Field(True, description="Drop the words a, an and the before comparing.")
    collapse_whitespace: bool = Field(True, description="Strip the text and collapse runs of whitespace to one space.")


class ExactMatch:
    """Fraction of examples predicted exactly, after SQuAD's answer normalisation (each step can be switched off).

    Texts match their best reference. Tag sequences are compared as they are: a sequence counts only
    if every tag is right.
    """

    def __init__(self, params: ExactMatchParams) -> None:
        self.params = params

    def normalise(self, text: str) -> str:
        """SQuAD's ``normalize_answer``: lower-case, drop punctuation, drop articles, collapse whitespace."""
        if self.params.lowercase:
            text = text.lower()
        if self.params.remove_punctuation:
            text = "".join(ch for ch in text if ch not in PUNCTUATION)
        if self.params.remove_articles:
            text = ARTICLES.sub(" ", text)
        if self.params.collapse_whitespace:
            text = " ".join(text.split())
        return text

    def compute(self, output: EvalOutput) -> dict[str, Any]:
        predictions = list(output.predictions)
        if predictions and all(isinstance(p, (list, tuple)) for p in predictions):
            return {"exact_match": sequence_match(predictions, list(output.references))}
        if any(isinstance(p, (list, tuple)) for p in predictions):
            raise ValueError("exact-match got tag sequences mixed with texts: give one or the other")
        predictions, references = texts(output, "exact-match")
        correct = sum(
            self.normalise(prediction) in {self.normalise(r) for r in refs}
            for prediction, refs in zip(predictions, references)
        )
        return {"exact_match": correct / len(predictions)}


def sequence_match(predictions: list[Any], references: list[Any]) -> float:
    """Fraction of tag sequences whose every tag equals the reference's."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references (examples must pair up)")
    for i, reference in enumerate(references):
        if not isinstance(reference, (list, tuple)):
            raise ValueError(f"example {i}: the prediction is a tag sequence but the reference is a "
                             f"{type(reference).__name__}: {reference!r:.80}")
    return sum(list(p) == list(r) for p, r in zip(predictions, references)) / len(predictions)


def exact_match(params: ExactMatchParams) -> ExactMatch:
    """Exact match after SQuAD normalisation (texts, best of several references) or of whole tag sequences."""
    return ExactMatch(params)
