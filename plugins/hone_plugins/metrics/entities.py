"""Entity-level precision, recall and F1 over BIO tag sequences (seqeval, imported when computed)."""

from __future__ import annotations

import warnings
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hone.components import EvalOutput
from hone_plugins.metrics.pairs import check_lengths, is_sequence, score_row

Scheme = Literal["IOB1", "IOB2", "IOE1", "IOE2", "IOBES", "BILOU"]


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
        check_lengths(predictions, references, "tag sequences")
        if not predictions:
            raise ValueError("no tag sequences to score")
        for i, (p, r) in enumerate(zip(predictions, references)):
            if not (is_sequence(p) and is_sequence(r)):
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
            name: score_row(s["precision"], s["recall"], s["f1-score"], s["support"])
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



def entity_results(params: EntityParams) -> dict[str, str]:
    suffix = "_strict" if params.mode == "strict" else ""
    return {f"entity_{score}{suffix}": "max" for score in ("f1", "precision", "recall")}  # the headline first
