"""Built-in distillers: soft-logit knowledge distillation and TinyBERT-style hidden-state matching.

Both take any number of teachers (multi-teacher): their logits are averaged, or weighted by
``teacher_weights``. torch is imported inside the functions that need it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hone.components import Distiller
from hone.hookspecs import hookimpl
from hone.registry import Register

if TYPE_CHECKING:
    import torch

IGNORE_INDEX = -100


class LogitsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alpha: float = Field(0.5, ge=0, le=1, description="Share of the distillation loss; the task loss gets 1 - alpha.")
    temperature: float = Field(2.0, gt=0, description="Softens both distributions; the KL term is scaled by T^2.")
    teacher_weights: list[float] | None = Field(
        None, min_length=1, description="One weight per teacher (multi-teacher); default: every teacher alike.")

    @field_validator("teacher_weights")
    @classmethod
    def _positive(cls, weights: list[float] | None) -> list[float] | None:
        if weights is not None and (min(weights) < 0 or sum(weights) <= 0):
            raise ValueError("teacher_weights must be non-negative with a positive sum, e.g. [0.7, 0.3]")
        return weights


class HiddenParams(LogitsParams):
    alpha: float = Field(0.0, ge=0, le=1, description="Share of the logits loss in the output term; the task loss gets 1 - alpha.")
    temperature: float = Field(1.0, gt=0, description="Temperature of the logits loss (when alpha > 0).")
    beta: float = Field(1.0, ge=0, description="Weight of the hidden-state (and attention) MSE, added to the output term.")
    layer_map: dict[int, int] | None = Field(
        None, description="Student hidden-state index -> teacher's (0: embeddings, i: output of layer i); "
        "default: uniform, student i -> teacher i * T // S.")
    attention: bool = Field(False, description="Also match attention maps of the mapped layers (MSE).")


def weights_for(weights: Sequence[float] | None, teachers: int) -> list[float]:
    """Normalised teacher weights; equal when none are given."""
    if weights is None:
        return [1.0 / teachers] * teachers
    if len(weights) != teachers:
        raise ValueError(f"teacher_weights has {len(weights)} weights for {teachers} teacher(s); give one per teacher")
    return [w / sum(weights) for w in weights]


def token_mask(batch: Mapping[str, Any], logits: torch.Tensor) -> torch.Tensor | None:
    """Positions that count: those whose integer label is not -100 (token tasks); ``None``: all."""
    labels = batch.get("labels")
    if labels is None or labels.is_floating_point() or tuple(labels.shape) != tuple(logits.shape[:-1]):
        return None
    return labels.to(logits.device) != IGNORE_INDEX


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """KL(teacher || student) on temperature-softened logits times T^2, averaged over counted positions."""
    import torch.nn.functional as F

    s, t = student.float(), teacher.float()
    if s.shape[-1] == 1:  # a single output (regression) has no distribution to soften: match it directly
        per_position = (s - t).pow(2).squeeze(-1)
    else:
        kl = F.kl_div((s / temperature).log_softmax(-1), (t / temperature).log_softmax(-1), log_target=True, reduction="none")
        per_position = kl.sum(-1) * temperature**2  # T^2 keeps the gradients' scale independent of T (Hinton et al.)
    if mask is not None:
        per_position = per_position[mask]
    return per_position.mean() if per_position.numel() else s.sum() * 0.0


def mean_logits(logits: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    return sum(w * x.float() for w, x in zip(weights, logits))  # type: ignore[return-value]


def hidden_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the non-padding positions of (batch, length, width) states."""
    squared = (student.float() - teacher.float()).pow(2) * mask[..., None]
    return squared.sum() / (mask.sum() * student.shape[-1]).clamp(min=1)


def attention_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE of (batch, heads, length, length) attention maps over real query/key pairs; head means if counts differ."""
    s, t = student.float(), teacher.float()
    if s.shape[1] != t.shape[1]:
        s, t = s.mean(1, keepdim=True), t.mean(1, keepdim=True)
    pairs = mask[:, None, :, None] * mask[:, None, None, :]
    return ((s - t).pow(2) * pairs).sum() / (pairs.sum() * s.shape[1]).clamp(min=1)


def uniform_map(student_layers: int, teacher_layers: int) -> dict[int, int]:
    """Embeddings to embeddings, then student layer i to teacher layer i * T // S (TinyBERT's choice)."""
    return {i: i * teacher_layers // student_layers for i in range(student_layers + 1)}


class LogitsDistiller:
    """alpha * T^2 * KL(teacher || student) + (1 - alpha) * task loss."""

    needs_hidden_states = False
    needs_attentions = False

    def __init__(self, alpha: float, temperature: float, teacher_weights: Sequence[float] | None = None) -> None:
        self.alpha, self.temperature, self.teacher_weights = alpha, temperature, teacher_weights
        self.weights: list[float] | None = None

    def prepare(self, student: Any, teachers: Sequence[Any]) -> dict[str, Any]:
        self.weights = weights_for(self.teacher_weights, len(teachers))
        return {}

    def _weights(self, teachers: int) -> list[float]:
        return self.weights if self.weights is not None else weights_for(self.teacher_weights, teachers)

    def output_loss(self, student_outputs: Any, teacher_outputs: Sequence[Any], batch: Mapping[str, Any], task_loss: Any) -> Any:
        if self.alpha == 0:
            return task_loss
        logits = student_outputs.logits
        teacher = mean_logits([o.logits for o in teacher_outputs], self._weights(len(teacher_outputs)))
        distill = kd_loss(logits, teacher, self.temperature, token_mask(batch, logits))
        return distill if self.alpha == 1 else self.alpha * distill + (1 - self.alpha) * task_loss

    def loss(self, student_outputs: Any, teacher_outputs: Sequence[Any], batch: Mapping[str, Any], task_loss: Any) -> Any:
        return self.output_loss(student_outputs, teacher_outputs, batch, task_loss)


class HiddenDistiller(LogitsDistiller):
    """beta * (hidden-state MSE [+ attention MSE]) over mapped layers, plus the logits loss; projections for other widths."""

    needs_hidden_states = True

    def __init__(self, params: HiddenParams) -> None:
        super().__init__(params.alpha, params.temperature, params.teacher_weights)
        self.beta, self.layer_map, self.needs_attentions = params.beta, params.layer_map, params.attention
        self.maps: list[dict[int, int]] = []
        self.projections: dict[str, Any] = {}

    def prepare(self, student: Any, teachers: Sequence[Any]) -> dict[str, Any]:
        import torch

        super().prepare(student, teachers)
        s_layers, s_width = student.config.num_hidden_layers, student.config.hidden_size
        self.maps, self.projections = [], {}
        for k, teacher in enumerate(teachers):
            t_layers, t_width = teacher.config.num_hidden_layers, teacher.config.hidden_size
            layer_map = dict(self.layer_map) if self.layer_map is not None else uniform_map(s_layers, t_layers)
            for s, t in layer_map.items():
                if not (0 <= s <= s_layers and 0 <= t <= t_layers):
                    raise ValueError(f"layer_map {s}: {t} is out of range: the student has hidden states 0..{s_layers}, "
                                     f"teacher {k} 0..{t_layers} (0 is the embeddings)")
            self.maps.append(layer_map)
            if s_width != t_width:  # TinyBERT's W_h: student width -> teacher width, learned with the student
                self.projections[f"projection{k}"] = torch.nn.Linear(s_width, t_width)
        return dict(self.projections)

    def loss(self, student_outputs: Any, teacher_outputs: Sequence[Any], batch: Mapping[str, Any], task_loss: Any) -> Any:
        if len(self.maps) != len(teacher_outputs):
            raise RuntimeError("HiddenDistiller.prepare(student, teachers) must be called before loss()")
        states = student_outputs.hidden_states
        attention_mask = batch.get("attention_mask")
        mask = (attention_mask if attention_mask is not None else states[0].new_ones(states[0].shape[:2])).to(states[0].device).float()
        matched: Any = 0.0
        for k, (teacher, weight) in enumerate(zip(teacher_outputs, self._weights(len(teacher_outputs)))):
            projection = self.projections.get(f"projection{k}")
            for s, t in self.maps[k].items():
                student_state = projection(states[s]) if projection is not None else states[s]
                term = hidden_mse(student_state, teacher.hidden_states[t], mask)
                if self.needs_attentions and s > 0 and t > 0:  # the embeddings have no attention map
                    term = term + attention_mse(student_outputs.attentions[s - 1], teacher.attentions[t - 1], mask)
                matched = matched + weight * term
        return self.beta * matched + self.output_loss(student_outputs, teacher_outputs, batch, task_loss)


def logits_distiller(params: LogitsParams) -> Distiller:
    """Knowledge distillation on temperature-softened logits, mixed with the task loss (alpha, temperature)."""
    return LogitsDistiller(params.alpha, params.temperature, params.teacher_weights)


def hidden_distiller(params: HiddenParams) -> Distiller:
    """TinyBERT-style hidden-state (and attention) MSE over a layer map, with learned projections across widths."""
    return HiddenDistiller(params)


@hookimpl
def register_distillers(register: Register) -> None:
    register("logits", logits_distiller, LogitsParams, aliases=("kd",))
    register("hidden", hidden_distiller, HiddenParams, aliases=("tinybert",))
