"""Per-example predictions of an evaluation, written as JSONL under ``predictions/`` in the run directory."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hone.atomic import write_text
from hone.components import EvalOutput
from hone.paths import inside_run_dir

PREDICTIONS_DIR = "predictions"
UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def predictions_name(index: int, stage: str, split: str, epoch: int | None = None) -> str:
    """``predictions/<index>-<stage>-<split>[-epoch<NNN>].jsonl``: stage, split and epoch readable from the name.

    Every name starts with the stage's index (default stage names already do), so stages whose names differ only
    in characters a file name cannot hold still get files of their own."""
    stem = stage if stage.startswith(f"{index}-") else f"{index}-{stage}"
    parts = [stem, split] + ([f"epoch{epoch:03d}"] if epoch is not None else [])
    return f"{PREDICTIONS_DIR}/{UNSAFE.sub('_', '-'.join(parts))}.jsonl"


def prediction_records(output: EvalOutput) -> list[dict[str, Any]]:
    """One record per example, in the split's order: its index, prediction and reference, then the task's
    details (e.g. the raw generated text) and its score where it has one."""
    details = output.details or []
    scores = output.scores or []
    records = []
    for i, (prediction, reference) in enumerate(zip(output.predictions, output.references)):
        record: dict[str, Any] = {"index": i, "prediction": prediction, "reference": reference}
        for key, value in (details[i] if i < len(details) and details[i] else {}).items():
            record.setdefault(key, value)
        if i < len(scores) and scores[i] is not None:
            record.setdefault("scores", scores[i])
        records.append(record)
    return records


def write_predictions(run_dir: Path, name: str, output: EvalOutput) -> Path | None:
    """Write ``output``'s predictions to ``run_dir / name`` atomically; None when it has none."""
    if not output.predictions:
        return None
    path = inside_run_dir(run_dir, name)
    lines = (json.dumps(record, ensure_ascii=False, default=str) + "\n" for record in prediction_records(output))
    write_text(path, "".join(lines))
    return path
