"""``hone predict``: JSONL in, JSONL out, from a run directory or a saved model."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from hone.errors import DataError, HoneError, describe
from hone.plugins import PluginHost, load_plugins
from hone.run.loading import LOAD_ERRORS, resolve_source
from hone.run.rundir import HONE_JSON, MODEL_DIR, SPEC
from hone_plugins.exporters.folders import pick_export

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

    from hone.run.compressed import compression_steps, cpu_only, is_compressed_model, load_compressed_model
    from hone.run.devices import pick_device
    from hone.run.loading import quiet_transformers

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


def read_records(handle: TextIO, name: str) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(name, number, f"invalid JSON: {error.msg}") from None
        except RecursionError:
            raise DataError(name, number, "JSON nested too deeply") from None
        except ValueError as error:  # an integer of more than 4300 digits
            raise DataError(name, number, f"invalid JSON: {error}") from None
        if not isinstance(record, dict):
            raise DataError(name, number, "each line must be a JSON object, e.g. {\"text\": \"...\"}")
        yield record


def predict_command(args: argparse.Namespace) -> int:
    source = sys.stdin if args.input == "-" else None
    name = "<stdin>" if source else args.input
    if source is None and not Path(args.input).is_file():
        raise HoneError(f"{args.input}: input file not found")
    if args.batch_size < 1:
        raise HoneError(f"--batch-size must be at least 1, got {args.batch_size}")
    runtime, export = args.runtime, getattr(args, "export", None)
    if runtime != "torch" and args.device not in ("auto", "cpu"):
        raise HoneError(f"--runtime {runtime} runs on the CPU; drop --device {args.device}")
    if export is not None and runtime == "torch":
        raise HoneError(f"--export {export} picks an exported model for a serving runtime: add --runtime (e.g. onnxruntime); "
                        "--runtime torch serves the run's model/")
    model_source = args.source if export is None else str(pick_export(Path(args.source), export))
    host = load_plugins([*args.plugins_dir, *run_plugins_dirs(args.source)])
    if runtime == "torch":
        task, model, tokenizer, labels = load_predictor(model_source, host, args.task, args.device)
    else:
        task, model, tokenizer, labels = load_runtime_predictor(model_source, host, runtime, args.task)
    options = {
        "batch_size": args.batch_size, "threshold": args.threshold,
        "min_span_length": args.min_span_length, "max_new_tokens": args.max_new_tokens,
    }
    try:
        with (source or open(args.input, encoding="utf-8")) as handle:
            records = list(read_records(handle, name))
    except UnicodeDecodeError as error:
        raise DataError(name, None, f"not valid UTF-8 ({error.reason} at byte {error.start})") from None
    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
    try:
        for start in range(0, len(records), args.batch_size):
            for result in task.predict(model, tokenizer, records[start : start + args.batch_size], labels, options):
                out.write(json.dumps(result, ensure_ascii=False) + "\n")
    except ValueError as error:  # a record the task cannot use, e.g. without its "text" key
        raise DataError(name, None, str(error)) from None
    finally:
        if out is not sys.stdout:
            out.close()
    return 0
