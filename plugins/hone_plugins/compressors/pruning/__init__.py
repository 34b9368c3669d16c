"""Pruning compressors: magnitude (unstructured), Wanda (activation-aware, unstructured or N:M) and structured
(attention heads and feed-forward neurons removed)."""


def cubic_sparsity(final: float, step: int, start: int, end: int) -> float:
    """Zhu & Gupta's gradual schedule: 0 at step ``start``, rising cubically to ``final`` at ``end``."""
    progress = min(1.0, max(0.0, (step - start) / max(1, end - start)))
    return final * (1 - (1 - progress) ** 3)
