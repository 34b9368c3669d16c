"""``hone run SPEC``: every stage into a run directory, then the report."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from hone.run.progress import PlainLog
from hone.run.rundir import METRICS, STATE
from hone.spec.loading import check_ready, load_spec


def export_summary(run_dir: Path, result: dict[str, Any]) -> str:
    """``onnx export in RUN/export/onnx (1.2 MB, max difference 6e-08 from torch, 3.1 s)`` from an export stage's results."""
    facts = []
    if isinstance(size := result.get("size_bytes"), int):
        facts.append(f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.0f} kB")
    if isinstance(difference := result.get("max_abs_diff"), (int, float)):
        reference = str(result.get("reference") or "the model").split(" ")[0]
        facts.append(f"max difference {difference:.2g} from {reference}")
    if isinstance(seconds := result.get("seconds"), (int, float)):
        facts.append(f"{seconds:.1f} s")
    return f"{result['exporter']} export in {run_dir / result['folder']}" + (f" ({', '.join(facts)})" if facts else "")


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
    plain = first_rank and not args.quiet and not sys.stderr.isatty()
    run_dir = run(spec, host, out=args.out, resume=args.resume, quiet=args.quiet or not sys.stderr.isatty(),
                  callbacks=[("plain-log", PlainLog(sys.stderr))] if plain else [], threads=getattr(args, "threads", None))
    metrics = json.loads((run_dir / METRICS).read_text())
    for stage, result in metrics.items():
        if isinstance(result, dict) and isinstance(result.get("exporter"), str) and isinstance(result.get("folder"), str):
            print(f"{stage}: {export_summary(run_dir, result)}")
            continue  # its params and check data are no split's results
        for split, values in result.items():
            if isinstance(values, dict):
                shown = ", ".join(f"{k} {v:.4f}" for k, v in values.items() if isinstance(v, float))
                if shown:  # e.g. a compress stage's report of what changed holds no scalar
                    print(f"{stage} [{split}]: {shown}")
    for line in resource_summary(json.loads((run_dir / STATE).read_text()), metrics):
        print(line)
    print(f"run directory: {run_dir}")
    if first_rank and not args.no_report:
        from hone_plugins.report.write import try_write_report

        if report := try_write_report(run_dir):
            print(f"report: {report}")
    return 0
