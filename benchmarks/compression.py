"""Compression side by side on CoNLL-2003 test, from a fine-tuned MiniLM run directory: entity F1, its
change, CPU inference speed (sentences/s at batch 32 and batch 1) and speed-up, size on disk, parameters.

Rows: the fp32 teacher; the teacher under bf16 autocast; dynamic int8 (torch.ao); torchao int8 weight-only;
ONNX Runtime fp32 (an `export` stage) and int8 (`onnx-int8`); 50% magnitude pruning + recovery fine-tune;
structured pruning (attention heads and FFN neurons) + recovery; Wanda 50% and 2:4 + recovery; optionally a
3-layer student (`--student`, from `distillation.py`); and an accuracy-budget run (the most FFN pruning within
`--max-drop` F1 points); with `--combine`, the structured, budget and student models under bf16 autocast too.
Each compressed row is one `hone run` from the teacher's model; every figure is measured on the model as
`hone predict` (or `hone predict --runtime onnxruntime`) reloads it.

    .venv/bin/python benchmarks/compression.py --teacher RUN_DIR [--out DIR] [--limit N] [--student] [--combine] [--only TEXT]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from common import table

BATCHES = {32: 512, 1: 128}  # batch size -> test sentences timed
ROUNDS = 3  # timing passes over every model in turn; the best of them counts
BF16 = "bf16 autocast (teacher)"
ONNX_FP32 = "ONNX Runtime fp32 (export stage)"
COMBINED = ("structured", "budget")  # --combine: these rows (and the student) are measured under bf16 autocast too


def recovery(args: argparse.Namespace) -> dict[str, Any]:
    """A short fine-tune after pruning (weights pruned to zero stay zero), by default learning from the teacher."""
    stage = {"type": "train", "name": "recover", "epochs": args.recovery_epochs, "batch_size": 32, "logging_steps": 50,
             "optimizer": {"name": "adamw", "lr": args.recovery_lr, "weight_decay": 0.01},
             "scheduler": {"name": "linear", "warmup": 0.06}}
    if args.recovery == "distill":  # the pruned model is the student of its unpruned original
        stage.update(type="distill", teacher=str(args.teacher), distiller={"name": "logits", "alpha": 0.5, "temperature": 2.0})
    return stage


def compressed_rows(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Label -> the stages of its run."""
    return {
        "dynamic int8 (torch.ao)": [{"type": "compress", "name": "int8", "compressor": "dynamic-int8"}],
        "int8 weight-only (torchao)": [{"type": "compress", "name": "int8", "compressor": "int8-weight-only"}],
        ONNX_FP32: [{"type": "export", "name": "onnx", "exporter": "onnx"}],
        "ONNX Runtime int8": [{"type": "compress", "name": "int8", "compressor": "onnx-int8"}],
        "50% magnitude + recovery": [
            {"type": "compress", "name": "prune", "compressor": {"name": "magnitude", "sparsity": 0.5}}, recovery(args)],
        f"structured {args.heads:.0%} heads, {args.ffn:.0%} FFN + recovery": [
            {"type": "compress", "name": "prune",
             "compressor": {"name": "structured", "heads_fraction": args.heads, "ffn_fraction": args.ffn}}, recovery(args)],
        "Wanda 50% + recovery": [
            {"type": "compress", "name": "prune", "compressor": {"name": "wanda", "sparsity": 0.5}}, recovery(args)],
        "Wanda 2:4 + recovery": [
            {"type": "compress", "name": "prune", "compressor": {"name": "wanda", "n_m": [2, 4]}}, recovery(args)],
        # the 3-layer student row comes from distillation.py (--student), see student_row() below
        f"budget: most FFN pruning within {args.max_drop} F1 points": [
            {"type": "compress", "name": "budget", "compressor": {"name": "structured", "heads_fraction": 0.0},
             "max_drop": {"metric": "entity_f1", "value": args.max_drop / 100},
             "search": {"param": "ffn_fraction", "candidates": [0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]}}],
    }


def run_spec(teacher: Path, stages: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    saved = yaml.safe_load((teacher / "spec.yaml").read_text())  # resolved: absolute data paths
    # the runs train as hone's default does (bf16 on AMX); every row is measured in fp32 (bf16 row: autocast)
    return {"name": "compression-bench", "seed": args.seed, "model": str(teacher / "model"), "device": "cpu",
            "precision": "auto", "task": saved["task"], "data": {**saved["data"], "limit": args.limit}, "stages": stages}


def measure(model_dir: Path, host: Any, args: argparse.Namespace, precision: str = "fp32",
            export: Path | None = None) -> dict[str, Any]:
    """Test entity F1, size and a forward-pass timer (``_speed``) of a saved model, as `hone predict` loads it
    (under ``precision``'s autocast), or of the run's ONNX ``export`` served by ONNX Runtime."""
    import torch
    from hone.run.devices import autocast, model_inputs
    from hone_plugins.commands.predict import load_predictor, load_runtime_predictor
    from hone_plugins.runtimes.onnxruntime import OnnxRuntimeModel
    from hone_plugins.stages.evaluation import compute_metrics, predict_split
    from hone_plugins.stages.sizes import model_report

    if export is not None:
        task, model, tokenizer, labels = load_runtime_predictor(str(export), host, "onnxruntime")
    else:
        task, model, tokenizer, labels = load_predictor(str(model_dir), host, device="cpu")
    saved = yaml.safe_load((model_dir.parent / "spec.yaml").read_text())
    reader = host.registries.get("reader", saved["data"]["reader"]["name"]).build(
        {k: v for k, v in saved["data"]["reader"].items() if k != "name"})
    features = task.encode(reader.read(Path(saved["data"]["test"]))[: args.limit], tokenizer, labels)
    ctx = argparse.Namespace(model=model, task=task, tokenizer=tokenizer, labels=labels, device=torch.device("cpu"), precision=precision)
    _, output = predict_split(ctx, features, 64)
    f1 = compute_metrics([("entity-f1", host.registries.get("metric", "entity-f1").build({}))], output)["entity_f1"]

    def sentences_per_s(batch_size: int, count: int) -> float:
        chosen = features[:count]
        batches = [task.collate(chosen[i : i + batch_size], tokenizer) for i in range(0, len(chosen), batch_size)]
        with torch.inference_mode(), autocast(torch.device("cpu"), precision):
            for batch in batches[:8]:  # warm-up: one-off kernel creation and allocation per shape
                model(**model_inputs(batch))
            start = time.perf_counter()
            for batch in batches:
                model(**model_inputs(batch))
        return len(chosen) / (time.perf_counter() - start)

    # an ONNX graph's parameter is its serialized bytes: the table gives such rows the teacher's counts
    report = {} if isinstance(model, OnnxRuntimeModel) else model_report(model, layers=False)
    files = export.glob("*.onnx*") if export is not None else model_dir.glob("*.safetensors")
    return {"f1": f1, "size_mb": sum(p.stat().st_size for p in files) / 1e6,
            "parameters": report.get("parameters"), "nonzero": report.get("nonzero"), "_speed": sentences_per_s}


def time_in_turns(rows: dict[str, dict[str, Any]]) -> None:
    """Sentences/s of every model at each batch size, best of ``ROUNDS`` passes taken in turn, so that a
    slow spell of the machine hits every row alike instead of one; the rows' timers are taken out."""
    timers = {label: row.pop("_speed") for label, row in rows.items() if "_speed" in row}
    for _ in range(ROUNDS):
        for label, speed in timers.items():
            for batch_size, count in BATCHES.items():
                key = f"b{batch_size}"
                rows[label][key] = max(rows[label].get(key, 0.0), speed(batch_size, count))


def student_row(args: argparse.Namespace, host: Any, precision: str = "fp32") -> dict[str, Any]:
    """The student distilled from the teacher (distillation.py's run), measured like the other rows."""
    if not (args.out / "student" / "model" / "hone.json").exists():  # a finished student is reused
        distil(args, host)
    return measure(args.out / "student" / "model", host, args, precision)


def distil(args: argparse.Namespace, host: Any) -> None:
    """distillation.py's student run into ``args.out / "student"``."""
    import distillation

    options = argparse.Namespace(teacher=args.teacher, layers=args.student_layers, epochs=args.student_epochs, batch_size=32, lr=1e-4, alpha=0.5,
                                 temperature=2.0, precision="auto", seed=args.seed, limit=args.limit, data=args.data)
    distillation.student_row(args.teacher, args.out / "student", options, host)


def timed(label: str, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        row = make()
    except Exception as error:  # e.g. the budget refused every setting: the table says so
        row = {"error": f"{type(error).__name__}: {error}"}
    print(f"{label}: {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", type=Path, required=True, help="run directory of the fine-tuned model (e.g. conll_finetune.py's)")
    parser.add_argument("--out", type=Path, default=Path(f"/tmp/hone-bench/compression-{int(time.time())}"),
                        help="results folder; rows already finished in it are measured again, not re-run")
    parser.add_argument("--limit", type=int, default=None, help="first N sentences of each split (smoke test)")
    parser.add_argument("--heads", type=float, default=0.5, help="share of attention heads structured pruning removes")
    parser.add_argument("--ffn", type=float, default=0.5, help="share of FFN neurons structured pruning removes")
    parser.add_argument("--recovery", choices=["distill", "train"], default="distill",
                        help="recovery after pruning: distil from the teacher (logits, alpha 0.5, T 2) or plain fine-tuning")
    parser.add_argument("--recovery-epochs", type=int, default=2)
    parser.add_argument("--recovery-lr", type=float, default=1e-4)
    parser.add_argument("--max-drop", type=float, default=1.0, help="the budget row's largest F1 drop, in points")
    parser.add_argument("--student", action="store_true", help="add the 3-layer student row (distillation.py)")
    parser.add_argument("--student-layers", default="0,2,4", help="teacher layers the student keeps")
    parser.add_argument("--student-epochs", type=int, default=6)
    parser.add_argument("--data", type=Path, default=None, help="CoNLL folder for the student row (default: the teacher's)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--combine", action="store_true",
                        help="also measure the structured, budget and student models under bf16 autocast")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="measure only the rows whose label contains TEXT (repeatable; the teacher row always runs)")
    args = parser.parse_args()
    if not (args.teacher / "model" / "hone.json").exists():
        raise SystemExit(f"{args.teacher}: not a finished hone run directory (no model/hone.json)")
    args.data = args.data or Path(yaml.safe_load((args.teacher / "spec.yaml").read_text())["data"]["test"]).parent

    from hone.plugins import load_plugins
    from hone_plugins.tasks.common import quiet_transformers
    from hone.run.runner import run
    from hone.spec.models import spec_model

    quiet_transformers()
    host = load_plugins()

    def compressed(label: str, stages: list[dict[str, Any]], out: Path, precision: str = "fp32") -> dict[str, Any]:
        if not (out / "model" / "hone.json").exists():  # a finished row is reused
            spec = spec_model(host.registries).model_validate(run_spec(args.teacher, stages, args), context={"registries": host.registries})
            run(spec, host, out=out)
        row = measure(out / "model", host, args, precision, export=out / "export" / "onnx" if label == ONNX_FP32 else None)
        if budget := json.loads((out / "metrics.json").read_text()).get("budget", {}).get("budget"):
            row["chosen"] = f"ffn_fraction {budget['chosen']} ({len(budget['tried'])} tried)"
        return row

    def wanted(label: str) -> bool:
        return not args.only or any(text.lower() in label.lower() for text in args.only)

    rows = {"fp32 (teacher)": timed("fp32", lambda: measure(args.teacher / "model", host, args))}
    if wanted(BF16):
        rows[BF16] = timed("bf16", lambda: measure(args.teacher / "model", host, args, precision="bf16"))
    student = f"student: teacher layers {args.student_layers} (distilled)"
    for number, (label, stages) in enumerate(compressed_rows(args).items()):
        if label.startswith("budget") and args.student and wanted(student):
            rows[student] = timed("student", lambda: student_row(args, host))
            if args.combine:
                rows[f"{student} + bf16 autocast"] = timed("student bf16", lambda: student_row(args, host, "bf16"))
        if not wanted(label):
            continue
        rows[label] = timed(label, lambda label=label, stages=stages, n=number: compressed(label, stages, args.out / f"row{n}"))
        if args.combine and label.startswith(COMBINED):
            rows[f"{label} + bf16 autocast"] = timed(f"{label} bf16", lambda label=label, stages=stages, n=number:
                                                     compressed(label, stages, args.out / f"row{n}", "bf16"))
    time_in_turns(rows)
    (args.out / "rows.json").write_text(json.dumps(rows, indent=2))

    base = rows["fp32 (teacher)"]
    lines = []
    for label, r in rows.items():
        if r.get("parameters") is None and "error" not in r:  # an ONNX graph of the teacher's network
            r = {**r, "parameters": base["parameters"], "nonzero": base["nonzero"]}
        if "error" in r:
            lines.append([label, r["error"][:160], "-", "-", "-", "-", "-", "-", "-"])
            continue
        lines.append([
            label + (f" [{r['chosen']}]" if "chosen" in r else ""), f"{r['f1']:.4f}", f"{100 * (r['f1'] - base['f1']):+.2f}",
            f"{r['b32']:.0f}", f"{r['b1']:.0f}", f"{r['b32'] / base['b32']:.2f}x / {r['b1'] / base['b1']:.2f}x",
            f"{r['size_mb']:.1f}", f"{r['parameters'] / 1e6:.2f}M", f"{r['nonzero'] / 1e6:.2f}M",
        ])
    print(f"\nCoNLL-2003 test{f' (first {args.limit} sentences)' if args.limit else ''}, teacher {args.teacher}, "
          f"CPU fp32 forward passes, run dirs in {args.out}")
    print(table(["model", "test entity F1", "Δ F1 (points)", "sent/s b32", "sent/s b1", "speed-up b32 / b1", "size MB",
                 "parameters", "non-zero"], lines))


if __name__ == "__main__":
    main()
