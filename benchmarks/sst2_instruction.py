"""SST-2 as instruction tuning (MiniLM-L6 as a causal LM, the answer generated) beside the classification head.

Both recipes (`examples/sst2-instruction.yaml`, `examples/sst2.yaml`) on the same first ``--limit`` training
sentences, one epoch, scored on the whole dev set: the head by accuracy, the decoder by exact match of its
generated answer after post-processing (lower-cased, the first "positive"/"negative" in it).

    .venv/bin/python benchmarks/sst2_instruction.py [--limit 4000] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from common import DATA, REPO, require_data, stage_timings, table

MEASURE = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def spec_for(example: str, limit: int, epochs: int) -> dict[str, Any]:
    spec = yaml.safe_load((REPO / "examples" / example).read_text())
    spec["data"].update(train=str(DATA / "sst2" / "train.tsv"), validation=str(DATA / "sst2" / "dev.tsv"), limit=limit)
    spec["stages"][0]["epochs"] = epochs
    return spec


def run(spec: dict[str, Any], out: Path) -> tuple[Path, float, float]:
    """The run directory, wall seconds and peak RSS (GB) of ``hone run`` on ``spec``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    run_dir = out / spec["name"]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MEASURE, sys.executable, "-m", "hone", "run", str(path), "--out",
                           str(run_dir), "-q", "--no-report"], check=True, capture_output=True, text=True)
    return run_dir, time.perf_counter() - start, int(done.stdout.split()[-1]) / 1024 / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=4000, help="training sentences (the dev set is whole)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(f"/tmp/hone-bench/sst2-instruction-{int(time.time())}"))
    args = parser.parse_args()
    require_data("sst2/train.tsv", "sst2/dev.tsv")
    rows = []
    for label, example, metric in (("classification head (sequence-classification)", "sst2.yaml", "accuracy"),
                                   ("decoder, generated answer (causal-lm)", "sst2-instruction.yaml", "exact_match")):
        run_dir, wall, rss = run(spec_for(example, args.limit, args.epochs), args.out)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        train = next(s for s in metrics if "steps" in metrics[s])
        dev = next(r["validation"] for r in metrics.values() if "steps" not in r)
        t = stage_timings(run_dir)[train]
        answers = "-"
        if metric == "exact_match":
            predictions = [json.loads(line) for line in
                           next((run_dir / "predictions").glob("1-*.jsonl")).read_text().splitlines()]
            kinds = Counter(p["prediction"] if p["prediction"] in ("positive", "negative") else "other"
                            for p in predictions)
            answers = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        rows.append([label, len(t["epochs"]), sum(t["epochs"]) / len(t["epochs"]),
                     sum(t["samples_per_s"]) / len(t["epochs"]), dev[metric], answers, wall, rss])
    print(f"SST-2, first {args.limit} training sentences, {args.epochs} epoch(s), dev 872; run dirs in {args.out}")
    print(table(["model", "epochs", "s/epoch (train)", "samples/s", "dev accuracy", "dev answers", "whole run (s)",
                 "peak RSS (GB)"], rows))


if __name__ == "__main__":
    main()
