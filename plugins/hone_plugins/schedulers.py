"""Built-in learning-rate schedulers: warmup with constant, linear or cosine decay; step; exponential; plateau."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hone.errors import HoneError
from hone.hookspecs import hookimpl
from hone.registry import Register

if TYPE_CHECKING:
    import torch


class MissingMetricError(HoneError, KeyError):
    """The metric a plateau scheduler monitors is not among the evaluation's results."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class LrScheduler:
    """Adapts a ``torch.optim.lr_scheduler`` scheduler to hone's ``Scheduler`` protocol."""

    def __init__(self, scheduler: Any, interval: Literal["step", "eval"] = "step", monitor: str | None = None) -> None:
        self.scheduler = scheduler
        self.interval = interval
        self.monitor = monitor

    def step(self, metrics: Mapping[str, float] | None = None) -> None:
        if self.monitor is None:
            self.scheduler.step()
            return
        if metrics is None or self.monitor not in metrics:
            available = ", ".join(sorted(metrics or {})) or "none"
            raise MissingMetricError(
                f"scheduler monitors metric '{self.monitor}', which the evaluation did not report. Available: {available}"
            )
        self.scheduler.step(float(metrics[self.monitor]))

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)

    def get_last_lr(self) -> list[float]:
        return [float(lr) for lr in self.scheduler.get_last_lr()]


class WarmupParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    warmup: int | float = Field(
        0, description="Linear warmup from 0: a fraction of total_steps in [0, 1), or a number of steps (int >= 1)."
    )

    @field_validator("warmup", mode="before")
    @classmethod
    def _not_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("warmup must be a fraction in [0, 1) or a number of steps, not a boolean")
        return value

    @field_validator("warmup")
    @classmethod
    def _range(cls, value: int | float) -> int | float:
        if isinstance(value, float) and not 0 <= value < 1:
            raise ValueError(f"a float warmup is a fraction of total_steps in [0, 1), got {value}; give an int for steps")
        if isinstance(value, int) and value < 0:
            raise ValueError(f"warmup steps must be >= 0, got {value}")
        return value

    def warmup_steps(self, total_steps: int) -> int:
        steps = round(self.warmup * total_steps) if isinstance(self.warmup, float) else self.warmup
        if steps > total_steps:
            raise ValueError(f"warmup of {steps} steps exceeds total_steps={total_steps}")
        return steps


class CosineParams(WarmupParams):
    num_cycles: float = Field(0.5, gt=0, description="Cosine waves over the decay; 0.5 goes once from peak to minimum.")
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="Lowest lr as a fraction of the peak lr.")


class StepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step_size: int = Field(gt=0, description="Multiply the lr by gamma every step_size optimizer steps.")
    gamma: float = Field(0.1, gt=0, description="Multiplicative factor of each decay.")


class ExponentialParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gamma: float = Field(gt=0, description="Multiply the lr by gamma after every optimizer step.")


class PlateauParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    monitor: str = Field("loss", min_length=1, description="Evaluation metric to watch.")
    mode: Literal["min", "max"] = Field("min", description="Whether the metric improves by going down or up.")
    factor: float = Field(0.1, gt=0, lt=1, description="Multiply the lr by factor on a plateau.")
    patience: int = Field(3, ge=0, description="Evaluations without improvement before the lr is reduced.")
    threshold: float = Field(1e-4, ge=0, description="Smallest change that counts as an improvement.")
    threshold_mode: Literal["rel", "abs"] = Field("rel", description="Threshold relative to the best value, or absolute.")
    cooldown: int = Field(0, ge=0, description="Evaluations to wait after a reduction before counting again.")
    min_lr: float = Field(0.0, ge=0, description="Lower bound of the lr.")


def _need_steps(name: str, total_steps: int) -> None:
    if total_steps < 1:
        raise ValueError(f"the {name} scheduler needs total_steps >= 1, got {total_steps}")


def _lambda(optimizer: torch.optim.Optimizer, factor: Callable[[int], float]) -> LrScheduler:
    from torch.optim.lr_scheduler import LambdaLR

    return LrScheduler(LambdaLR(optimizer, factor))


def constant(params: WarmupParams, optimizer: torch.optim.Optimizer, total_steps: int) -> LrScheduler:
    """Constant learning rate, after an optional linear warmup."""
    warmup = params.warmup_steps(total_steps)
    return _lambda(optimizer, lambda step: step / warmup if step < warmup else 1.0)


def linear(params: WarmupParams, optimizer: torch.optim.Optimizer, total_steps: int) -> LrScheduler:
    """Linear warmup, then linear decay to 0 at total_steps."""
    _need_steps("linear", total_steps)
    warmup = params.warmup_steps(total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return step / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return _lambda(optimizer, factor)


def cosine(params: CosineParams, optimizer: torch.optim.Optimizer, total_steps: int) -> LrScheduler:
    """Linear warmup, then cosine decay towards min_lr_ratio of the peak lr."""
    _need_steps("cosine", total_steps)
    warmup = params.warmup_steps(total_steps)
    floor, cycles = params.min_lr_ratio, params.num_cycles

    def factor(step: int) -> float:
        if step < warmup:
            return step / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * 2 * cycles * progress))

    return _lambda(optimizer, factor)


def step(params: StepParams, optimizer: torch.optim.Optimizer, total_steps: int) -> LrScheduler:
    """Multiply the learning rate by gamma every step_size optimizer steps."""
    from torch.optim.lr_scheduler import StepLR

    return LrScheduler(StepLR(optimizer, step_size=params.step_size, gamma=params.gamma))


def exponential(params: ExponentialParams, optimizer: torch.optim.Optimizer, total_steps: int) -> LrScheduler:
    """Multiply the learning rate by gamma after every optimizer step."""
    from torch.optim.lr_scheduler import ExponentialLR

    return LrScheduler(ExponentialLR(optimizer, gamma=params.gamma))


def reduce_on_plateau(params: PlateauParams, optimizer: torch.optim.Optimizer, total_steps: int) -> LrScheduler:
    """Reduce the learning rate when an evaluation metric stops improving (stepped per evaluation)."""
    from torch.optim.lr_scheduler import ReduceLROnPlateau

    options = params.model_dump(exclude={"monitor"})
    return LrScheduler(ReduceLROnPlateau(optimizer, **options), interval="eval", monitor=params.monitor)


@hookimpl
def register_schedulers(register: Register) -> None:
    register("constant", constant, WarmupParams)
    register("linear", linear, WarmupParams)
    register("cosine", cosine, CosineParams)
    register("step", step, StepParams)
    register("exponential", exponential, ExponentialParams)
    register("reduce-on-plateau", reduce_on_plateau, PlateauParams)
