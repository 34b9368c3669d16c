"""The metrics' own sections of a run report: per-type tables (entity-f1, classification-report) and confusion
matrices, for the evaluate stages and the run's headline results."""

from __future__ import annotations

from typing import Any

from hone.report import Details, Image, RunData, Section, Table
from hone_plugins.report import plots
from hone_plugins.report.rundata import evaluations, final_evaluation, stage_types

REPORT_KEYS = ("entity_report", "classification_report")


def _chosen(run: RunData) -> list[tuple[str, str, dict[str, Any]]]:
    """The evaluations worth a detailed look: evaluate stages' and the headline one."""
    types, final = stage_types(run), final_evaluation(run)
    return [item for item in evaluations(run) if types.get(item[0]) == "evaluate" or item == final]


def _report_rows(report: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for label, values in report.items():
        if isinstance(values, dict):
            rows.append([label, values.get("precision"), values.get("recall"), values.get("f1", values.get("f1-score")),
                         values.get("support")])
    return rows


def per_type_section(run: RunData) -> Section | None:
    blocks: list[Any] = []
    for stage, split, values in _chosen(run):
        for key in [k for k in values if k.startswith(REPORT_KEYS)]:  # also entity_report_strict, ...
            if isinstance(values[key], dict) and values[key]:
                kind = "entity type" if key.startswith("entity_report") else "class"
                variant = key.split("_report", 1)[1].lstrip("_")
                blocks.append(Table([kind, "precision", "recall", "f1", "support"], _report_rows(values[key]),
                                    caption=f"Per {kind}{f' ({variant})' if variant else ''}: {stage} ({split})"))
    return Section("Results per type", blocks) if blocks else None


def confusion_section(run: RunData) -> Section | None:
    found = evaluations(run)
    matrices = [item for item in _chosen(run) if isinstance(item[2].get("confusion_matrix"), dict)] or \
               [item for item in found if isinstance(item[2].get("confusion_matrix"), dict)][-1:]
    blocks: list[Any] = []
    for stage, split, values in matrices:
        matrix = values["confusion_matrix"]
        if matrix.get("labels") and matrix.get("matrix"):
            blocks.append(Image(plots.confusion_matrix(matrix["labels"], matrix["matrix"], f"confusion matrix: {stage} ({split})"),
                                f"confusion matrix {stage} {split}"))
            blocks.append(Details(f"Confusion matrix counts: {stage} ({split}); rows are references",
                                  [Table(["reference \\ predicted", *matrix["labels"]],
                                         [[label, *row] for label, row in zip(matrix["labels"], matrix["matrix"])])]))
    return Section("Confusion matrix", blocks) if blocks else None
