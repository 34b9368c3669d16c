"""``hone run`` and ``hone predict``: built-in commands, registered like any plugin's.

Only registrations here (``hone --help`` imports this module); each command imports torch when it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value

from hone.hookspecs import hookimpl
from hone.registry import NoParams, Register


class RunCommand:
    def run(self, args: argparse.Namespace) -> int:
        from hone_plugins.commands.run import run_command

        return run_command(args)


def run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", type=Path)
    parser.add_argument("--out", type=Path, help="run directory (default: <output_dir>/<name>)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--no-report", action="store_true", help="do not write report.html / report.md at the end")
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="torch's intra-op threads for this run (overrides the spec's `threads`)")


def run_command(params: NoParams) -> RunCommand:
    """run a spec: train, evaluate, ... into a run directory"""
    return RunCommand()


class PredictCommand:
    def run(self, args: argparse.Namespace) -> int:
        from hone_plugins.commands.predict import predict_command

        return predict_command(args)


def predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="run directory, model folder or Hub name")
    parser.add_argument("--input", "-i", default="-", help="JSONL file, or - for standard input")
    parser.add_argument("--output", "-o", default="-", help="JSONL file, or - for standard output")
    parser.add_argument("--task", help="task name when SOURCE is not a run directory")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threshold", type=float, default=0.0, help="NER: drop spans scoring below this")
    parser.add_argument("--min-span-length", type=int, default=1, help="NER: drop spans of fewer words")
    parser.add_argument("--max-new-tokens", type=int, default=20, help="causal LM: tokens to generate")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=positive_int, metavar="N", help="torch's intra-op threads (default: torch's choice)")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                        help="--runtime torch: autocast precision (auto: bf16 on GPUs and on CPUs with native bf16, "
                        "as a run evaluates; fp32 elsewhere)")
    parser.add_argument("--runtime", default="torch", metavar="NAME",
                        help="torch, or a serving runtime plugin for the run's export, e.g. onnxruntime (the last export in "
                        "RUN_DIR/export/, or an export folder; on the CPU)")
    parser.add_argument("--export", metavar="NAME", help="with --runtime: which of the run's exports to serve, by its "
                        "folder in RUN_DIR/export/ (the export stage's name; default: the last export the runtime serves)")


def predict_command(params: NoParams) -> PredictCommand:
    """predict with a run directory or a saved model: JSONL in, JSONL out"""
    return PredictCommand()


@hookimpl
def register_commands(register: Register) -> None:
    register("run", run_command, arguments=run_arguments)
    register("predict", predict_command, arguments=predict_arguments)
