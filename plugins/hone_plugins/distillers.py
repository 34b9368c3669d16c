"""Built-in distillers: soft-logit knowledge distillation and TinyBERT-style hidden-state matching.

Both take any number of teachers (multi-teacher): their logits are averaged, or weighted by
``teacher_weights``. torch is imported inside the functions that need it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hone.components import Distiller
from hone.hookspecs import hookimpl
from hone.registry import Register

if TYPE_CHECKING:
    import torch

IGNORE_INDEX = -100


class SoftParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alpha: float = Field(0.5, ge=0, le=1, description="Share of the distillation loss; the task loss gets 1 - alpha.")
    temperature: float = Field(2.0, gt=0, description="Softens both distributions; the divergence is scaled by T^2.")
    teacher_weights: list[float] | None = Field(
        None, min_length=1, description="One weight per teacher (multi-teacher); default: every teacher alike.")

    @field_validator("teacher_weights")
    @classmethod
    def _positive(cls, weights: list[float] | None) -> list[float] | None:
        if weights is not None and (min(weights) < 0 or sum(weights) <= 0):
            raise ValueError("teacher_weights must be non-negative with a positive sum, e.g. [0.7, 0.3]")
        return weights


class LogitsParams(SoftParams):
    loss: Literal["forward-kl", "reverse-kl", "jsd"] = Field(
        "forward-kl", description="forward-kl: KL(teacher || student), mass-covering (Hinton et al.); reverse-kl: "
        "KL(student || teacher), mode-seeking (MiniLLM); jsd: generalised Jensen-Shannon with beta (GKD).")
    beta: float = Field(0.5, gt=0, lt=1, description="jsd only: the teacher's weight in the mixture "
                        "M = beta * teacher + (1 - beta) * student; loss beta * KL(teacher || M) + (1 - beta) * "
                        "KL(student || M). 0.5 is the symmetric Jensen-Shannon divergence.")

    @model_validator(mode="after")
    def _beta_for_jsd(self) -> LogitsParams:
        if "beta" in self.model_fields_set and self.loss != "jsd":
            raise ValueError(f"beta applies only to loss: jsd (the loss is {self.loss}): set loss: jsd or remove beta")
        return self


class HiddenParams(SoftParams):
    alpha: float = Field(0.0, ge=0, le=1, description="Share of the logits loss in the output term; the task loss gets 1 - alpha.")
    temperature: float = Field(1.0, gt=0, description="Temperature of the logits loss (forward KL; when alpha > 0).")
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
    """Positions that count: those whose integer label is not -100 (token tasks: the answer tokens of instruction
    data, a seq2seq target); ``None``: all. With ``batch["_label_shift"]`` (causal LMs: 1) the logits at ``t``
    are scored against ``labels[t + shift]``, so position ``t`` counts where that label does."""
    labels = batch.get("labels")
    if labels is None or labels.is_floating_point() or tuple(labels.shape) != tuple(logits.shape[:-1]):
        return None
    counted = labels.to(logits.device) != IGNORE_INDEX
    shift = int(batch.get("_label_shift", 0) or 0)
    if shift and counted.dim() == 2:
        counted = shifted_left(counted, shift)
    return counted


def shifted_left(counted: torch.Tensor, shift: int) -> torch.Tensor:
    """``counted`` moved ``shift`` positions to the left along its rows, the last ``shift`` positions not counted."""
    import torch

    return torch.cat([counted[:, shift:], counted.new_zeros(counted.shape[0], min(shift, counted.shape[1]))], dim=1)


def divergence(student_log: torch.Tensor, teacher_log: torch.Tensor, loss: str = "forward-kl",
               beta: float = 0.5) -> torch.Tensor:
    """Per-position divergence (summed over the last dimension) between two log-probability distributions."""
    import math

    import torch
    import torch.nn.functional as F

    def kl(p_log: torch.Tensor, q_log: torch.Tensor) -> torch.Tensor:  # KL(p || q)
        return F.kl_div(q_log, p_log, log_target=True, reduction="none").sum(-1)

    if loss == "forward-kl":
        return kl(teacher_log, student_log)
    if loss == "reverse-kl":
        return kl(student_log, teacher_log)
    if loss == "jsd":
        mixture = torch.logsumexp(torch.stack([teacher_log + math.log(beta), student_log + math.log(1 - beta)]), 0)
        return beta * kl(teacher_log, mixture) + (1 - beta) * kl(student_log, mixture)
    raise ValueError(f"unknown distillation loss {loss!r}: forward-kl, reverse-kl or jsd")


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float, mask: torch.Tensor | None = None,
            loss: str = "forward-kl", beta: float = 0.5) -> torch.Tensor:
    """``loss`` (KL(teacher || student) by default) on temperature-softened logits times T^2, averaged over
    counted positions."""
    s, t = student.float(), teacher.float()
    if s.shape != t.shape:
        raise ValueError(f"the student's logits have shape {tuple(s.shape)}, the teacher's {tuple(t.shape)}: their "
                         "heads must predict the same outputs (labels, or a vocabulary of the same size)")
    if s.shape[-1] == 1:  # a single output (regression) has no distribution to soften: match it directly
        per_position = (s - t).pow(2).squeeze(-1)
    else:
        per_position = divergence((s / temperature).log_softmax(-1), (t / temperature).log_softmax(-1), loss, beta)
        per_position = per_position * temperature**2  # T^2 keeps the gradients' scale independent of T (Hinton et al.)
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
    """alpha * T^2 * divergence(teacher, student) + (1 - alpha) * task loss (forward KL unless ``loss`` says)."""

    needs_hidden_states = False
    needs_attentions = False
    compact_logits = True  # reads logits through token_mask: the answer positions' alone, (1, N, vocab), do as well

    def __init__(self, alpha: float, temperature: float, teacher_weights: Sequence[float] | None = None,
                 loss: str = "forward-kl", beta: float = 0.5) -> None:
        self.alpha, self.temperature, self.teacher_weights = alpha, temperature, teacher_weights
        self.divergence, self.jsd_beta = loss, beta
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
        distill = kd_loss(logits, teacher, self.temperature, token_mask(batch, logits), self.divergence, self.jsd_beta)
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
    return LogitsDistiller(params.alpha, params.temperature, params.teacher_weights, params.loss, params.beta)


def hidden_distiller(params: HiddenParams) -> Distiller:
    """TinyBERT-style hidden-state (and attention) MSE over a layer map, with learned projections across widths."""
    return HiddenDistiller(params)


@hookimpl
def register_distillers(register: Register) -> None:
    register("logits", logits_distiller, LogitsParams, aliases=("kd",))
    register("hidden", hidden_distiller, HiddenParams, aliases=("tinybert",))
