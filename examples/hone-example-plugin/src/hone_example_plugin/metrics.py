"""The ``exact-match`` metric."""

from __future__ import annotations

from typing import Any

from hone.components import EvalOutput


class ExactMatch:
    """Fraction of examples whose whole prediction equals the reference.

    A tag sequence counts only if every tag is right; text is compared after the optional
    case folding and whitespace stripping.
    """

    def __init__(self, *, ignore_case: bool = False, strip: bool = True) -> None:
        self.ignore_case, self.strip = ignore_case, strip

    def _normalise(self, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [self._normalise(item) for item in value]
        if isinstance(value, str):
            value = value.strip() if self.strip else value
            return value.casefold() if self.ignore_case else value
        return value

    def compute(self, output: EvalOutput) -> dict[str, Any]:
        predictions, references = list(output.predictions), list(output.references)
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
        if not predictions:
            raise ValueError("no predictions to score")
        correct = sum(self._normalise(p) == self._normalise(r) for p, r in zip(predictions, references))
        return {"exact_match": correct / len(predictions)}
