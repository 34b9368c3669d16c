"""The ``hone`` command. Heavy modules (torch, transformers) are imported only by commands that need them."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from hone import __version__
from hone.errors import HoneError, Interrupted


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hone", description="Evaluate and optimise transformer models. Every component is a plugin.")
    parser.add_argument("--version", action="version", version=f"hone {__version__}")
    parser.add_argument("--plugins-dir", action="append", default=[], metavar="DIR", help="load plain .py plugins from DIR (repeatable; also $HONE_PLUGINS_DIR)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("plugins", help="list installed plugins and their components")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("validate", help="check a run spec and report every problem")
    p.add_argument("spec", type=Path)

    sub.add_parser("schema", help="print the JSON Schema of run specs (with installed plugins' parameters)")

    p = sub.add_parser("run", help="run a spec: train, evaluate, ... into a run directory")
    p.add_argument("spec", type=Path)
    p.add_argument("--out", type=Path, help="run directory (default: <output_dir>/<name>)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-report", action="store_true", help="do not write report.html / report.md at the end")

    p = sub.add_parser("report", help="write report.html and report.md for a run or search directory")
    p.add_argument("directory", type=Path, help="run directory or search directory")

    p = sub.add_parser("compare", help="compare runs: metrics, speed, size and cost side by side")
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR")
    p.add_argument("--metric", "-m", action="append", default=[], metavar="NAME",
                   help="metric of the final results, or split.NAME / stage.split.NAME (repeatable; default: all)")
    p.add_argument("--format", "-f", choices=("table", "markdown", "csv"), default="table")
    p.add_argument("--plot", type=Path, metavar="FILE", help="also write a PNG plot to FILE")

    p = sub.add_parser("search", help="search the spec's `search.space`: trials of whole runs, resumable, in parallel")
    p.add_argument("spec", type=Path)
    p.add_argument("--out", type=Path, help="search directory (default: <output_dir>/<name>-search); run again to continue")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="trial processes on this machine")
    p.add_argument("--storage", metavar="URL", help="Optuna storage, e.g. postgresql://user@host/db for several machines")
    p.add_argument("--resume", action="store_true", help="continue a search (fails if --out holds none)")
    p.add_argument("-q", "--quiet", action="store_true", help="no line per trial")
    p.add_argument("--no-report", action="store_true", help="do not write report.html / report.md at the end")
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # a worker process started by `hone search`

    p = sub.add_parser("predict", help="predict with a run directory or a saved model: JSONL in, JSONL out")
    p.add_argument("source", help="run directory, model folder or Hub name")
    p.add_argument("--input", "-i", default="-", help="JSONL file, or - for standard input")
    p.add_argument("--output", "-o", default="-", help="JSONL file, or - for standard output")
    p.add_argument("--task", help="task name when SOURCE is not a run directory")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threshold", type=float, default=0.0, help="NER: drop spans scoring below this")
    p.add_argument("--min-span-length", type=int, default=1, help="NER: drop spans of fewer words")
    p.add_argument("--max-new-tokens", type=int, default=20, help="causal LM: tokens to generate")
    p.add_argument("--device", default="auto")
    p.add_argument("--runtime", choices=("torch", "onnxruntime"), default="torch",
                   help="onnxruntime: serve the run's ONNX export (RUN_DIR/export/onnx, or the export folder) on the CPU")
    return parser


def _plugins(args: argparse.Namespace) -> int:
    from hone.plugins import load_plugins

    host = load_plugins(args.plugins_dir, warn=False)
    rows = [info.as_dict() for info in host.plugins]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        origin = f"{row['distribution']} {row['version']}" if row["distribution"] else row["source"]
        print(f"{row['name']}  [{row['status']}]  {origin}  ({row['module']})")
        for kind, names in sorted(row["components"].items()):
            print(f"    {kind}: {', '.join(names)}")
        if row["error"]:
            print(f"    error: {row['error']}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from hone.spec.loading import load_spec

    spec, host = load_spec(args.spec, plugins_dirs=args.plugins_dir)
    if spec.search is not None:  # its space, objectives and searcher too, as `hone search` checks them
        from hone.search import check_search

        check_search(args.spec, spec, host)
    print(f"{args.spec}: valid ({len(spec.stages)} stage{'s' if len(spec.stages) != 1 else ''}: {', '.join(spec.stage_names())})")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from hone.plugins import load_plugins
    from hone.spec.schema import spec_schema

    print(json.dumps(spec_schema(load_plugins(args.plugins_dir, warn=False).registries), indent=2))
    return 0


def _run(args: argparse.Namespace) -> int:
    from hone.spec.loading import load_spec

    spec, host = load_spec(args.spec, plugins_dirs=args.plugins_dir)
    from hone.run.runner import run  # imports torch

    from hone.run.progress import PlainLog

    first_rank = os.environ.get("RANK", "0") == "0"  # a data-parallel launch: only rank 0 logs and reports
    plain = first_rank and not args.quiet and not sys.stderr.isatty()
    run_dir = run(spec, host, out=args.out, resume=args.resume, quiet=args.quiet or not sys.stderr.isatty(),
                  callbacks=[("plain-log", PlainLog(sys.stderr))] if plain else [])
    for stage, result in json.loads((run_dir / "metrics.json").read_text()).items():
        for split, values in result.items():
            if isinstance(values, dict):
                shown = ", ".join(f"{k} {v:.4f}" for k, v in values.items() if isinstance(v, float))
                if shown:  # e.g. a compress stage's report of what changed holds no scalar
                    print(f"{stage} [{split}]: {shown}")
    print(f"run directory: {run_dir}")
    if first_rank and not args.no_report:
        from hone.report import try_write_report

        if report := try_write_report(run_dir):
            print(f"report: {report}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from hone.report import write_report

    html, markdown = write_report(args.directory)
    print(f"report: {html}\nsummary: {markdown}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from hone.compare import compare, plot, render

    comparison = compare(args.runs, args.metric)
    sys.stdout.write(render(comparison, args.format))
    if args.plot:
        print(f"plot: {plot(comparison, args.plot)}", file=sys.stderr)
    return 0


def _search(args: argparse.Namespace) -> int:
    from hone.search import search_command
    from hone.search_results import summary_lines

    summary = search_command(args.spec, args.out, args.workers, args.storage, args.resume, args.plugins_dir, args.worker,
                             args.quiet)
    for line in summary_lines(summary) if summary else []:
        print(line)
    if summary and not args.no_report:  # the coordinating process, once the search has stopped
        from hone.report import try_write_report

        if report := try_write_report(Path(summary["search_dir"])):
            print(f"report: {report}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from hone.predict import predict_command

    return predict_command(args)


COMMANDS = {"plugins": _plugins, "validate": _validate, "schema": _schema, "run": _run, "predict": _predict,
            "report": _report, "compare": _compare,
            "search": _search}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    warnings.simplefilter("default")
    warnings.formatwarning = lambda message, category, *_: f"warning: {message}\n"  # type: ignore[assignment]
    try:
        return COMMANDS[args.command](args)
    except Interrupted as error:
        print(f"interrupted: {error}", file=sys.stderr)
        return 130
    except HoneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # e.g. --output in a folder that does not exist, a full disk
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
