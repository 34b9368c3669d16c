"""What of a run's results a resumed or repeated run must reproduce exactly."""

from __future__ import annotations

from typing import Any

from hone.run.memory import MEASURED


def reproducible(metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics.json`` without the per-stage measurements (peak RSS), which differ from process to process."""
    return {stage: {k: v for k, v in result.items() if k not in MEASURED} if isinstance(result, dict) else result
            for stage, result in metrics.items()}
