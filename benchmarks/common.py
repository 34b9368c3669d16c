"""Helpers shared by the benchmark scripts: data location, run timings from events, tables."""

from __future__ import annotations

import json
import os
import resource
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("HONE_DATA_DIR", REPO.parent / "shared" / "data"))


def require_data(*relative: str) -> None:
    missing = [str(DATA / r) for r in relative if not (DATA / r).exists()]
    if missing:
        raise SystemExit(f"data not found: {', '.join(missing)} (set HONE_DATA_DIR)")


def events(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]


def stage_timings(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Per stage: wall seconds, and per epoch (training seconds, samples/s) without evaluation."""
    timings: dict[str, dict[str, Any]] = {}
    start: dict[str, float] = {}
    for event in events(run_dir):
        stage = event.get("stage")
        if event["event"] == "stage_start":
            start[stage] = event["time"]
            timings[stage] = {"epochs": [], "samples_per_s": []}
        elif event["event"] == "epoch_end":
            timings[stage]["epochs"].append(event["train_seconds"])
            timings[stage]["samples_per_s"].append(event["samples_per_s"])
        elif event["event"] == "stage_end":
            timings[stage]["wall"] = event["time"] - start[stage]
    return timings


def peak_rss_gb() -> float:
    """Peak resident memory of this process and its finished children, in GB."""
    from hone.run.memory import process_peak_rss_mb

    own = (process_peak_rss_mb() or 0.0) * 1e6 / 1024  # hone resets ru_maxrss per stage; this keeps the process's peak
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024 / 1024


def table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def cpu() -> str:
    """The CPU as lscpu names it, the CPU count and the native bf16 units (avx512_bf16, amx_bf16) it has."""
    found = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    name = next((line.split(":", 1)[1].strip() for line in found.splitlines() if line.startswith("Model name")), "?")
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    units = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return f"{name}, {os.cpu_count()} CPUs{', ' + ', '.join(units) if units else ''}"
