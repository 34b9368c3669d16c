"""The run directory: its files, choosing and preparing it, and saving models into it atomically."""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hone.atomic import TMP, WriteError, remove_leftovers, write_text
from hone.components import ModelFormat
from hone.errors import HoneError
from hone.host import PluginHost
from hone.paths import links_outside
from hone.run.events import read_events
from hone.spec.models import RunSpec, spec_model

SPEC, STATE, METRICS, EVENTS = "spec.yaml", "state.json", "metrics.json", "events.jsonl"
MODEL_DIR, HONE_JSON = "model", "hone.json"


def save_folder(model: Any, tokenizer: Any, folder: Path, model_format: ModelFormat,
                files: Mapping[str, str] | None = None) -> Path:
    """The model (saved by ``model_format``), its tokenizer and ``files`` (name -> text), written to a temporary
    folder renamed into place."""
    tmp = folder.with_name(f".{folder.name}{TMP}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model_format.save(model, tmp)
        tokenizer.save_pretrained(tmp)
        for name, text in (files or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
    except Exception as error:  # a full disk: safetensors and tokenizers raise their own types
        shutil.rmtree(tmp, ignore_errors=True)
        raise WriteError(folder, error) from error
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


def save_model(run_dir: Path, model: Any, tokenizer: Any, spec: RunSpec, labels: list[str], model_format: ModelFormat) -> Path:
    """The final model: loadable by ``hone predict`` and by plain transformers."""
    meta = {"task": spec.task.name, "task_params": spec.task.settings(), "labels": labels}
    return save_folder(model, tokenizer, run_dir / MODEL_DIR, model_format, {HONE_JSON: json.dumps(meta, indent=2)})


def default_run_dir(spec: RunSpec, resume: bool) -> Path:
    """``<output_dir>/<name>``, then ``<name>-2``, ...: the newest for --resume, else a new one, made here (exclusively:
    two runs started at once get two)."""
    base = Path(spec.output_dir) / spec.name
    names = (base.with_name(f"{spec.name}-{n}") if n > 1 else base for n in itertools.count(1))
    if resume:
        existing = list(itertools.takewhile(Path.exists, names))
        return existing[-1] if existing else base
    for path in names:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def read_saved(path: Path, parse: Callable[[str], Any]) -> Any:
    """A file of the run directory; a clear error if it was damaged or replaced (safe parsers only)."""
    try:
        return parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as error:
        detail = " ".join(str(error).split())
        raise HoneError(f"{path}: cannot read it ({type(error).__name__}: {detail}); start a new run with another --out") from None


def changed_fields(saved: Any, spec: RunSpec, host: PluginHost) -> list[str]:
    """The top-level fields in which ``spec`` differs from a spec saved earlier (``[]``: the same spec).

    The saved one is validated again first: fields and plugin parameters added to hone since take their defaults."""
    current = spec.model_dump(mode="json")
    try:
        saved = spec_model(host.registries).model_validate(saved, context={"registries": host.registries}).model_dump(mode="json")
    except ValidationError:
        pass
    return sorted(k for k in current if not isinstance(saved, dict) or saved.get(k) != current[k])


def prepare_run_dir(spec: RunSpec, host: PluginHost, run_dir: Path, resume: bool) -> dict[str, Any]:
    """A new run directory holding the resolved spec, or the state of the run to resume (same spec only).

    A run that failed before any work (no stage finished, no optimizer step) starts afresh, with the spec as it is now."""
    fresh: dict[str, Any] = {"status": "running", "completed": [], "results": {}}
    cleared = False
    if run_dir.is_dir():
        if escapes := links_outside(run_dir):
            raise HoneError(f"{escapes[0]}, outside the run directory {run_dir}: hone writes only inside it; remove the link")
        remove_leftovers(run_dir)
        if cleared := _no_work(run_dir):
            for path in run_dir.iterdir():
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    if resume and not cleared:
        if not (run_dir / STATE).exists() and not (run_dir / SPEC).exists():
            raise HoneError(f"{run_dir}: nothing to resume (no {STATE}); run without --resume")
        changed = changed_fields(read_saved(run_dir / SPEC, yaml.safe_load), spec, host)
        if changed:
            raise HoneError(f"{run_dir}: the spec changed since the run started (fields: {', '.join(changed)}); use a new --out")
        if not (run_dir / STATE).exists():  # killed while starting, before any work: start afresh
            return fresh
        return read_saved(run_dir / STATE, json.loads)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise HoneError(f"{run_dir} already holds a run: continue it with --resume, or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / SPEC, yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    return fresh


def _no_work(run_dir: Path) -> bool:
    """A run that failed before any work worth resuming: no stage finished, no optimizer step taken."""
    try:
        state = json.loads((run_dir / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(state, dict) and state.get("status") == "failed" and not state.get("completed")
            and not any(event.get("event") == "step_end" for event in read_events(run_dir / EVENTS)))
