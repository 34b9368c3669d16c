"""SST-2 as instruction tuning (MiniLM-L6 as a causal LM, the answer generated) beside the classification head.

Both recipes (`examples/sst2-instruction.yaml`, `examples/sst2.yaml`) on the same first ``--limit`` training
sentences, one epoch, scored on the whole dev set: the head by accuracy, the decoder by exact match of its
generated answer after post-processing (lower-cased, the first "positive"/"negative" in it). The decoder is trained
twice: in full, and through a LoRA adapter (the instruction recipe with ``LORA`` as its train stage's adapter).

    .venv/bin/python benchmarks/sst2_instruction.py [--limit 4000] [--epochs 1] [--decoder-lr 1e-4] [--out DIR]
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
from common import DATA, REPO, cpu_description, require_data, run_peak_rss_gb, stage_timings, table

# BertLMHeadModel's LM-head transform is new (the MiniLM checkpoint has no MLM head): it trains beside the adapter
LORA = {"name": "lora", "r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["query", "value"],
        "modules_to_save": ["transform"]}
LORA_LR = 2.0e-3  # adapters take a larger learning rate (examples/lora-conll2003.yaml)
def spec_for(example: str, limit: int, epochs: int, lr: float | None = None,
             adapter: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = yaml.safe_load((REPO / "examples" / example).read_text())
    spec["data"].update(train=str(DATA / "sst2" / "train.tsv"), validation=str(DATA / "sst2" / "dev.tsv"), limit=limit)
    train = spec["stages"][0]
    train["epochs"] = epochs
    if lr is not None:
        train["optimizer"]["lr"] = lr
    if adapter is not None:
        spec["name"] += "-lora"
        train["adapter"] = adapter
    return spec


def distill_spec(teacher: Path, limit: int, epochs: int) -> dict[str, Any]:
    """The instruction recipe with its train stage replaced by a distill stage: a student of the teacher's layers 0, 2
    and 4 (embeddings and LM head copied) trained on the teacher's answer-token logits (alpha 0.5, T 2)."""
    spec = spec_for("sst2-instruction.yaml", limit, epochs)
    train = spec["stages"][0]
    spec["name"], spec["model"] = spec["name"] + "-distill", str(teacher / "model")
    spec["stages"][0] = {**{k: v for k, v in train.items() if k != "type"}, "type": "distill", "teacher": str(teacher),
                         "student": {"layers": [0, 2, 4]}, "distiller": {"name": "logits", "alpha": 0.5, "temperature": 2.0}}
    return spec


def run(spec: dict[str, Any], out: Path) -> tuple[Path, float, float]:
    """The run directory, wall seconds and peak RSS (GB) of ``hone run`` on ``spec``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    run_dir = out / spec["name"]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hone", "run", str(path), "--out", str(run_dir), "-q", "--no-report"],
                   check=True, capture_output=True, text=True)
    return run_dir, time.perf_counter() - start, run_peak_rss_gb(run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=4000, help="training sentences (the dev set is whole)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--decoder-lr", type=float, help="the full decoder's learning rate (default: the recipe's)")
    parser.add_argument("--lora-lr", type=float, default=LORA_LR)
    parser.add_argument("--lora-r", type=int, default=LORA["r"], help="the LoRA row's rank (alpha: twice the rank)")
    parser.add_argument("--lora-targets", default=",".join(LORA["target_modules"]),
                        help="the LoRA row's target modules, comma-separated (e.g. query,key,value,dense)")
    parser.add_argument("--lora-dropout", type=float, default=LORA["dropout"], help="the LoRA row's dropout")
    parser.add_argument("--lora-bias", choices=["none", "all", "lora_only"], default="none",
                        help="the LoRA row's trained biases (peft's bias: all = every bias of the model)")
    parser.add_argument("--only", choices=["head", "full", "lora", "distill"], action="append",
                        help="some rows only (repeatable; distill needs --teacher)")
    parser.add_argument("--teacher", type=Path, help="a finished decoder run (e.g. the full row's): the distill row's teacher")
    parser.add_argument("--out", type=Path, default=Path(f"/tmp/hone-bench/sst2-instruction-{int(time.time())}"))
    args = parser.parse_args()
    require_data("sst2/train.tsv", "sst2/dev.tsv")
    targets = args.lora_targets.split(",")
    lora = {**LORA, "r": args.lora_r, "alpha": 2 * args.lora_r, "target_modules": targets, "bias": args.lora_bias,
            "dropout": args.lora_dropout}
    lora_name = f"LoRA r={args.lora_r} {'/'.join(targets)}" + (f", bias {args.lora_bias}" if args.lora_bias != "none" else "") \
        + (f", dropout {args.lora_dropout:g}" if args.lora_dropout != LORA["dropout"] else "")
    configs = {
        "head": ("classification head (sequence-classification)", "accuracy", spec_for("sst2.yaml", args.limit, args.epochs)),
        "full": (f"decoder, full fine-tuning (causal-lm, lr {args.decoder_lr or 1e-4:g})", "exact_match",
                 spec_for("sst2-instruction.yaml", args.limit, args.epochs, args.decoder_lr)),
        "lora": (f"decoder, {lora_name} + LM-head transform (causal-lm, lr {args.lora_lr:g})", "exact_match",
                 spec_for("sst2-instruction.yaml", args.limit, args.epochs, args.lora_lr, lora)),
    }
    if args.teacher is not None:
        configs["distill"] = ("decoder, 3-layer student distilled from --teacher (logits on the answer tokens, lr 1e-4)",
                              "exact_match", distill_spec(args.teacher, args.limit, args.epochs))
    elif args.only and "distill" in args.only:
        parser.error("--only distill needs --teacher RUN_DIR")
    rows = []
    for key, (label, metric, spec) in configs.items():
        if args.only and key not in args.only:
            continue
        run_dir, wall, rss = run(spec, args.out)
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
        rows.append([label, f"{100 * metrics[train]['trainable_fraction']:.2f}", len(t["epochs"]), sum(t["epochs"]) / len(t["epochs"]),
                     sum(t["samples_per_s"]) / len(t["epochs"]), dev[metric], answers, wall, rss])
    print(f"CPU: {cpu_description()}; SST-2, first {args.limit} training sentences, {args.epochs} epoch(s), dev 872; run dirs in {args.out}")
    print(table(["model", "% trainable", "epochs", "s/epoch (train)", "samples/s", "dev accuracy", "dev answers", "whole run (s)",
                 "peak RSS (GB)"], rows))


if __name__ == "__main__":
    main()
