"""``hone validate``, ``hone run``, ``hone predict`` and ``hone schema``: built-in commands, registered like any plugin's.

Only registrations here (``hone --help`` imports this module); each command imports torch when it runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any


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
    generation = parser.add_argument_group("generation (causal-lm, seq2seq; unset: the run's task settings)")
    generation.add_argument("--max-new-tokens", type=bounded(int, 1), help="most tokens generated per record")
    generation.add_argument("--num-beams", type=bounded(int, 1), help="beam search width (1: greedy)")
    generation.add_argument("--do-sample", action=argparse.BooleanOptionalAction, default=None,
                            help="sample instead of greedy/beam search (--no-do-sample: greedy)")
    generation.add_argument("--temperature", type=bounded(float, 0, inclusive=False), help="sampling temperature")
    generation.add_argument("--top-p", type=bounded(float, 0, 1, inclusive=False), help="nucleus sampling mass")
    generation.add_argument("--top-k", type=bounded(int, 0), help="sample among the k most probable tokens (0: all)")
    generation.add_argument("--seed", type=bounded(int, 0), help="sampling seed (the same seed, the same texts)")
    generation.add_argument("--stop", action="append", type=non_empty, metavar="TEXT",
                            help="stop string: generation ends at it and the text is cut before it (repeatable)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=positive_int, metavar="N", help="torch's intra-op threads (default: torch's choice)")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="fp32",
                        help="--runtime torch: autocast precision (default fp32; auto: what a run evaluates at, bf16 on "
                        "GPUs and on CPUs with native bf16, fp32 elsewhere)")
    parser.add_argument("--runtime", default="torch", metavar="NAME",
                        help="torch, or a serving runtime plugin for the run's export, e.g. onnxruntime (the last export in "
                        "RUN_DIR/export/, or an export folder; on the CPU)")
    parser.add_argument("--export", metavar="NAME", help="with --runtime: which of the run's exports to serve, by its "
                        "folder in RUN_DIR/export/ (the export stage's name; default: the last export the runtime serves)")


def bounded(kind: type, low: float, high: float | None = None, inclusive: bool = True) -> Callable[[str], Any]:
    """An argparse type: a number of ``kind`` at least ``low`` (above it unless ``inclusive``), at most ``high``."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            expected = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < low or (not inclusive and value == low) or (high is not None and value > high):
            above = f"at least {low}" if inclusive else f"above {low}"
            raise argparse.ArgumentTypeError(f"must be {above}{f' and at most {high}' if high is not None else ''}, "
                                             f"got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def non_empty(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def predict_command(params: NoParams) -> PredictCommand:
    """predict with a run directory or a saved model: JSONL in, JSONL out"""
    return PredictCommand()


class ValidateCommand:
    def run(self, args: argparse.Namespace) -> int:
        from hone.spec.loading import check_ready, check_sections, load_spec

        spec, host = load_spec(args.spec, plugins_dirs=args.plugins_dir)
        check_ready(args.spec, spec)
        check_sections(args.spec, spec, host)
        stages = f"{len(spec.stages)} stage{'s' if len(spec.stages) != 1 else ''}: {', '.join(spec.stage_names())}"
        print(f"{args.spec}: valid ({stages})")
        return 0


def validate_command(params: NoParams) -> ValidateCommand:
    """check a run spec and report every problem"""
    return ValidateCommand()


class SchemaCommand:
    def run(self, args: argparse.Namespace) -> int:
        import json

        from hone.plugins import load_plugins
        from hone_plugins.commands.schema import spec_schema

        print(json.dumps(spec_schema(load_plugins(args.plugins_dir, warn=False).registries), indent=2))
        return 0


def schema_command(params: NoParams) -> SchemaCommand:
    """print the JSON Schema of run specs (with installed plugins' parameters)"""
    return SchemaCommand()


@hookimpl
def register_commands(register: Register) -> None:
    register("validate", validate_command, arguments=lambda parser: parser.add_argument("spec", type=Path))
    register("run", run_command, arguments=run_arguments)
    register("predict", predict_command, arguments=predict_arguments)
    register("schema", schema_command)
