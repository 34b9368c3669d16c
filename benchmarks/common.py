"""Helpers shared by the benchmark scripts: data location, run timings from events, tables."""

from __future__ import annotations

import json
import os
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


def run_peak_rss_gb(run_dir: Path) -> float:
    """The whole `hone run`'s peak RSS in GB (2^30 bytes), from its run_end event. Not the process's ru_maxrss:
    hone resets the kernel's peak at every stage start (per-stage peaks), so afterwards that is the last stage's."""
    ends = [e for e in events(run_dir) if e["event"] == "run_end"]
    peak = ends[-1].get("process_peak_rss_mb") if ends else None
    return float("nan") if peak is None else peak * 1e6 / 2**30


def table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def cpu_description() -> str:
    """``Intel(R) Xeon(R) Processor, 2 CPUs, bf16 units: amx_bf16, avx512_bf16`` from lscpu and hone's detection."""
    from hone.run.devices import cpu_bf16_units

    fields: dict[str, str] = {}
    try:
        output = subprocess.run(["lscpu"], capture_output=True, text=True, check=True, timeout=30).stdout
        fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in output.splitlines())}
    except (OSError, subprocess.SubprocessError):
        import platform

        fields = {"Model name": platform.processor() or platform.machine()}
    units = ", ".join(cpu_bf16_units()) or "none (bf16 is emulated)"
    return f"{fields.get('Model name', '?')}, {fields.get('CPU(s)', '?')} CPUs, bf16 units: {units}"
