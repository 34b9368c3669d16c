"""A 3-layer student distilled from a fine-tuned 6-layer MiniLM on CoNLL-2003: test entity F1, share of
the teacher's F1, CPU inference speed (sentences/s at batch 32 and batch 1), parameters and size.

The teacher is a finished run directory (e.g. from `conll_finetune.py`); the student keeps its
layers 0, 2, 4 (embeddings and head copied) and is trained with `logits` distillation on the train
split, early-stopped on validation entity F1, in one `hone run`.

    .venv/bin/python benchmarks/distillation.py --teacher RUN_DIR [--layers 0,2,4] [--epochs 6] [--limit N]

`student_row` and `speed` are importable (e.g. by a compression benchmark's table).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from common import DATA, table

BATCHES = {32: 512, 1: 128}  # batch size -> sentences timed


def distill_spec(args: argparse.Namespace) -> dict[str, Any]:
    data = Path(args.data)
    return {
        "name": "distill-bench", "seed": args.seed, "model": str(Path(args.teacher) / "model"), "precision": args.precision,
        "task": {"name": "token-classification", "max_length": 128},
        "data": {"reader": "conll", "train": str(data / "train.txt"), "validation": str(data / "valid.txt"),
                 "test": str(data / "test.txt"), "limit": args.limit},
        "stages": [
            {"type": "distill", "name": "distill", "teacher": str(args.teacher),
             "student": {"layers": [int(i) for i in args.layers.split(",")]},
             "distiller": {"name": "logits", "alpha": args.alpha, "temperature": args.temperature},
             "epochs": args.epochs, "batch_size": args.batch_size, "logging_steps": 50,
             "optimizer": {"name": "adamw", "lr": args.lr, "weight_decay": 0.01}, "scheduler": {"name": "linear", "warmup": 0.06},
             "early_stopping": {"metric": "entity_f1", "patience": 2}},
            {"type": "evaluate", "name": "test", "split": "test"},
        ],
    }


def load(source: Path, host: Any, limit: int | None, data: Path) -> SimpleNamespace:
    """A saved model with the test sentences encoded by its tokenizer."""
    from hone_plugins.commands.predict import load_predictor

    task, model, tokenizer, labels = load_predictor(str(source), host, device="cpu")
    test = host.registries.get("reader", "conll").build({}).read(data / "test.txt")[:limit]
    return SimpleNamespace(task=task, model=model, tokenizer=tokenizer, labels=labels, features=task.encode(test, tokenizer, labels))


def entity_f1(loaded: SimpleNamespace, host: Any) -> float:
    import torch
    from hone_plugins.stages.evaluation import compute_metrics, predict_split

    ctx = SimpleNamespace(model=loaded.model, task=loaded.task, tokenizer=loaded.tokenizer, device=torch.device("cpu"),
                          precision="fp32", labels=loaded.labels)
    _, output = predict_split(ctx, loaded.features, 64)
    return compute_metrics([("entity-f1", host.registries.get("metric", "entity-f1").build({}))], output)["entity_f1"]


def speed(loaded: SimpleNamespace, batch_size: int, sentences: int) -> float:
    """Sentences/s of the model's forward pass (fp32, CPU) over test sentences in their order, after one warm-up batch."""
    import torch
    from hone.run.devices import model_inputs

    features = loaded.features[:sentences]
    batches = [loaded.task.collate(features[i : i + batch_size], loaded.tokenizer) for i in range(0, len(features), batch_size)]
    with torch.inference_mode():
        loaded.model(**model_inputs(batches[0]))
        start = time.perf_counter()
        for batch in batches:
            loaded.model(**model_inputs(batch))
    return len(features) / (time.perf_counter() - start)


def size_mb(model_dir: Path) -> float:
    return sum(p.stat().st_size for p in model_dir.glob("*.safetensors")) / 1e6


def student_row(teacher: Path, out: Path, args: argparse.Namespace, host: Any) -> dict[str, Any]:
    """Distil a student from ``teacher`` into ``out`` with one ``hone run``; return the figures of both."""
    from hone.run.runner import run
    from hone.spec.models import spec_model

    spec = spec_model(host.registries).model_validate(distill_spec(args), context={"registries": host.registries})
    start = time.perf_counter()
    run(spec, host, out=out)
    minutes = (time.perf_counter() - start) / 60
    rows = {}
    for label, run_dir in (("teacher", teacher), ("student", out)):
        loaded = load(run_dir, host, args.limit, Path(args.data))
        rows[label] = {"f1": entity_f1(loaded, host), "parameters": sum(p.numel() for p in loaded.model.parameters()),
                       "size_mb": size_mb(run_dir / "model"), "layers": loaded.model.config.num_hidden_layers,
                       **{f"b{b}": speed(loaded, b, n if not args.limit else min(n, args.limit)) for b, n in BATCHES.items()}}
    rows["student"]["minutes"] = minutes
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", type=Path, required=True, help="run directory of the fine-tuned teacher")
    parser.add_argument("--layers", default="0,2,4", help="teacher layers the student keeps")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--precision", default="auto", help="training precision (fp32, bf16, auto); inference is timed in fp32")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--limit", type=int, default=None, help="first N sentences of each split (smoke test)")
    parser.add_argument("--data", type=Path, default=DATA / "conll2003", help="folder with train.txt, valid.txt, test.txt")
    parser.add_argument("--out", type=Path, default=Path(f"/tmp/hone-bench/distill-{int(time.time())}"))
    args = parser.parse_args()
    if not (args.teacher / "model" / "hone.json").exists():
        raise SystemExit(f"{args.teacher}: not a finished hone run directory (no model/hone.json)")
    missing = [name for name in ("train.txt", "valid.txt", "test.txt") if not (args.data / name).exists()]
    if missing:
        raise SystemExit(f"data not found in {args.data}: {', '.join(missing)} (set HONE_DATA_DIR or --data)")
    from hone.plugins import load_plugins
    from hone_plugins.tasks.common import quiet_transformers

    quiet_transformers()
    host = load_plugins()
    rows = student_row(args.teacher, args.out, args, host)
    teacher, student = rows["teacher"], rows["student"]
    print(json.dumps(rows, indent=2))
    print(f"\nCoNLL-2003 test ({args.data}), teacher {args.teacher}, student layers {args.layers}, logits alpha {args.alpha} "
          f"T {args.temperature}, {args.epochs} epoch(s) max, distillation {student['minutes']:.1f} min, run dir {args.out}")
    print(table(
        ["model", "layers", "test entity F1", "% of teacher F1", "sent/s b32", "speed-up b32", "sent/s b1", "speed-up b1",
         "parameters", "size MB"],
        [[label, r["layers"], r["f1"], f"{100 * r['f1'] / teacher['f1']:.1f}%" if teacher["f1"] else "-", r["b32"],
          f"{r['b32'] / teacher['b32']:.2f}x", r["b1"], f"{r['b1'] / teacher['b1']:.2f}x", r["parameters"], r["size_mb"]]
         for label, r in (("teacher", teacher), ("student", student))],
    ))


if __name__ == "__main__":
    main()
