"""The ``distill`` stage: teachers, a student built from them, and the train loop with a distiller's loss.

For resume, the stage keeps in ``<run_dir>/distill/stage<i>/`` the student as it started (its
architecture) and, when the teacher is the current model, the teacher (the checkpoints that held
it are rotated away).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from hone_plugins.formats.compressed import is_compressed_model, load_compressed_model, needs_recipe
from hone.errors import HoneError, describe
from hone.run.context import RunContext, unwrap
from hone.run.loading import LOAD_ERRORS, resolve_source
from hone.run.rundir import HONE_JSON, MODEL_DIR, save_folder
from hone_plugins.stages import adapting
from hone_plugins.stages.evaluation import check_metric_labels
from hone_plugins.stages.specs import DistillStage
from hone_plugins.stages.train import LossFn, train_stage

STUDENT, TEACHER = "student", "teacher"


def stage_dir(ctx: Any, index: int) -> Path | None:
    return ctx.run_dir / "distill" / f"stage{index}" if ctx.run_dir is not None else None


def layer_stack(model: torch.nn.Module) -> tuple[str, torch.nn.ModuleList]:
    """The ModuleList holding the transformer layers (``bert.encoder.layer``, ``transformer.h``, ``model.layers``...)."""
    count = getattr(model.config, "num_hidden_layers", None)
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.ModuleList) and len(m) == count]
    outermost = [(n, m) for n, m in found if not any(n.startswith(other + ".") for other, _ in found if other != n)]
    if len(outermost) != 1:
        where = ", ".join(n for n, _ in outermost) or "none"
        raise HoneError(f"cannot tell which module list of {type(model).__name__} holds its {count} layers (candidates: {where}); "
                        "use `student: {source: ...}` or `student: {config: ...}` instead")
    return outermost[0]


def keep_layers(model: torch.nn.Module, layers: Sequence[int]) -> torch.nn.Module:
    """A copy of ``model`` with only ``layers`` of its transformer stack; embeddings and head copied as they are."""
    path, stack = layer_stack(model)
    if not all(0 <= i < len(stack) for i in layers):
        raise HoneError(f"student.layers {list(layers)}: the teacher has layers 0..{len(stack) - 1}")
    student = copy.deepcopy(model)
    kept = torch.nn.ModuleList([student.get_submodule(path)[i] for i in layers])
    for new_index, layer in enumerate(kept):
        for module in layer.modules():  # caches (generation) are indexed by layer position
            if isinstance(getattr(module, "layer_idx", None), int):
                module.layer_idx = new_index
    student.set_submodule(path, kept)
    student.config.num_hidden_layers = len(layers)
    if isinstance(getattr(student.config, "layer_types", None), list):
        student.config.layer_types = [student.config.layer_types[i] for i in layers]
    return student


def reconfigured(model: torch.nn.Module, overrides: dict[str, Any]) -> torch.nn.Module:
    """A randomly initialised model of ``model``'s class and config with ``overrides``."""
    config = copy.deepcopy(model.config)
    unknown = [key for key in overrides if not hasattr(config, key)]
    if unknown:
        raise HoneError(f"student.config: {type(config).__name__} has no {', '.join(unknown)}")
    for key, value in overrides.items():
        setattr(config, key, value)
    try:
        return type(model)(config)
    except ValueError as error:  # e.g. a width the attention heads do not divide
        raise HoneError(f"student.config: {error}") from None


def check_vocabulary(ctx: Any, tokenizer: Any, what: str) -> None:
    if tokenizer.get_vocab() != ctx.tokenizer.get_vocab():
        raise HoneError(f"{what} uses another vocabulary than the run's model ('{ctx.spec.model.source}'); "
                        "teachers and students must share the run's tokenizer")


def model_folder(source: str) -> str:
    """A run directory's final model, a model folder, or a Hub / ``pkg:`` name."""
    path = Path(resolve_source(source))
    return str(path / MODEL_DIR) if (path / MODEL_DIR / HONE_JSON).exists() else str(path)


def load_folder(ctx: Any, source: str) -> tuple[torch.nn.Module, Any]:
    """A model with its own, saved head (a compressed one rebuilt from its recipe), and its tokenizer."""
    if is_compressed_model(Path(source)):
        from transformers import AutoTokenizer

        return load_compressed_model(Path(source), ctx.host), AutoTokenizer.from_pretrained(source)
    return ctx.task.load(source, [])


def load_teacher(ctx: Any, source: str) -> torch.nn.Module:
    """A teacher with its own, saved head, checked against the run's labels and vocabulary."""
    try:
        model, tokenizer = load_folder(ctx, model_folder(source))
    except LOAD_ERRORS as error:
        raise HoneError(f"teacher '{source}': cannot load ({describe(error)})") from None
    check_vocabulary(ctx, tokenizer, f"teacher '{source}'")
    if ctx.labels:
        id2label = model.config.id2label or {}
        labels = [id2label.get(i, str(i)) for i in range(model.config.num_labels)]
        if labels != list(ctx.labels):
            raise HoneError(f"teacher '{source}' predicts labels {labels}, the run {list(ctx.labels)}; "
                            "distil from a teacher trained on the same labels")
    return model


def build_student(ctx: Any, stage: DistillStage, teacher: torch.nn.Module, current: torch.nn.Module) -> torch.nn.Module:
    spec = stage.student
    if spec is None:
        return current
    if spec.layers is not None:
        if needs_recipe(teacher):  # its compression recipe names the teacher's layers
            raise HoneError("student.layers: the teacher is structurally compressed; distil into a `source` or `config` "
                            "student, or compress after distilling")
        return keep_layers(teacher, spec.layers)
    base = teacher
    if spec.source is not None:
        try:
            base, tokenizer = ctx.task.load(resolve_source(spec.source), ctx.labels, revision=spec.revision)
        except LOAD_ERRORS as error:
            raise HoneError(f"student.source '{spec.source}': cannot load ({describe(error)})") from None
        check_vocabulary(ctx, tokenizer, f"student '{spec.source}'")
    return reconfigured(base, spec.config) if spec.config else base


def load_saved(ctx: Any, index: int, which: str) -> torch.nn.Module:
    folder = stage_dir(ctx, index)
    if folder is None or not (folder / which).exists():
        raise HoneError(f"stage '{ctx.stage_names[index]}': the {which} saved for resuming is missing "
                        f"({folder / which if folder else 'no run directory'}); start a new run with another --out")
    model, _ = load_folder(ctx, str(folder / which))
    return model


def detached(outputs: Any) -> Any:
    """Outputs made under ``inference_mode`` as ordinary tensors, which autograd may save for backward."""
    def clone(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.clone()
        if isinstance(value, tuple):
            return tuple(clone(v) for v in value)
        return value

    return type(outputs)(**{key: clone(value) for key, value in outputs.items()})


def distill_loss(ctx: RunContext, stage: DistillStage, distiller: Any, teachers: Sequence[torch.nn.Module]) -> LossFn:
    flags = {"output_hidden_states": True} if distiller.needs_hidden_states else {}
    if distiller.needs_attentions:
        flags["output_attentions"] = True

    shift = int(getattr(ctx.task, "label_shift", 0) or 0)  # causal LMs: the logits at t predict labels[t + 1]

    # a distiller that takes compact logits gets a causal LM's at the answer positions only, the teachers' and the student's
    forward = ctx.loss_forward if getattr(distiller, "compact_logits", False) else ctx.forward

    def loss(model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        with torch.inference_mode():
            teacher_outputs = [forward(teacher, batch, **flags) for teacher in teachers]
        teacher_outputs = [detached(o) for o in teacher_outputs]  # ordinary tensors, outside inference mode
        outputs = forward(model, batch, **flags)
        task_loss = ctx.task.loss(outputs, batch, stage.label_smoothing)
        return distiller.loss(outputs, teacher_outputs, {**batch, "_label_shift": shift} if shift else batch, task_loss)

    return loss


def parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class Distill:
    def __init__(self, spec: DistillStage) -> None:
        self.spec = spec

    def run(self, ctx: RunContext, index: int, resume: dict[str, Any] | None = None) -> dict[str, Any]:
        return distill_stage(ctx, index, self.spec, resume)

    def resume_model(self, ctx: RunContext, index: int) -> torch.nn.Module:
        """The student this stage started from: the architecture its checkpoints hold weights for."""
        return load_saved(ctx, index, STUDENT)

    def check(self, ctx: RunContext, index: int) -> None:
        adapting.check(ctx, index, self.spec)
        check_metric_labels(ctx, index, self.spec.metrics)

    def checkpoint_model(self, ctx: RunContext, index: int, model: torch.nn.Module) -> torch.nn.Module | None:
        return adapting.checkpoint_model(ctx, index, self.spec, model)


def distill_stage(ctx: RunContext, index: int, stage: DistillStage, resume: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train a student on the teachers' outputs with the train loop; the student becomes the model."""
    name = ctx.stage_names[index]
    if ctx.world_size > 1:
        raise HoneError(f"stage '{name}': distill stages run in a single process")
    distiller = ctx.host.build("distiller", stage.distiller)
    folder = stage_dir(ctx, index)
    current = unwrap(ctx.model)
    if stage.teachers():
        teachers = [load_teacher(ctx, source) for source in stage.teachers()]
    else:
        teachers = [load_saved(ctx, index, TEACHER) if resume is not None else current]
    if resume is not None:  # the runner rebuilt the student and loaded its checkpoint
        student = current
    else:
        student = build_student(ctx, stage, teachers[0], current).to(ctx.device)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            save_folder(student, ctx.tokenizer, folder / STUDENT, ctx.model_format)
            if not stage.teachers():
                save_folder(current, ctx.tokenizer, folder / TEACHER, ctx.model_format)
    for teacher in teachers:
        teacher.to(ctx.device).eval().requires_grad_(False)
    attention = student.config._attn_implementation
    if distiller.needs_attentions:  # only eager attention returns attention maps
        for model in (student, *teachers):
            model.set_attn_implementation("eager")
    try:
        extra = dict(distiller.prepare(student, teachers))
    except ValueError as error:
        raise HoneError(f"stage '{name}': distiller '{stage.distiller.name}': {error}") from None
    modules = torch.nn.ModuleDict(extra).to(ctx.device) if extra else None
    ctx.model = student
    result = train_stage(ctx, index, stage, resume, distill_loss(ctx, stage, distiller, teachers), modules)
    if distiller.needs_attentions:
        student.set_attn_implementation(attention)
    return {**result, "student_parameters": parameters(student), "teacher_parameters": [parameters(t) for t in teachers]}
