"""Classification metrics over labels, or tokens for tag sequences (scikit-learn, imported when computed):
accuracy, precision, recall, F1, the classification report and the confusion matrix."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hone.components import EvalOutput
from hone.registry import NoParams
from hone_plugins.metrics.pairs import fraction_equal, label_set, paired, score_row, sorted_labels

Average = Literal["micro", "macro", "weighted", "binary"]


class Accuracy:
    """Fraction of labels (or tokens, for tag sequences) predicted exactly."""

    def compute(self, output: EvalOutput) -> dict[str, Any]:
        predictions, references = paired(output)
        return {"accuracy": fraction_equal(predictions, references)}


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

        predictions, references = paired(output)
        average = self.params.average
        pos_label = 1 if self.params.pos_label is None else self.params.pos_label
        seen = set(references) | set(predictions)
        if average == "binary" and self.params.pos_label is None and not seen <= {0, 1}:
            raise ValueError(f"average='binary' needs pos_label for labels {sorted_labels(seen)}")
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

        predictions, references = paired(output)
        seen = set(predictions) | set(references)
        labels = [label for label in label_set(output, predictions, references) if label in seen]
        results: dict[str, Any] = {}
        for average in (None, "macro", "weighted"):
            p, r, f, support = precision_recall_fscore_support(
                references, predictions, labels=labels, average=average, zero_division=self.params.zero_division
            )
            if average is None:
                results["classification_report"] = {
                    str(label): score_row(p[i], r[i], f[i], support[i]) for i, label in enumerate(labels)
                }
            else:
                results.update({f"precision_{average}": float(p), f"recall_{average}": float(r)})
                results[f"f1_{average}"] = float(f)
        results["accuracy"] = fraction_equal(predictions, references)
        return results


def classification_report(params: ZeroDivisionParams) -> ClassificationReport:
    """Per-class precision/recall/F1/support with accuracy and macro and weighted averages."""
    return ClassificationReport(params)



class ConfusionMatrix:
    """Counts of (reference, prediction) pairs: rows are references, columns predictions."""

    def compute(self, output: EvalOutput) -> dict[str, Any]:
        from sklearn.metrics import confusion_matrix

        predictions, references = paired(output)
        labels = label_set(output, predictions, references)
        matrix = confusion_matrix(references, predictions, labels=labels)
        return {"confusion_matrix": {"labels": labels, "matrix": matrix.tolist()}}


def confusion_matrix(params: NoParams) -> ConfusionMatrix:
    """Confusion matrix (rows: references, columns: predictions) over labels or tokens."""
    return ConfusionMatrix()



def class_score_results(score: Literal["precision", "recall", "f1"]) -> Callable[[AveragedParams], dict[str, str]]:
    """The key :class:`ClassScore` reports for given params: ``f1`` for average=binary, else ``f1_<average>``."""

    def results(params: AveragedParams) -> dict[str, str]:
        return {score if params.average == "binary" else f"{score}_{params.average}": "max"}

    return results



REPORT_RESULTS = {
    f"{score}_{average}": "max" for average in ("macro", "weighted") for score in ("precision", "recall", "f1")
}
