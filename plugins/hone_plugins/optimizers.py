"""Built-in optimizers: SGD, Adam, AdamW (torch) and Adafactor (transformers)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hone.hookspecs import hookimpl
from hone.registry import Register

if TYPE_CHECKING:
    import torch

ParamGroups = Iterable[Any]
"""Tensors, or torch param-group dicts (``{"params": [...], "lr": ...}``)."""

Beta = Annotated[float, Field(ge=0, lt=1)]
Positive = Annotated[float, Field(gt=0)]
LR = Field(1e-3, gt=0, description="Learning rate.")
WEIGHT_DECAY = Field(0.0, ge=0, description="L2 penalty (SGD, Adam) or decoupled weight decay (AdamW).")


class SgdParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lr: float = LR
    momentum: float = Field(0.0, ge=0, description="Momentum factor; 0 disables momentum.")
    nesterov: bool = Field(False, description="Nesterov momentum (needs momentum > 0 and dampening = 0).")
    weight_decay: float = WEIGHT_DECAY
    dampening: float = Field(0.0, ge=0, description="Dampening for momentum.")

    @model_validator(mode="after")
    def _nesterov(self) -> SgdParams:
        if self.nesterov and self.momentum <= 0:
            raise ValueError(f"nesterov=true requires momentum > 0 (got momentum={self.momentum})")
        if self.nesterov and self.dampening != 0:
            raise ValueError(f"nesterov=true requires dampening = 0 (got dampening={self.dampening})")
        return self


class AdamParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lr: float = LR
    betas: tuple[Beta, Beta] = Field((0.9, 0.999), description="Decay rates of the first and second moments, each in [0, 1).")
    eps: float = Field(1e-8, gt=0, description="Added to the denominator for numerical stability.")
    weight_decay: float = WEIGHT_DECAY
    fused: bool | None = Field(
        None, description="Fused kernel; None: fused when every parameter is a float tensor on CPU or CUDA."
    )


class AdamWParams(AdamParams):
    weight_decay: float = Field(0.01, ge=0, description="Decoupled weight decay.")


class AdafactorParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lr: float | None = Field(None, gt=0, description="External learning rate; None uses Adafactor's relative step size.")
    relative_step: bool | None = Field(None, description="Time-dependent learning rate; default: true when lr is unset.")
    scale_parameter: bool | None = Field(None, description="Scale the step by the parameter's RMS; default: same as relative_step.")
    warmup_init: bool = Field(False, description="Warm the relative step size up from 1e-6 (needs relative_step).")
    clip_threshold: float = Field(1.0, gt=0, description="Clip the update's RMS to this value.")
    decay_rate: float = Field(-0.8, lt=0, description="Exponent of the second-moment running average's decay.")
    beta1: Beta | None = Field(None, description="First-moment decay; None keeps no first moment (saves memory).")
    eps: tuple[Positive, Positive] = Field((1e-30, 1e-3), description="Regularisation of the squared gradient and of the parameter scale.")
    weight_decay: float = WEIGHT_DECAY

    @model_validator(mode="after")
    def _step_size(self) -> AdafactorParams:
        if self.relative_step is None:
            self.relative_step = self.lr is None
        if self.scale_parameter is None:
            self.scale_parameter = self.relative_step
        if self.relative_step and self.lr is not None:
            raise ValueError("lr cannot be set with relative_step=true: unset lr or set relative_step=false")
        if not self.relative_step and self.lr is None:
            raise ValueError("relative_step=false requires an lr")
        if self.warmup_init and not self.relative_step:
            raise ValueError("warmup_init=true requires relative_step=true")
        return self


def sgd(params: SgdParams, param_groups: ParamGroups) -> torch.optim.Optimizer:
    """Stochastic gradient descent, with optional (Nesterov) momentum."""
    import torch

    return torch.optim.SGD(param_groups, **params.model_dump())


def _with_fused(params: AdamParams, param_groups: ParamGroups) -> tuple[list[Any], dict[str, Any]]:
    """Resolve ``fused=None``: the fused kernel is ~4x faster per step on CPU (measured on MiniLM)."""
    groups = list(param_groups)
    options = params.model_dump()
    if options["fused"] is None:
        tensors = [p for g in groups for p in (g["params"] if isinstance(g, dict) else [g])]
        options["fused"] = bool(tensors) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in tensors)
    return groups, options


def adam(params: AdamParams, param_groups: ParamGroups) -> torch.optim.Optimizer:
    """Adam (weight decay as an L2 penalty)."""
    import torch

    groups, options = _with_fused(params, param_groups)
    return torch.optim.Adam(groups, **options)


def adamw(params: AdamWParams, param_groups: ParamGroups) -> torch.optim.Optimizer:
    """AdamW: Adam with decoupled weight decay (the usual choice for fine-tuning)."""
    import torch

    groups, options = _with_fused(params, param_groups)
    return torch.optim.AdamW(groups, **options)


def adafactor(params: AdafactorParams, param_groups: ParamGroups) -> torch.optim.Optimizer:
    """Adafactor: memory-light factored second moments (transformers' implementation)."""
    from transformers.optimization import Adafactor

    return Adafactor(param_groups, **params.model_dump())


@hookimpl
def register_optimizers(register: Register) -> None:
    register("sgd", sgd, SgdParams)
    register("adam", adam, AdamParams)
    register("adamw", adamw, AdamWParams)
    register("adafactor", adafactor, AdafactorParams)
