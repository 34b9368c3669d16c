"""``hone run SPEC``: every stage into a run directory, then the report."""

from __future__ import annotations

import argparse
import json
import os
import sys

from hone.run.progress import PlainLog
from hone.run.rundir import METRICS
from hone.spec.loading import check_ready, load_spec


def run_command(args: argparse.Namespace) -> int:
    spec, host = load_spec(args.spec, plugins_dirs=args.plugins_dir)
    check_ready(args.spec, spec)  # data files, the device: before the run directory is made
    from hone.run.runner import run  # imports torch

    first_rank = os.environ.get("RANK", "0") == "0"  # a data-parallel launch: only rank 0 logs and reports
    plain = first_rank and not args.quiet and not sys.stderr.isatty()
    run_dir = run(spec, host, out=args.out, resume=args.resume, quiet=args.quiet or not sys.stderr.isatty(),
                  callbacks=[("plain-log", PlainLog(sys.stderr))] if plain else [])
    for stage, result in json.loads((run_dir / METRICS).read_text()).items():
        for split, values in result.items():
            if isinstance(values, dict):
                shown = ", ".join(f"{k} {v:.4f}" for k, v in values.items() if isinstance(v, float))
                if shown:  # e.g. a compress stage's report of what changed holds no scalar
                    print(f"{stage} [{split}]: {shown}")
    print(f"run directory: {run_dir}")
    if first_rank and not args.no_report:
        from hone_plugins.report.write import try_write_report

        if report := try_write_report(run_dir):
            print(f"report: {report}")
    return 0
