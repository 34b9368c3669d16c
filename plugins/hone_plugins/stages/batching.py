"""Batch order: length-grouped with shuffled buckets, reproducible from a seed."""

from __future__ import annotations

import random
from collections.abc import Sequence

BUCKET_BATCHES = 50  # batches per length-sorted bucket: enough to cut padding, few enough to keep randomness


def train_batches(lengths: Sequence[int], batch_size: int, seed: int, group_by_length: bool = True) -> list[list[int]]:
    """Shuffled batches of example indices; with grouping, similar lengths share a batch."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if not group_by_length:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    bucket = batch_size * BUCKET_BATCHES
    batches = []
    for start in range(0, len(order), bucket):
        chunk = sorted(order[start : start + bucket], key=lambda i: -lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def eval_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Batches sorted by length (least padding); callers restore order by index."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
