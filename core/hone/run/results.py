"""Stage results as the run directory keeps them: JSON values only, scalars picked out."""

from __future__ import annotations

import json
from typing import Any

from hone.spec.models import SPLITS


def scalars(results: dict[str, Any]) -> dict[str, float]:
    """The numeric results (not reports, not flags) as floats."""
    return {k: float(v) for k, v in results.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def plain(value: Any) -> Any:
    """``value`` as metrics.json holds it: only JSON types, so ``torch.load(weights_only=True)`` reads it back."""
    return json.loads(json.dumps(value, default=str))


def scalars_tree(result: dict[str, Any], reports: bool = True) -> dict[str, Any]:
    """Keep JSON-friendly values; drop nested reports when ``reports`` is false."""
    out: dict[str, Any] = {}
    for key, value in result.items():
        if isinstance(value, dict):
            out[key] = scalars_tree(value, reports) if reports or key in SPLITS else None
        elif isinstance(value, (int, float, str, bool, list)) or value is None:
            out[key] = value
    return {k: v for k, v in out.items() if v is not None or reports}
