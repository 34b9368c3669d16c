"""Pruning compressors: magnitude (unstructured), Wanda (activation-aware, unstructured or N:M) and structured
(attention heads and feed-forward neurons removed)."""
