"""``hone predict``: JSONL in, JSONL out, from a run directory or a saved model."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from hone.atomic import write_text
from hone.errors import DataError, HoneError, describe
from hone.plugins import PluginHost, load_plugins
from hone.run.loading import LOAD_ERRORS, resolve_source
from hone.run.rundir import HONE_JSON, MODEL_DIR, SPEC
from hone_plugins.exporters.folders import pick_export
from hone_plugins.readers.text import json_object

def run_plugins_dirs(source: str) -> list[str]:
    """The plugin folders recorded in the spec of the run that ``source`` (a run directory, its model/ or an export
    folder in it) belongs to: an in-house plugin the model needs is found without ``--plugins-dir``."""
    import yaml

    path = Path(source)
    for folder in (path, *path.parents[:3]):
        spec = folder / SPEC
        if spec.is_file() and (folder / MODEL_DIR).is_dir():
            try:
                data = yaml.safe_load(spec.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
                raise HoneError(f"{spec}: cannot read the run's spec ({error})") from None
            dirs = data.get("plugins_dir") if isinstance(data, dict) else None
            return [str(d) for d in dirs or [] if Path(str(d)).is_dir()]
    return []


def load_predictor(source: str, host: PluginHost, task_name: str | None = None, device: str = "auto") -> tuple[Any, Any, Any, list[str]]:
    """(task, model, tokenizer, labels) from a run directory, a saved model folder or a Hub name."""
    from transformers import AutoTokenizer

    from hone_plugins.formats.compressed import compression_steps, cpu_only, is_compressed_model, load_compressed_model
    from hone.run.devices import pick_device
    from hone_plugins.tasks.common import quiet_transformers

    quiet_transformers()
    path = Path(source)
    if (path / MODEL_DIR / HONE_JSON).exists():
        path = path / MODEL_DIR
    meta = json.loads((path / HONE_JSON).read_text()) if (path / HONE_JSON).exists() else {}
    name = task_name or meta.get("task")
    if name is None:
        raise HoneError(f"{source}: not a hone run directory or model (no {HONE_JSON}); pass --task")
    task = host.build("task", {"name": name, **(meta.get("task_params") or {})})
    model_source = str(path) if path.exists() else resolve_source(source)
    try:
        if is_compressed_model(path):  # pruned to new shapes, quantized...: rebuilt from its recipe
            model, tokenizer = load_compressed_model(path, host), AutoTokenizer.from_pretrained(path)
            device = "cpu" if cpu_only(compression_steps(model)) else device
        else:
            model, tokenizer = task.load(model_source, meta.get("labels") or [])
    except LOAD_ERRORS as error:
        raise HoneError(f"{source}: cannot load a model ({describe(error)})") from None
    model.to(pick_device(device)).eval()
    return task, model, tokenizer, meta.get("labels") or list(getattr(model.config, "id2label", {}).values())


def load_runtime_predictor(source: str, host: PluginHost, runtime: str, task_name: str | None = None) -> tuple[Any, Any, Any, list[str]]:
    """(task, model, tokenizer, labels) from an exported model, served by a runtime plugin."""
    model, tokenizer, meta = host.build("runtime", runtime).load(Path(source))
    name = task_name or meta.get("task")
    if name is None:
        raise HoneError(f"{source}: the export does not name its task; pass --task")
    task = host.build("task", {"name": name, **(meta.get("task_params") or {})})
    return task, model, tokenizer, meta.get("labels") or list(getattr(model.config, "id2label", {}).values())


def precision_scope(model: Any, name: str) -> Any:
    """The autocast context predictions run in: ``name`` resolved for inference as a run's evaluation resolves it."""
    import torch

    from hone.run.devices import autocast, pick_precisions
    from hone_plugins.stages.evaluation import inference_precision

    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    return autocast(device, inference_precision(pick_precisions(name, device).eval, model))


def read_records(handle: TextIO, name: str) -> Iterator[dict[str, Any]]:
    """The input's JSON objects, each with ``_source`` and ``_line`` (as the data readers' examples) so that a task
    reports a record it cannot use at its file and line."""
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        yield {**json_object(line, name, number), "_source": name, "_line": number}


GENERATION_OPTIONS = ("max_new_tokens", "num_beams", "do_sample", "temperature", "top_p", "top_k", "seed", "stop")
"""Options passed to generative tasks as they are; None leaves the task's own setting."""


def prediction_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``options`` every task's ``predict`` receives (each task reads those it knows)."""
    return {"batch_size": args.batch_size, "threshold": args.threshold, "min_span_length": args.min_span_length,
            **{name: getattr(args, name, None) for name in GENERATION_OPTIONS}}


def read_input(args: argparse.Namespace) -> tuple[str, list[dict[str, Any]]]:
    """The input's name and its records, read before any model is loaded."""
    if args.input == "-":
        name, handle = "<stdin>", sys.stdin
    elif not Path(args.input).is_file():
        raise HoneError(f"{args.input}: input file not found")
    else:
        name, handle = args.input, open(args.input, encoding="utf-8")
    try:
        with handle:
            return name, list(read_records(handle, name))
    except UnicodeDecodeError as error:
        raise DataError(name, None, f"not valid UTF-8 ({error.reason} at byte {error.start})") from None


def write_results(write: Callable[[str], Any], task: Any, model: Any, tokenizer: Any, records: list[dict[str, Any]],
                  labels: list[str], options: dict[str, Any], name: str) -> None:
    """Predict batch by batch, passing each result's JSON line to ``write``."""
    try:
        size = options["batch_size"]
        for start in range(0, len(records), size):
            for result in task.predict(model, tokenizer, records[start : start + size], labels, options):
                write(json.dumps(result, ensure_ascii=False) + "\n")
    except ValidationError as error:  # options the task's settings refuse, e.g. a temperature without sampling
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors())
        raise HoneError(f"generation options: {problems} (on the command line: --do-sample, --temperature, ...)"
                        ) from None
    except ValueError as error:  # a record the task cannot use, e.g. without its "text" key
        raise DataError(name, None, str(error)) from None


def predict_command(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise HoneError(f"--batch-size must be at least 1, got {args.batch_size}")
    runtime, export = args.runtime, getattr(args, "export", None)
    if runtime != "torch" and args.device not in ("auto", "cpu"):
        raise HoneError(f"--runtime {runtime} runs on the CPU; drop --device {args.device}")
    if export is not None and runtime == "torch":
        raise HoneError(f"--export {export} picks an exported model for a serving runtime: add --runtime (e.g. onnxruntime); "
                        "--runtime torch serves the run's model/")
    precision = getattr(args, "precision", "fp32")
    if runtime != "torch" and precision != "fp32":
        raise HoneError(f"--precision {precision} is for --runtime torch; {runtime} runs the exported model as it is")
    name, records = read_input(args)
    if args.output != "-" and not Path(args.output).parent.is_dir():  # found out before the work, not after it
        raise HoneError(f"--output {args.output}: No such file or directory (no folder {Path(args.output).parent})")
    model_source = args.source if export is None else str(pick_export(Path(args.source), export))
    host = load_plugins([*args.plugins_dir, *run_plugins_dirs(args.source)])
    threads = getattr(args, "threads", None)
    if threads is not None:
        from hone.run.devices import set_threads

        set_threads(threads)
    if runtime == "torch":
        task, model, tokenizer, labels = load_predictor(model_source, host, args.task, args.device)
        scope = precision_scope(model, precision)
    else:
        task, model, tokenizer, labels = load_runtime_predictor(model_source, host, runtime, args.task)
        scope = contextlib.nullcontext()
    options = prediction_options(args)
    if args.output == "-":
        with scope:
            write_results(sys.stdout.write, task, model, tokenizer, records, labels, options, name)
        return 0
    lines: list[str] = []
    with scope:
        write_results(lines.append, task, model, tokenizer, records, labels, options, name)
    write_text(Path(args.output), "".join(lines))  # every result or, after a failure, the previous file
    return 0
