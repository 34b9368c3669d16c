"""Built-in metrics: classification (scikit-learn), entity-level F1 (seqeval), perplexity, regression,
and generation (:mod:`hone_plugins.metrics.generation`: ROUGE, BLEU, chrF, exact match).

scikit-learn, seqeval, numpy, rouge-score and sacrebleu are imported inside ``compute`` so that
importing this module (which ``hone plugins`` does) stays cheap. Each metric declares its scalar
results and which way each improves (``results=``); reports and matrices are not declared.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hone.components import EvalOutput
from hone.hookspecs import hookimpl
from hone.registry import NoParams, Register
from hone_plugins.metrics import generation

Average = Literal["micro", "macro", "weighted", "binary"]
Scheme = Literal["IOB1", "IOB2", "IOE1", "IOE2", "IOBES", "BILOU"]


def _check_lengths(predictions: Sequence[Any], references: Sequence[Any], what: str = "examples") -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references ({what} must pair up)")


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _pairs(output: EvalOutput) -> tuple[list[Any], list[Any]]:
    """Predictions and references, paired and checked; token tag sequences are flattened."""
    predictions, references = list(output.predictions), list(output.references)
    _check_lengths(predictions, references)
    if not predictions:
        raise ValueError("no predictions to score")
    nested = [_is_sequence(p) or _is_sequence(r) for p, r in zip(predictions, references)]
    if not any(nested):
        return predictions, references
    flat_p: list[Any] = []
    flat_r: list[Any] = []
    for i, (p, r) in enumerate(zip(predictions, references)):
        if not (_is_sequence(p) and _is_sequence(r)):
            raise ValueError(f"example {i}: mixing tag sequences with single labels")
        if len(p) != len(r):
            raise ValueError(f"example {i}: {len(p)} predicted tags but {len(r)} reference tags")
        flat_p.extend(p)
        flat_r.extend(r)
    if not flat_p:
        raise ValueError("no tags to score")
    return flat_p, flat_r


def _sorted_labels(values: set[Hashable]) -> list[Any]:
    try:
        return sorted(values)  # type: ignore[type-var]
    except TypeError:  # mixed types (e.g. 1 and "1") have no natural order
        return sorted(values, key=repr)


def _labels(output: EvalOutput, predictions: list[Any], references: list[Any]) -> list[Any]:
    """``output.label_names`` when given (every value must be one of them), else the sorted union."""
    seen = set(predictions) | set(references)
    if not output.label_names:
        return _sorted_labels(seen)
    unknown = seen - set(output.label_names)
    if unknown:
        raise ValueError(f"labels {_sorted_labels(unknown)} are not in label_names {output.label_names}")
    return list(output.label_names)


def _accuracy(predictions: list[Any], references: list[Any]) -> float:
    return sum(p == r for p, r in zip(predictions, references)) / len(predictions)


def _scores(precision: Any, recall: Any, f1: Any, support: Any) -> dict[str, Any]:
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1), "support": int(support)}


class Accuracy:
    """Fraction of labels (or tokens, for tag sequences) predicted exactly."""

    def compute(self, output: EvalOutput) -> dict[str, Any]:
        predictions, references = _pairs(output)
        return {"accuracy": _accuracy(predictions, references)}


def accuracy(params: NoParams) -> Accuracy:
    """Accuracy over labels, or over tokens for tag sequences."""
    return Accuracy()


class AveragedParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    average: Average | None = Field(
        None,
        description="micro, macro, weighted or binary; default: binary when pos_label is set, else macro.",
    )
    pos_label: str | int | None = Field(None, description="The positive class for average=binary (default 1).")
    zero_division: Literal[0, 1] = Field(0, description="Score given where a ratio is 0/0.")

    @model_validator(mode="after")
    def _resolve_average(self) -> AveragedParams:
        if self.average is None:
            self.average = "binary" if self.pos_label is not None else "macro"
        elif self.pos_label is not None and self.average != "binary":
            raise ValueError(f"pos_label only applies to average='binary', not '{self.average}'")
        return self


class ClassScore:
    """One of precision, recall or F1, averaged over classes as ``params.average`` says.

    The key is the score's name for average=binary (``f1``), else ``<score>_<average>`` (``f1_macro``).
    """

    def __init__(self, score: Literal["precision", "recall", "f1"], params: AveragedParams) -> None:
        self.score, self.params = score, params

    def check_labels(self, labels: Sequence[str]) -> None:
        """Refuse, before any work, a positive class the data's labels cannot match (``1`` for labels '0'/'1')."""
        if self.params.average != "binary" or not labels:
            return
        pos_label = 1 if self.params.pos_label is None else self.params.pos_label
        if pos_label in labels:
            return
        quoted = isinstance(pos_label, int) and str(pos_label) in labels
        hint = f"; write pos_label: '{pos_label}' (quoted: the labels are strings)" if quoted else ""
        raise ValueError(f"pos_label {pos_label!r} is not a label of the data; valid labels: "
                         f"{', '.join(map(repr, labels))}{hint}")

    def compute(self, output: EvalOutput) -> dict[str, Any]:
        from sklearn.metrics import precision_recall_fscore_support

        predictions, references = _pairs(output)
        average = self.params.average
        pos_label = 1 if self.params.pos_label is None else self.params.pos_label
        seen = set(references) | set(predictions)
        if average == "binary" and self.params.pos_label is None and not seen <= {0, 1}:
            raise ValueError(f"average='binary' needs pos_label for labels {_sorted_labels(seen)}")
        p, r, f, _ = precision_recall_fscore_support(
            references, predictions, average=average, pos_label=pos_label, zero_division=self.params.zero_division
        )
        value = {"precision": p, "recall": r, "f1": f}[self.score]
        key = self.score if average == "binary" else f"{self.score}_{average}"
        return {key: float(value)}


def precision(params: AveragedParams) -> ClassScore:
    """Precision over classes (scikit-learn): binary, micro, macro or weighted."""
    return ClassScore("precision", params)


def recall(params: AveragedParams) -> ClassScore:
    """Recall over classes (scikit-learn): binary, micro, macro or weighted."""
    return ClassScore("recall", params)


def f1(params: AveragedParams) -> ClassScore:
    """F1 over classes (scikit-learn): binary, micro, macro or weighted."""
    return ClassScore("f1", params)


class ZeroDivisionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zero_division: Literal[0, 1] = Field(0, description="Score given where a ratio is 0/0.")


class ClassificationReport:
    """Per-class precision, recall, F1 and support, with accuracy and macro/weighted averages.

    Classes are those seen in predictions or references, in ``label_names`` order when given.
    """

    def __init__(self, params: ZeroDivisionParams) -> None:
        self.params = params

    def compute(self, output: EvalOutput) -> dict[str, Any]:
        from sklearn.metrics import precision_recall_fscore_support

        predictions, references = _pairs(output)
        seen = set(predictions) | set(references)
        labels = [label for label in _labels(output, predictions, references) if label in seen]
        results: dict[str, Any] = {}
        for average in (None, "macro", "weighted"):
            p, r, f, support = precision_recall_fscore_support(
                references, predictions, labels=labels, average=average, zero_division=self.params.zero_division
            )
            if average is None:
                results["classification_report"] = {
                    str(label): _scores(p[i], r[i], f[i], support[i]) for i, label in enumerate(labels)
                }
            else:
                results.update({f"precision_{average}": float(p), f"recall_{average}": float(r)})
                results[f"f1_{average}"] = float(f)
        results["accuracy"] = _accuracy(predictions, references)
        return results


def classification_report(params: ZeroDivisionParams) -> ClassificationReport:
    """Per-class precision/recall/F1/support with accuracy and macro and weighted averages."""
    return ClassificationReport(params)


class EntityParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["conlleval", "strict"] = Field(
        "conlleval",
        description="conlleval: lenient chunking (an I- tag may start an entity); strict: tags must follow scheme "
        "(results then end in _strict: entity_f1_strict, ...).",
    )
    scheme: Scheme | None = Field(None, description="Tagging scheme for mode=strict (default IOB2).")
    zero_division: Literal[0, 1] = Field(0, description="Score given where a ratio is 0/0.")

    @model_validator(mode="after")
    def _scheme_needs_strict(self) -> EntityParams:
        if self.scheme is not None and self.mode != "strict":
            raise ValueError("scheme only applies to mode='strict'")
        return self


class EntityF1:
    """Entity-level (chunk) micro precision/recall/F1 over BIO-tagged sequences, and a report per type."""

    def __init__(self, params: EntityParams) -> None:
        self.params = params

    def compute(self, output: EvalOutput) -> dict[str, Any]:
        import seqeval.scheme
        from seqeval.metrics import classification_report
        from sklearn.exceptions import UndefinedMetricWarning

        predictions, references = list(output.predictions), list(output.references)
        _check_lengths(predictions, references, "tag sequences")
        if not predictions:
            raise ValueError("no tag sequences to score")
        for i, (p, r) in enumerate(zip(predictions, references)):
            if not (_is_sequence(p) and _is_sequence(r)):
                raise ValueError(f"example {i}: entity-f1 needs lists of tags, got {type(p).__name__}")
            if len(p) != len(r):
                raise ValueError(f"example {i}: {len(p)} predicted tags but {len(r)} reference tags")
        options: dict[str, Any] = {}
        if self.params.mode == "strict":
            options = {"mode": "strict", "scheme": getattr(seqeval.scheme, self.params.scheme or "IOB2")}
        with warnings.catch_warnings():
            # seqeval 1.2 warns about 0/0 exactly when zero_division is set explicitly
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            # and averages over no entity types (a macro average that is not returned) with numpy warnings
            warnings.simplefilter("ignore", RuntimeWarning)
            report = classification_report(
                [list(r) for r in references],
                [list(p) for p in predictions],
                output_dict=True,
                zero_division=self.params.zero_division,
                **options,
            )
        micro = report["micro avg"]
        per_type = {
            name: _scores(s["precision"], s["recall"], s["f1-score"], s["support"])
            for name, s in report.items()
            if not name.endswith(" avg")
        }
        suffix = "_strict" if self.params.mode == "strict" else ""  # both modes can be asked for in one stage
        return {
            f"entity_precision{suffix}": float(micro["precision"]),
            f"entity_recall{suffix}": float(micro["recall"]),
            f"entity_f1{suffix}": float(micro["f1-score"]),
            f"entity_report{suffix}": per_type,
        }


def entity_f1(params: EntityParams) -> EntityF1:
    """Entity-level precision/recall/F1 for BIO tag sequences (seqeval; conlleval or strict)."""
    return EntityF1(params)


class ConfusionMatrix:
    """Counts of (reference, prediction) pairs: rows are references, columns predictions."""

    def compute(self, output: EvalOutput) -> dict[str, Any]:
        from sklearn.metrics import confusion_matrix

        predictions, references = _pairs(output)
        labels = _labels(output, predictions, references)
        matrix = confusion_matrix(references, predictions, labels=labels)
        return {"confusion_matrix": {"labels": labels, "matrix": matrix.tolist()}}


def confusion_matrix(params: NoParams) -> ConfusionMatrix:
    """Confusion matrix (rows: references, columns: predictions) over labels or tokens."""
    return ConfusionMatrix()


class Perplexity:
    """``exp(loss)`` where ``loss`` is the evaluation's mean token cross-entropy (natural log)."""

    def compute(self, output: EvalOutput) -> dict[str, Any]:
        _check_lengths(output.predictions, output.references)
        if output.loss is None:
            raise ValueError("perplexity needs the evaluation loss (mean token cross-entropy), but output.loss is None")
        try:
            return {"perplexity": math.exp(output.loss)}
        except OverflowError:
            return {"perplexity": math.inf}


def perplexity(params: NoParams) -> Perplexity:
    """Perplexity of a causal LM: exp of the mean token cross-entropy loss."""
    return Perplexity()


def _floats(output: EvalOutput) -> tuple[Any, Any]:
    import numpy as np

    _check_lengths(output.predictions, output.references)
    if not output.predictions:
        raise ValueError("no predictions to score")
    try:
        return np.asarray(output.predictions, dtype=float), np.asarray(output.references, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"regression metrics need numeric predictions and references: {error}") from None


class MeanSquaredError:
    """Mean of squared differences between predicted and reference values."""

    def compute(self, output: EvalOutput) -> dict[str, Any]:
        predictions, references = _floats(output)
        return {"mse": float(((predictions - references) ** 2).mean())}


def mse(params: NoParams) -> MeanSquaredError:
    """Mean squared error for regression."""
    return MeanSquaredError()


class Pearson:
    """Pearson correlation of predictions with references; NaN when either side is constant."""

    def compute(self, output: EvalOutput) -> dict[str, Any]:
        predictions, references = _floats(output)
        if len(predictions) < 2:
            raise ValueError("pearson needs at least 2 predictions")
        dp, dr = predictions - predictions.mean(), references - references.mean()
        denominator = math.sqrt(float((dp**2).sum() * (dr**2).sum()))
        return {"pearson": float((dp * dr).sum()) / denominator if denominator else math.nan}


def pearson(params: NoParams) -> Pearson:
    """Pearson correlation for regression."""
    return Pearson()


def class_score_results(score: Literal["precision", "recall", "f1"]) -> Callable[[AveragedParams], dict[str, str]]:
    """The key :class:`ClassScore` reports for given params: ``f1`` for average=binary, else ``f1_<average>``."""

    def results(params: AveragedParams) -> dict[str, str]:
        return {score if params.average == "binary" else f"{score}_{params.average}": "max"}

    return results


def entity_results(params: EntityParams) -> dict[str, str]:
    suffix = "_strict" if params.mode == "strict" else ""
    return {f"entity_{score}{suffix}": "max" for score in ("f1", "precision", "recall")}  # the headline first


REPORT_RESULTS = {
    f"{score}_{average}": "max" for average in ("macro", "weighted") for score in ("precision", "recall", "f1")
}


CLASSES, NUMBERS, TEXTS = ("labels", "tags"), ("numbers",), ("texts",)  # the prediction kinds each metric scores (scores=)
GENERATION = {"rouge": {"rouge_score": generation.INSTALL}, "sacrebleu": {"sacrebleu": generation.INSTALL}}


@hookimpl
def register_metrics(register: Register) -> None:
    register("accuracy", accuracy, NoParams, results={"accuracy": "max"}, scores=CLASSES)
    register("precision", precision, AveragedParams, results=class_score_results("precision"), scores=CLASSES)
    register("recall", recall, AveragedParams, results=class_score_results("recall"), scores=CLASSES)
    register("f1", f1, AveragedParams, results=class_score_results("f1"), scores=CLASSES)
    register("classification-report", classification_report, ZeroDivisionParams,
             results={**REPORT_RESULTS, "accuracy": "max"}, scores=CLASSES)
    register("entity-f1", entity_f1, EntityParams, results=entity_results, scores=("tags",))
    register("confusion-matrix", confusion_matrix, NoParams, results={}, scores=CLASSES)  # a matrix only: no scalar result
    register("perplexity", perplexity, NoParams, results={"perplexity": "min"})  # from the loss: any task
    register("mse", mse, NoParams, results={"mse": "min"}, scores=NUMBERS)
    register("pearson", pearson, NoParams, results={"pearson": "max"}, scores=NUMBERS)
    register("rouge", generation.rouge, generation.RougeParams, results=generation.rouge_results, scores=TEXTS,
             requires=GENERATION["rouge"])
    register("bleu", generation.bleu, generation.BleuParams, results={"bleu": "max"}, scores=TEXTS,
             requires=GENERATION["sacrebleu"])
    register("chrf", generation.chrf, generation.ChrfParams, results=generation.chrf_results, scores=TEXTS,
             requires=GENERATION["sacrebleu"])
    register("exact-match", generation.exact_match, generation.ExactMatchParams, results={"exact_match": "max"},
             scores=(*TEXTS, *CLASSES))


def per_type_report(params: NoParams) -> Any:
    """Per entity type (entity-f1) and per class (classification-report) tables of the evaluate stages' results."""
    from hone_plugins.metrics.report import per_type_section
    from hone_plugins.report.sections import Sections

    return Sections(per_type_section)


def confusion_report(params: NoParams) -> Any:
    """The confusion matrix of the evaluate stages' results, drawn and counted."""
    from hone_plugins.metrics.report import confusion_section
    from hone_plugins.report.sections import Sections

    return Sections(confusion_section)


@hookimpl
def register_report_sections(register: Register) -> None:
    register("per-type-results", per_type_report, order=61)
    register("confusion-matrix", confusion_report, order=62)
