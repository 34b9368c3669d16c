"""A run: data, task, model, then each stage in order, into a resumable run directory."""

from __future__ import annotations

import json
import os
import signal
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from hone.atomic import write_json
from hone.errors import ComponentError, HoneError, Interrupted
from hone.host import PluginHost
from hone.run.checkpoint import Checkpoints, load_checkpoint, read_training_state, retain, rng_state, set_rng_state
from hone.run.context import RunContext
from hone.run.data import load_splits
from hone.run.devices import Precision, cpu_bf16_units, pick_device, pick_precisions, seed_everything, set_threads
from hone.run.events import EventLog, read_events
from hone.run.loading import encode_splits, load_model
from hone.run.memory import process_peak_rss_mb, reset_peak_rss, stage_memory
from hone.run.results import plain, scalars_tree
from hone.run.rundir import EVENTS, METRICS, STATE, default_run_dir, prepare_run_dir, save_model
from hone.spec.models import RunSpec, StageSpec


def run(spec: RunSpec, host: PluginHost, out: Path | None = None, resume: bool = False,
        callbacks: Sequence[tuple[str, Any]] = (), threads: int | None = None, progress: Callable[..., Any] | None = None) -> Path:
    """Execute every stage of ``spec``; return the run directory. ``callbacks`` adds (name, object) listeners;
    ``threads`` (torch's intra-op threads for this run) overrides the spec's; ``progress(description, total,
    completed)`` makes the progress bars of an interactive run (none by default)."""
    world_size, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    run_dir = Path(out) if out is not None else default_run_dir(spec, resume or rank != 0)  # other ranks: rank 0's
    state = prepare_run_dir(spec, host, run_dir, resume) if rank == 0 else {"completed": [], "results": {}}
    if world_size > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo" if spec.device in ("auto", "cpu") and not torch.cuda.is_available() else "nccl")
        dist.barrier()
        if rank != 0:
            run_dir = run_dir if out is not None else default_run_dir(spec, True)  # the one rank 0 has made
            state = json.loads((run_dir / STATE).read_text()) if resume else state
    if resume and state.get("status") == "completed":
        return run_dir  # nothing left to do (its checkpoints may be gone: checkpoints.after_run)
    writer = rank == 0
    origins = {ref.name: host.describe("callback", ref.name) for ref in spec.callbacks}
    events = EventLog(run_dir / EVENTS if writer else None, list(callbacks), origins)
    state["status"] = "running"

    def save_state() -> None:
        if writer:
            write_json(run_dir / STATE, state)

    save_state()
    previous_threads = torch.get_num_threads()
    try:
        set_threads(threads or spec.threads)
        if writer:
            events.callbacks[:0] = [(ref.name, host.build("callback", ref, run_dir)) for ref in spec.callbacks]
        return _execute(spec, host, run_dir, state, save_state, events, resume, progress, rank, world_size)
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
    finally:
        torch.set_num_threads(previous_threads)


def _execute(spec: RunSpec, host: PluginHost, run_dir: Path, state: dict[str, Any], save_state: Callable[[], None],
             events: EventLog, resume: bool, progress: Callable[..., Any] | None, rank: int, world_size: int) -> Path:
    writer = rank == 0
    seed_everything(spec.seed)
    device = pick_device(spec.device)
    precision = pick_precisions(spec.precision, device)
    precision = _kept_precision(run_dir, precision) if resume else precision
    splits = load_splits(spec.data, host, spec.seed)
    task = host.build("task", spec.task)
    model, tokenizer, labels = load_model(spec, task, task.labels_from(splits["train"]) if splits["train"] else [])
    features = encode_splits(spec, task, tokenizer, labels, splits)
    model.to(device)
    model_format = host.build("model_format", spec.model_format, host)
    if world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    ctx = RunContext(
        spec, host, run_dir, task, model, tokenizer, labels, features, device, precision.train, events,
        Checkpoints(run_dir / "checkpoints", spec.checkpoints.keep, model_format) if writer else None,
        progress if writer else None, rank, world_size, eval_precision=precision.eval, model_format=model_format,
    )
    resume_state = _resume(ctx, state["completed"]) if resume else None
    runners = {i: host.build("stage", stage) for i, stage in enumerate(spec.stages) if i not in state["completed"]}
    for index, runner in runners.items():  # refuse what a stage cannot work with before any stage runs
        if (check := getattr(runner, "check", None)) is not None:
            check(ctx, index)
    state["precision"], state["threads"] = precision._asdict(), torch.get_num_threads()
    hardware = {"cpu_bf16": cpu_bf16_units()} if device.type == "cpu" else {}  # why `auto` chose as it did
    events.emit("run_start", name=spec.name, device=str(device), precision=precision._asdict(), resumed=resume,
                threads=state["threads"], **hardware,
                torch=torch.__version__, sizes={k: len(v) for k, v in features.items()}, labels=labels, **versions(device))
    with _checkpoint_on_ctrl_c(ctx, writer):
        for index, stage in enumerate(spec.stages):
            if index in state["completed"]:
                continue
            result = _run_stage(ctx, index, stage, runners[index], resume_state)
            results = {**state["results"], ctx.stage_names[index]: scalars_tree(result)}
            if writer:  # before state.json: a kill or a full disk in between re-runs the stage, never loses its results
                write_json(run_dir / METRICS, results)
            state["completed"].append(index)
            state["results"] = results
            save_state()
            events.emit("stage_end", stage=ctx.stage_names[index], result=scalars_tree(result, reports=False))
        if world_size > 1:
            state["distributed"] = replica_check(ctx.core, world_size)
        if writer:
            save_model(run_dir, ctx.core, ctx.tokenizer, spec, labels, model_format)
        state["status"] = "completed"
        save_state()
        if writer:
            retain(run_dir / "checkpoints", spec.checkpoints.after_run)
        events.emit("run_end", status="completed", metrics=state["results"], process_peak_rss_mb=process_peak_rss_mb())
    return run_dir


def _kept_precision(run_dir: Path, picked: Precision) -> Precision:
    """The precisions a resumed run's first attempt chose, so every result of the run is computed alike (a run from
    before hone chose two recorded one, for training and evaluation); ``picked`` for a run without an attempt."""
    starts = [e for e in read_events(run_dir / EVENTS) if e.get("event") == "run_start"]
    saved = starts[0].get("precision") if starts else None
    if isinstance(saved, str):
        return Precision(saved, saved)
    if isinstance(saved, dict) and isinstance(saved.get("train"), str) and isinstance(saved.get("eval"), str):
        return Precision(saved["train"], saved["eval"])
    return picked


def effect(host: PluginHost, stage: StageSpec) -> str:
    """What a stage kind does to the run's model: keeps, changes or replaces it."""
    return str(host.registries.get("stage", stage.type).info.get("model", "keeps"))


def _run_stage(ctx: RunContext, index: int, stage: StageSpec, runner: Any,
               resume_state: dict[str, Any] | None) -> dict[str, Any]:
    """One stage's results; a stage that changed the model ends with a checkpoint of it."""
    if resume_state and resume_state["stage"] == index and resume_state["done"] and "result" in resume_state:
        return dict(resume_state["result"])  # killed after the stage's last checkpoint, before state.json recorded it
    partial = resume_state if resume_state and resume_state["stage"] == index and not resume_state["done"] else None
    reset = reset_peak_rss()
    result = runner.run(ctx, index, partial)
    if isinstance(result, dict):
        result = {**result, **stage_memory(reset)}
    if effect(ctx.host, stage) != "keeps" and ctx.checkpoints is not None:
        ctx.checkpoints.save(f"stage{index}-end", ctx.core,
                             {"stage": index, "done": True, "rng": rng_state(), "result": plain(scalars_tree(result))})
    return result


def _resume(ctx: RunContext, completed: list[int]) -> dict[str, Any] | None:
    """Load the last good checkpoint into the run's model (rebuilt first where a stage replaced or compressed it)."""
    assert ctx.run_dir is not None
    folder = Checkpoints(ctx.run_dir / "checkpoints").latest_good(warn=lambda message: warnings.warn(message, stacklevel=3))
    if folder is None:
        if any(effect(ctx.host, ctx.spec.stages[i]) != "keeps" for i in completed):
            raise HoneError(f"{ctx.run_dir / 'checkpoints'}: no usable checkpoint, so the finished stages' weights are lost; "
                            "start a new run with another --out")
        return None
    rebuilt = _model_for_checkpoint(ctx, folder)
    if rebuilt is not None:  # e.g. a distill stage's student: its checkpoints hold the student's weights
        ctx.model = rebuilt.to(ctx.device)
    assert ctx.model_format is not None
    if (structured := ctx.model_format.rebuild(ctx.core, folder)) is not ctx.core:  # a compressed model's structure, say
        ctx.model = structured
    state = load_checkpoint(folder, ctx.core, ctx.model_format)
    if state["done"]:  # between stages: continue with the RNG as the finished stage left it
        set_rng_state(state["rng"])
    return state


def _model_for_checkpoint(ctx: RunContext, folder: Path) -> Any | None:
    """The model a checkpoint's weights fit when it is not the spec's (``None``): a replacing stage's, up to the
    checkpoint's own; and for a checkpoint taken inside a stage, the form that stage trains the model in, where its
    runner defines ``checkpoint_model(ctx, index, model)`` (the model with an adapter, say; ``None``: as it is)."""
    state = read_training_state(folder)
    stage, model = int(state["stage"]), None
    replacing = [i for i, s in enumerate(ctx.spec.stages) if effect(ctx.host, s) == "replaces" and i <= stage]
    if replacing:
        model = ctx.host.build("stage", ctx.spec.stages[replacing[-1]]).resume_model(ctx, replacing[-1])
    runner = None if state["done"] else ctx.host.build("stage", ctx.spec.stages[stage])
    inside = getattr(runner, "checkpoint_model", None)
    if inside is not None:
        adapted = inside(ctx, stage, model if model is not None else ctx.core)
        model = adapted if adapted is not None else model
    return model


@contextmanager
def _checkpoint_on_ctrl_c(ctx: RunContext, writer: bool) -> Iterator[None]:
    """Ctrl-C sets a flag the stages check at each step: they checkpoint and stop cleanly."""
    previous = signal.signal(signal.SIGINT, lambda *_: ctx._interrupt.__setitem__(0, True)) if writer else None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


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
