"""``hone run SPEC``: every stage into a run directory, then the report."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from hone.run.events import read_events
from hone.run.rundir import EVENTS, METRICS, STATE
from hone.spec.loading import check_ready, load_spec

from hone_plugins.commands.plainlog import PlainLog
from hone_plugins.commands.progress import terminal_bars


def export_summary(run_dir: Path, result: dict[str, Any]) -> str:
    """``onnx export in RUN/export/onnx (1.2 MB, max difference 6e-08 from torch, 3.1 s)`` from an export stage's results."""
    facts = []
    if isinstance(size := result.get("size_bytes"), int):
        facts.append(_megabytes(size))
    if isinstance(difference := result.get("max_abs_diff"), (int, float)):
        reference = str(result.get("reference") or "the model").split(" ")[0]
        facts.append(f"max difference {difference:.2g} from {reference}")
    if isinstance(seconds := result.get("seconds"), (int, float)):
        facts.append(f"{seconds:.1f} s")
    return f"{result['exporter']} export in {run_dir / result['folder']}" + (f" ({', '.join(facts)})" if facts else "")


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.0f} kB"


def directory_size(folder: Path) -> int:
    """Bytes of the regular files under ``folder`` (links not followed)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def compress_summary(result: dict[str, Any], measured: dict[str, Any] | None = None) -> str:
    """``size 90.9 MB -> 23.1 MB · parameters 22,713,216 -> 22,713,216 (non-zero 22,422,115) · latency 11.2 -> 6.3 ms``
    from a compress stage's results and its ``compression_done`` event (``measured``: the latencies are there)."""
    before = {**((measured or {}).get("before") or {}), **(result.get("before") or {})}
    after = {**((measured or {}).get("after") or {}), **(result.get("after") or {})}
    parts = []
    if isinstance(before.get("size_bytes"), int) and isinstance(after.get("size_bytes"), int):
        parts.append(f"size {_megabytes(before['size_bytes'])} -> {_megabytes(after['size_bytes'])}")
    if isinstance(before.get("parameters"), int) and isinstance(after.get("parameters"), int):
        text = f"parameters {before['parameters']:,} -> {after['parameters']:,}"
        if all(isinstance(side.get("nonzero"), int) for side in (before, after)) and \
                any(side["nonzero"] != side["parameters"] for side in (before, after)):
            text += f" (non-zero {before['nonzero']:,} -> {after['nonzero']:,})"
        parts.append(text)
    if isinstance(before.get("latency_ms"), (int, float)) and isinstance(after.get("latency_ms"), (int, float)):
        parts.append(f"latency {before['latency_ms']:.3g} -> {after['latency_ms']:.3g} ms per example")
    return f"{result.get('compressor')}: " + " · ".join(parts)


def resource_summary(state: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    """``precision: train fp32, eval bf16; 2 threads`` and each stage's peak RSS, from state.json and metrics.json."""
    lines, precision = [], state.get("precision")
    if isinstance(precision, dict):
        threads = f"; {state['threads']} threads" if isinstance(state.get("threads"), int) else ""
        lines.append("precision: " + ", ".join(f"{k} {v}" for k, v in precision.items()) + threads)
    peaks = []
    for stage, result in metrics.items():
        if isinstance(result, dict) and isinstance(peak := result.get("peak_rss_mb"), (int, float)):
            peaks.append(f"{stage} {peak:.0f} MB")
        elif isinstance(result, dict) and isinstance(peak := result.get("process_peak_rss_mb"), (int, float)):
            peaks.append(f"{stage} {peak:.0f} MB (the process's peak so far)")
    if peaks:
        lines.append("peak RSS per stage: " + ", ".join(peaks))
    return lines


def run_command(args: argparse.Namespace) -> int:
    spec, host = load_spec(args.spec, plugins_dirs=args.plugins_dir)
    check_ready(args.spec, spec)  # data files, the device: before the run directory is made
    from hone.run.runner import run  # imports torch

    first_rank = os.environ.get("RANK", "0") == "0"  # a data-parallel launch: only rank 0 logs and reports
    plain = first_rank and not args.quiet  # on a terminal too: each evaluation's metrics, early stopping, resuming
    run_dir = run(spec, host, out=args.out, resume=args.resume, progress=terminal_bars(args.quiet),
                  callbacks=[("plain-log", PlainLog(sys.stderr))] if plain else [], threads=getattr(args, "threads", None))
    metrics = json.loads((run_dir / METRICS).read_text())
    measured = {e.get("stage"): e for e in read_events(run_dir / EVENTS) if e.get("event") == "compression_done"}
    for stage, result in metrics.items():
        if isinstance(result, dict) and isinstance(result.get("exporter"), str) and isinstance(result.get("folder"), str):
            print(f"{stage}: {export_summary(run_dir, result)}")
            continue  # its params and check data are no split's results
        if isinstance(result, dict) and isinstance(result.get("before"), dict) and isinstance(result.get("after"), dict):
            print(f"{stage}: {compress_summary(result, measured.get(stage))}")
        for split, values in result.items():
            if isinstance(values, dict):
                if split in ("before", "after") and "before" in result and "after" in result:
                    continue  # a compress stage's sizes: summarised above
                shown = ", ".join(f"{k} {v:.4f}" for k, v in values.items() if isinstance(v, float))
                if shown:  # e.g. a compress stage's report of what changed holds no scalar
                    print(f"{stage} [{split}]: {shown}")
    for line in resource_summary(json.loads((run_dir / STATE).read_text()), metrics):
        print(line)
    print(f"run directory: {run_dir} ({_megabytes(directory_size(run_dir))})")
    if first_rank and not args.no_report:
        from hone_plugins.report.write import try_write_report

        if report := try_write_report(run_dir):
            print(f"report: {report}")
    return 0
