"""The dimensions of a search space: float and integer ranges and choices, each sampled through an Optuna-like trial."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

SCALARS = (str, int, float, bool, type(None))


class Trial(Protocol):
    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False) -> float: ...
    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...
    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class Float:
    low: float
    high: float
    log: bool = False
    step: float | None = None

    def suggest(self, trial: Trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)

    def grid(self) -> list[float] | None:
        if self.step is None:
            return None
        count = round((self.high - self.low) / self.step)
        return [round(self.low + i * self.step, 12) for i in range(count + 1)]

    def corners(self) -> list[float]:
        return [self.low, self.high]


@dataclass(frozen=True)
class Int:
    low: int
    high: int
    log: bool = False
    step: int = 1

    def suggest(self, trial: Trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log)

    def grid(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))

    def corners(self) -> list[int]:
        return [self.low, self.high]


def encode(value: Any) -> Any:
    """Optuna stores only scalar choices: lists and mappings travel as JSON text."""
    return value if isinstance(value, SCALARS) else json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]

    @property
    def encoded(self) -> list[Any]:
        return [encode(v) for v in self.values]

    def suggest(self, trial: Trial, name: str) -> Any:
        picked = trial.suggest_categorical(name, self.encoded)
        return self.values[self.encoded.index(picked)]

    def grid(self) -> list[Any]:
        return self.encoded

    def corners(self) -> list[Any]:
        return list(self.values)


Dimension = Float | Int | Choice
