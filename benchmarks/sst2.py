"""SST-2 with MiniLM-L6 through `hone run examples/sst2.yaml`: dev accuracy and time, as a table.

    .venv/bin/python benchmarks/sst2.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import REPO, require_data, run_peak_rss_gb, stage_timings, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(f"/tmp/hone-bench/sst2-{int(time.time())}"))
    parser.add_argument("--spec", type=Path, default=REPO / "examples" / "sst2.yaml")
    args = parser.parse_args()
    require_data("sst2/train.tsv", "sst2/dev.tsv")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hone", "run", str(args.spec), "--out", str(args.out), "-q"], check=True)
    total = time.perf_counter() - start
    metrics = json.loads((args.out / "metrics.json").read_text())
    timings = stage_timings(args.out)
    train_stage = next(s for s in metrics if "steps" in metrics[s])
    dev = next(r["validation"] for s, r in metrics.items() if "steps" not in r)
    t = timings[train_stage]
    print(f"SST-2, {args.spec.name}, run dir {args.out}")
    print(table(
        ["epochs", "s/epoch (train)", "samples/s", "dev accuracy", "dev F1 (macro)", "whole run (s)", "peak RSS (GB)"],
        [[len(t["epochs"]), sum(t["epochs"]) / len(t["epochs"]), sum(t["samples_per_s"]) / len(t["epochs"]),
          dev["accuracy"], dev.get("f1_macro", "-"), total, run_peak_rss_gb(args.out)]],
    ))


if __name__ == "__main__":
    main()
