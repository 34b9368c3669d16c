"""A run: data, task, model, then each stage in order, into a resumable run directory."""

from __future__ import annotations

import importlib
import json
import os
import pickle
import signal
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from pydantic import ValidationError
from safetensors.torch import load_file, save_file

from hone.atomic import write_json, write_text, write_with
from hone.run.checkpoint import Checkpoints, load_checkpoint, rng_state, set_rng_state, state_dict_for_saving
from hone.run.compressed import read_steps, restore_steps, save_model_weights
from hone.run.data import check_labels, load_splits
from hone.run.devices import pick_device, pick_precision, seed_everything
from hone.errors import ComponentError, HoneError, Interrupted
from hone.run.events import EventLog
from hone.plugins import PluginHost
from hone.run.progress import make_progress
from hone.spec.models import RunSpec
from hone.run.stages import MODIFIES_MODEL, STAGE_RUNNERS, model_for_checkpoint

STATE = "state.json"
MODEL_DIR = "model"
HONE_JSON = "hone.json"


# what transformers raises for a missing model, custom code without trust_remote_code, a refused pickle
LOAD_ERRORS = (OSError, ValueError, pickle.UnpicklingError)


def first_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"


def resolve_source(source: str) -> str:
    """``pkg:<module>`` names an installed package whose ``get_model_path()`` gives a model folder."""
    if source.startswith("pkg:"):
        module_name = source[4:]
        try:
            return str(importlib.import_module(module_name).get_model_path())
        except (ImportError, AttributeError) as error:
            raise HoneError(f"model.source '{source}': cannot get a model path from package '{module_name}' ({error})") from None
    return source


def quiet_transformers() -> None:
    """hone reports progress itself; transformers' load reports and bars would bury it."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


@dataclass
class RunContext:
    """Everything stages share: the model, the data, where results go."""

    spec: RunSpec
    host: PluginHost
    run_dir: Path | None
    task: Any
    model: Any
    tokenizer: Any
    labels: list[str]
    features: dict[str, list[dict[str, Any]]]
    device: torch.device
    precision: str
    events: EventLog
    checkpoints: Checkpoints | None
    progress: Callable[..., Any]
    rank: int = 0
    world_size: int = 1
    _interrupt: list[bool] = field(default_factory=lambda: [False])

    @property
    def seed(self) -> int:
        return self.spec.seed

    @property
    def stage_names(self) -> list[str]:
        return self.spec.stage_names()

    def interrupted(self) -> bool:
        return self._interrupt[0]

    def _best_path(self, index: int) -> Path:
        assert self.run_dir is not None
        return self.run_dir / "checkpoints" / f"best-stage{index}.safetensors"

    def save_best(self, index: int, model: torch.nn.Module) -> None:
        write_with(self._best_path(index), lambda p: save_file(state_dict_for_saving(model), str(p)))

    def restore_best(self, index: int, model: torch.nn.Module) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()
        model.load_state_dict(load_file(str(self._best_path(index))), strict=False)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DistributedDataParallel wrapper."""
    return model.module if hasattr(model, "module") else model


def _load_features(ctx_spec: RunSpec, host: PluginHost, task: Any, tokenizer: Any, labels: list[str], splits: dict[str, list[Any]]) -> dict[str, list[dict[str, Any]]]:
    if labels and "label" in (splits["train"] or [{}])[0]:
        for name in ("validation", "test"):
            check_labels(splits[name], labels, getattr(ctx_spec.data, name) or ctx_spec.data.path or name)
    return {name: task.encode(examples, tokenizer, labels) for name, examples in splits.items() if examples}


def save_model(run_dir: Path, model: torch.nn.Module, tokenizer: Any, spec: RunSpec, labels: list[str]) -> Path:
    """The final model: loadable by ``hone predict`` and by plain transformers."""
    import shutil

    final, tmp = run_dir / MODEL_DIR, run_dir / f".{MODEL_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    save_model_weights(model, tmp)  # save_pretrained, or hone's format for a structurally compressed model
    tokenizer.save_pretrained(tmp)
    (tmp / HONE_JSON).write_text(json.dumps({"task": spec.task.name, "task_params": spec.task.settings(), "labels": labels}, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def default_run_dir(spec: RunSpec, resume: bool) -> Path:
    """``<output_dir>/<name>``, then ``<name>-2``, ...: a new one for a run, the newest for --resume."""
    base = Path(spec.output_dir) / spec.name
    existing = [base] if base.exists() else []
    n = 2
    while base.with_name(f"{spec.name}-{n}").exists():
        existing.append(base.with_name(f"{spec.name}-{n}"))
        n += 1
    if resume:
        return existing[-1] if existing else base
    return base if not base.exists() else base.with_name(f"{spec.name}-{n}")


def _read_saved(path: Path, parse: Callable[[str], Any]) -> Any:
    """A file of the run directory; a clear error if it was damaged or replaced (safe parsers only)."""
    try:
        return parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as error:
        detail = " ".join(str(error).split())
        raise HoneError(f"{path}: cannot read it ({type(error).__name__}: {detail}); start a new run with another --out") from None


def _prepare_run_dir(spec: RunSpec, host: PluginHost, run_dir: Path, resume: bool) -> dict[str, Any]:
    spec_data = spec.model_dump(mode="json")
    if resume:
        if not (run_dir / STATE).exists() and not (run_dir / "spec.yaml").exists():
            raise HoneError(f"{run_dir}: nothing to resume (no {STATE}); run without --resume")
        saved = _read_saved(run_dir / "spec.yaml", yaml.safe_load)
        try:  # fields added to hone since the run started take their defaults
            saved = RunSpec.model_validate(saved, context={"registries": host.registries}).model_dump(mode="json")
        except ValidationError:
            pass
        if saved != spec_data:
            changed = sorted(k for k in spec_data if not isinstance(saved, dict) or saved.get(k) != spec_data[k])
            raise HoneError(f"{run_dir}: the spec changed since the run started (fields: {', '.join(changed)}); use a new --out")
        if not (run_dir / STATE).exists():  # killed while starting, before any work: start afresh
            return {"status": "running", "completed": [], "results": {}}
        return _read_saved(run_dir / STATE, json.loads)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise HoneError(f"{run_dir} already holds a run: continue it with --resume, or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "spec.yaml", yaml.safe_dump(spec_data, sort_keys=False))
    return {"status": "running", "completed": [], "results": {}}


def run(spec: RunSpec, host: PluginHost, out: Path | None = None, resume: bool = False, quiet: bool = True,
        callbacks: Sequence[tuple[str, Any]] = ()) -> Path:
    """Execute every stage of ``spec``; return the run directory. ``callbacks`` adds (name, object) listeners."""
    world_size, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    run_dir = Path(out) if out is not None else default_run_dir(spec, resume)
    state = _prepare_run_dir(spec, host, run_dir, resume) if rank == 0 else {"completed": [], "results": {}}
    if world_size > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo" if spec.device in ("auto", "cpu") and not torch.cuda.is_available() else "nccl")
        dist.barrier()
        if rank != 0:
            state = json.loads((run_dir / STATE).read_text()) if resume else state
    writer = rank == 0
    origins = {ref.name: host.describe("callback", ref.name) for ref in spec.callbacks}
    events = EventLog(run_dir / "events.jsonl" if writer else None, list(callbacks), origins)
    state["status"] = "running"

    def save_state() -> None:
        if writer:
            write_json(run_dir / STATE, state)

    save_state()
    try:
        if writer:
            events.callbacks[:0] = [(ref.name, host.build("callback", ref, run_dir)) for ref in spec.callbacks]
        return _execute(spec, host, run_dir, state, save_state, events, resume, quiet, rank, world_size)
    except Exception as error:
        culprit = None if isinstance(error, HoneError) else host.blame(error)
        message = str(error) if isinstance(error, HoneError) else f"{type(error).__name__}: {error}"
        message += f" (raised by {culprit})" if culprit else ""
        state["status"], state["error"] = "interrupted" if isinstance(error, Interrupted) else "failed", message
        try:
            save_state()
            events.emit("run_failed", status=state["status"], error=message)
        except (HoneError, OSError) as secondary:  # e.g. the disk is still full: report the first error
            warnings.warn(f"could not record the failure in {run_dir}: {secondary}", stacklevel=2)
        if culprit:
            raise ComponentError(message) from error
        raise


def _execute(spec: RunSpec, host: PluginHost, run_dir: Path, state: dict[str, Any], save_state: Callable[[], None],
             events: EventLog, resume: bool, quiet: bool, rank: int, world_size: int) -> Path:
    writer = rank == 0
    quiet_transformers()
    seed_everything(spec.seed)
    device = pick_device(spec.device)
    precision = pick_precision(spec.precision, device)
    splits = load_splits(spec.data, host, spec.seed)
    task = host.build("task", spec.task)
    labels = task.labels_from(splits["train"]) if splits["train"] else []
    if spec.model.trust_remote_code:
        warnings.warn(f"model.trust_remote_code is on: code from '{spec.model.source}' will run", stacklevel=2)
    try:
        model, tokenizer = task.load(resolve_source(spec.model.source), labels, trust_remote_code=spec.model.trust_remote_code, revision=spec.model.revision)
    except LOAD_ERRORS as error:
        raise HoneError(f"model.source '{spec.model.source}': cannot load ({first_line(error)})") from None
    if hasattr(task, "model_labels"):  # a fine-tuned head keeps its own labels, in its own order
        labels = task.model_labels(model)
    features = _load_features(spec, host, task, tokenizer, labels, splits)
    model.to(device)
    if world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    core = unwrap(model)
    ctx = RunContext(
        spec, host, run_dir, task, model, tokenizer, labels, features, device, precision, events,
        Checkpoints(run_dir / "checkpoints") if writer else None, make_progress(quiet or not writer), rank, world_size,
    )
    checkpoints = Checkpoints(run_dir / "checkpoints")
    resume_state: dict[str, Any] | None = None
    if resume:
        folder = checkpoints.latest_good(warn=lambda message: warnings.warn(message, stacklevel=2))
        if folder is None and any(spec.stages[i].type in MODIFIES_MODEL for i in state["completed"]):
            raise HoneError(f"{run_dir / 'checkpoints'}: no usable checkpoint, so the finished stages' weights are lost; "
                            "start a new run with another --out")
        if folder is not None:
            rebuilt = model_for_checkpoint(ctx, folder)
            if rebuilt is not None:  # e.g. a distill stage's student: its checkpoints hold the student's weights
                ctx.model = core = rebuilt.to(device)
            if steps := read_steps(folder):  # a compressed model: rebuild its structure before its weights load
                restored = restore_steps(core, steps, host)
                if restored is not core:
                    ctx.model = core = restored
            resume_state = load_checkpoint(folder, core)
            if resume_state["done"]:  # between stages: continue with the RNG as the finished stage left it
                set_rng_state(resume_state["rng"])
    events.emit("run_start", name=spec.name, device=str(device), precision=precision, resumed=resume,
                torch=torch.__version__, sizes={k: len(v) for k, v in features.items()}, labels=labels, **versions(device))
    previous = signal.signal(signal.SIGINT, lambda *_: ctx._interrupt.__setitem__(0, True)) if writer else None
    try:
        for index, stage in enumerate(spec.stages):
            name = ctx.stage_names[index]
            if index in state["completed"]:
                continue
            partial = resume_state if resume_state and resume_state["stage"] == index and not resume_state["done"] else None
            if resume_state and resume_state["stage"] == index and resume_state["done"] and "result" in resume_state:
                result = resume_state["result"]  # killed after the stage's last checkpoint, before state.json recorded it
            else:
                result = STAGE_RUNNERS[stage.type](ctx, index, stage, partial)
                if stage.type in MODIFIES_MODEL and writer:
                    checkpoints.save(f"stage{index}-end", unwrap(ctx.model),
                                     {"stage": index, "done": True, "rng": rng_state(), "result": plain(scalars_tree(result))})
            results = {**state["results"], name: scalars_tree(result)}
            if writer:  # before state.json: a kill or a full disk in between re-runs the stage, never loses its results
                write_json(run_dir / "metrics.json", results)
            state["completed"].append(index)
            state["results"] = results
            save_state()
            events.emit("stage_end", stage=name, result=scalars_tree(result, reports=False))
        if world_size > 1:
            state["distributed"] = replica_check(unwrap(ctx.model), world_size)
        if writer:
            save_model(run_dir, unwrap(ctx.model), ctx.tokenizer, spec, labels)
        state["status"] = "completed"
        save_state()
        events.emit("run_end", status="completed", metrics=state["results"])
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return run_dir


def versions(device: torch.device) -> dict[str, str]:
    """What the report's environment section shows beside torch: hone, transformers, Python, the accelerator."""
    import platform

    import transformers

    from hone import __version__

    found = {"hone": __version__, "transformers": transformers.__version__, "python": platform.python_version()}
    if device.type == "cuda":
        found["accelerator"] = torch.cuda.get_device_name(device)
    return found


def replica_check(model: torch.nn.Module, world_size: int) -> dict[str, Any]:
    """Every rank's parameter checksum: data-parallel replicas must hold identical weights."""
    import torch.distributed as dist

    with torch.no_grad():
        checksum = float(sum(p.double().sum() for p in model.parameters()))
    checksums: list[Any] = [None] * world_size
    dist.all_gather_object(checksums, checksum)
    return {"world_size": world_size, "checksums": checksums, "in_sync": len(set(checksums)) == 1}


def plain(value: Any) -> Any:
    """``value`` as metrics.json holds it: only JSON types, so ``torch.load(weights_only=True)`` reads it back."""
    return json.loads(json.dumps(value, default=str))


def scalars_tree(result: dict[str, Any], reports: bool = True) -> dict[str, Any]:
    """Keep JSON-friendly values; drop nested reports when ``reports`` is false."""
    out: dict[str, Any] = {}
    for key, value in result.items():
        if isinstance(value, dict):
            out[key] = scalars_tree(value, reports) if reports or key in ("validation", "test", "train") else None
        elif isinstance(value, (int, float, str, bool, list)) or value is None:
            out[key] = value
    return {k: v for k, v in out.items() if v is not None or reports}


