"""Built-in metrics, registered here and written in one module per family: classification
(:mod:`~hone_plugins.metrics.classification`, scikit-learn), entity-level F1 (:mod:`~hone_plugins.metrics.entities`,
seqeval), perplexity and regression (:mod:`~hone_plugins.metrics.numeric`) and generation
(:mod:`~hone_plugins.metrics.generation`: ROUGE, BLEU, chrF, exact match).

scikit-learn, seqeval, numpy, rouge-score and sacrebleu are imported inside ``compute`` so that
importing this module (which ``hone plugins`` does) stays cheap. Each metric declares its scalar
results and which way each improves (``results=``); reports and matrices are not declared.
"""

from __future__ import annotations

from typing import Any

from hone.hookspecs import hookimpl
from hone.registry import NoParams, Register
from hone_plugins.metrics import generation
from hone_plugins.metrics.classification import (REPORT_RESULTS, Accuracy, AveragedParams, ClassificationReport,
                                                 ClassScore, ConfusionMatrix, ZeroDivisionParams, accuracy,
                                                 class_score_results, classification_report, confusion_matrix, f1,
                                                 precision, recall)
from hone_plugins.metrics.entities import EntityF1, EntityParams, entity_f1, entity_results
from hone_plugins.metrics.numeric import MeanSquaredError, Pearson, Perplexity, mse, pearson, perplexity

__all__ = ["Accuracy", "AveragedParams", "ClassScore", "ClassificationReport", "ConfusionMatrix", "EntityF1",
           "EntityParams", "MeanSquaredError", "Pearson", "Perplexity", "ZeroDivisionParams", "accuracy",
           "classification_report", "confusion_matrix", "entity_f1", "f1", "mse", "pearson", "perplexity", "precision",
           "recall"]


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
