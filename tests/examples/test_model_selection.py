"""examples/model-selection/selection.yaml: a valid spec for `hone select` (its end-to-end runs: tests/hone_plugins/selection)."""

from __future__ import annotations

from pathlib import Path

from hone.spec.loading import load_spec
from hone_plugins.selection.check import check_selection

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "model-selection" / "selection.yaml"


def test_the_shipped_selection_is_valid() -> None:
    spec, _ = load_spec(EXAMPLE)
    check_selection(EXAMPLE, spec)  # the cuts fit MiniLM's 6 layers
    selection = spec.selection  # type: ignore[attr-defined]
    assert [(c.name, c.layers) for c in selection.candidates] == [("minilm-l6", None), ("minilm-l3", 3), ("minilm-l1", [0])]
    assert selection.objective.goal == "maximize"
    assert selection.objective.formula() == "test.entity_f1 - 0.01 * latency_ms - 0.0005 * size_mb"
    assert Path(spec.data.train).exists()
