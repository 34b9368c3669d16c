"""CoNLL-2003 NER with MiniLM-L6 through `hone run examples/conll2003-ner.yaml`: test entity F1,
per-type F1, epoch wall time, samples/s and peak memory, as a table.

    .venv/bin/python benchmarks/conll_finetune.py [--out DIR] [--spec SPEC] [--epochs N] [--final-fit]

`--epochs N` caps the last train stage (the full fine-tune) at N epochs: the recipe sized for a
slower machine's 30-minute budget. `--final-fit` trains on train + validation (no validation split, so no
early stopping), the usual last step for a reported CoNLL result, with the epoch count early stopping found.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from common import DATA, REPO, require_data, run_peak_rss_gb, stage_timings, table

SPEC = REPO / "examples" / "conll2003-ner.yaml"


def variant(spec: Path, epochs: int | None, final_fit: bool) -> Path:
    """A copy of ``spec`` (``${VAR}`` references and data paths resolved) whose last train stage runs at most
    ``epochs`` epochs; with ``final_fit``, it trains on train + validation with no validation split (and so no
    early stopping), as CoNLL results are usually reported."""
    from hone.spec.interpolate import interpolate

    data, problems = interpolate(yaml.safe_load(spec.read_text()))
    if problems:
        raise SystemExit(f"{spec}: {problems}")
    for split in ("train", "validation", "test", "path"):
        if data["data"].get(split):
            data["data"][split] = str((spec.parent / data["data"][split]).resolve())
    folder = Path(tempfile.mkdtemp(prefix="hone-bench-"))
    train_stages = [stage for stage in data["stages"] if stage["type"] == "train"]
    if epochs is not None:
        train_stages[-1]["epochs"] = min(train_stages[-1]["epochs"], epochs)
    if final_fit:
        both = folder / "train+validation.txt"
        both.write_text(Path(data["data"]["train"]).read_text() + "\n" + Path(data["data"].pop("validation")).read_text())
        data["data"]["train"] = str(both)
        for stage in train_stages:
            stage.pop("early_stopping", None)
    copy = folder / spec.name
    copy.write_text(yaml.safe_dump(data, sort_keys=False))
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(f"/tmp/hone-bench/conll-{int(time.time())}"))
    parser.add_argument("--spec", type=Path, default=SPEC)
    parser.add_argument("--epochs", type=int, default=None, help="cap the last train stage at N epochs")
    parser.add_argument("--final-fit", action="store_true",
                        help="train on train + validation, without validation or early stopping (use --epochs: the count it found)")
    args = parser.parse_args()
    require_data("conll2003/train.txt", "conll2003/valid.txt", "conll2003/test.txt")
    spec = variant(args.spec, args.epochs, args.final_fit) if args.epochs or args.final_fit else args.spec
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hone", "run", str(spec), "--out", str(args.out), "-q"], check=True)
    total = time.perf_counter() - start
    metrics = json.loads((args.out / "metrics.json").read_text())
    timings = stage_timings(args.out)
    rows = []
    for stage, result in metrics.items():
        t = timings.get(stage, {})
        epochs = t.get("epochs", [])
        rows.append([
            stage, len(epochs), sum(epochs) / len(epochs) if epochs else "-",
            sum(t.get("samples_per_s", [])) / len(epochs) if epochs else "-",
            t.get("wall", 0.0),
            (result.get("validation") or {}).get("entity_f1", "-"),
            (result.get("test") or {}).get("entity_f1", "-"),
        ])
    print(f"CoNLL-2003, {args.spec.name}, data {DATA}, run dir {args.out}")
    print(table(["stage", "epochs", "s/epoch (train)", "samples/s", "stage wall s", "val entity F1", "test entity F1"], rows))
    test = next(r["test"] for r in metrics.values() if "test" in r)
    per_type = test["entity_report"]
    print()
    print(table(["entity type", "precision", "recall", "F1", "support"],
                [[k, v["precision"], v["recall"], v["f1"], v["support"]] for k, v in sorted(per_type.items())]))
    training = sum(t.get("wall", 0.0) for s, t in timings.items() if s in metrics and "validation" in metrics[s])
    strict = f" (strict IOB2: {test['entity_f1_strict']:.4f})" if "entity_f1_strict" in test else ""
    print(f"\ntest entity F1 {test['entity_f1']:.4f}{strict}; training stages {training / 60:.1f} min; "
          f"whole run {total / 60:.1f} min; peak RSS {run_peak_rss_gb(args.out):.2f} GB")


if __name__ == "__main__":
    main()
