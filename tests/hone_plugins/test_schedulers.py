"""Built-in LR schedulers against known values, built through real plugin discovery."""

from __future__ import annotations

import io
from typing import Any

import pytest
import torch
from pydantic import ValidationError

from hone.plugins import PluginHost, load_plugins


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return load_plugins(allowed={"hone.optimizers", "hone.schedulers"})


def build(host: PluginHost, name: str, params: dict[str, Any], total_steps: int = 100, lr: float = 1.0) -> Any:
    """A scheduler over a fresh SGD optimizer of one parameter with the given peak ``lr``."""
    opt = host.registries.get("optimizer", "sgd").build({"lr": lr}, [torch.zeros(1, requires_grad=True)])
    return host.registries.get("scheduler", name).build(params, opt, total_steps)


def lrs(scheduler: Any, steps: int, metrics: dict[str, float] | None = None) -> list[float]:
    """The lr after each of ``steps`` optimizer + scheduler steps."""
    out = []
    for _ in range(steps):
        scheduler.scheduler.optimizer.step()
        scheduler.step(metrics)
        out.append(scheduler.get_last_lr()[0])
    return out


def test_registered(host: PluginHost) -> None:
    names = {"constant", "linear", "cosine", "step", "exponential", "reduce-on-plateau"}
    assert names <= set(host.registries["scheduler"].names())
    params = {"step": {"step_size": 1}, "exponential": {"gamma": 0.5}}
    intervals = {name: build(host, name, params.get(name, {})).interval for name in names}
    assert intervals == {**dict.fromkeys(names, "step"), "reduce-on-plateau": "eval"}


@pytest.mark.parametrize("warmup", [0.1, 10])
def test_linear_warmup_then_decay(host: PluginHost, warmup: float) -> None:
    sched = build(host, "linear", {"warmup": warmup})
    assert sched.get_last_lr() == [0.0]
    values = lrs(sched, 100)
    assert values[4] == pytest.approx(0.5)  # after 5 steps
    assert values[9] == pytest.approx(1.0) and max(values) == pytest.approx(1.0)
    assert values[54] == pytest.approx(0.5)
    assert values[99] == pytest.approx(0.0)


def test_constant(host: PluginHost) -> None:
    assert lrs(build(host, "constant", {"warmup": 4}), 6) == pytest.approx([0.25, 0.5, 0.75, 1, 1, 1])
    assert lrs(build(host, "constant", {}, lr=0.3), 3) == pytest.approx([0.3] * 3)


def test_cosine(host: PluginHost) -> None:
    values = lrs(build(host, "cosine", {}), 100)
    assert values[49] == pytest.approx(0.5)
    assert values[24] == pytest.approx(0.5 * (1 + 2**-0.5))
    assert values[99] == pytest.approx(0.0, abs=1e-12)
    warm = lrs(build(host, "cosine", {"warmup": 0.1, "min_lr_ratio": 0.1}), 100)
    assert warm[9] == pytest.approx(1.0)
    assert warm[54] == pytest.approx(0.55)
    assert warm[99] == pytest.approx(0.1)


def test_step_and_exponential(host: PluginHost) -> None:
    assert lrs(build(host, "step", {"step_size": 3, "gamma": 0.5}), 6) == pytest.approx([1, 1, 0.5, 0.5, 0.5, 0.25])
    assert lrs(build(host, "exponential", {"gamma": 0.9}), 3) == pytest.approx([0.9, 0.81, 0.729])


def test_reduce_on_plateau(host: PluginHost) -> None:
    sched = build(host, "reduce-on-plateau", {"patience": 2, "factor": 0.5})
    assert sched.interval == "eval"
    # the first value is the best; two more evaluations without improvement are tolerated
    assert lrs(sched, 3, {"loss": 1.0}) == [1.0, 1.0, 1.0]
    assert lrs(sched, 1, {"loss": 1.0}) == [0.5]
    improving = build(host, "reduce-on-plateau", {"monitor": "accuracy", "mode": "max", "patience": 0})
    for value in (0.5, 0.6, 0.7):
        assert lrs(improving, 1, {"accuracy": value, "loss": 9.0}) == [1.0]
    assert lrs(improving, 1, {"accuracy": 0.7}) == [pytest.approx(0.1)]


def test_reduce_on_plateau_missing_metric(host: PluginHost) -> None:
    sched = build(host, "reduce-on-plateau", {"monitor": "f1"})
    with pytest.raises(KeyError) as info:
        sched.step({"loss": 0.3, "accuracy": 0.9})
    assert str(info.value) == (
        "scheduler monitors metric 'f1', which the evaluation did not report. Available: accuracy, loss"
    )
    with pytest.raises(KeyError, match="Available: none"):
        sched.step()


@pytest.mark.parametrize(
    "name, params, metrics",
    [
        ("linear", {"warmup": 0.1}, None),
        ("cosine", {"warmup": 5, "num_cycles": 1.0}, None),
        ("step", {"step_size": 7}, None),
        ("exponential", {"gamma": 0.95}, None),
        ("reduce-on-plateau", {"patience": 1}, {"loss": 2.0}),
    ],
)
def test_state_dict_round_trip(host: PluginHost, name: str, params: dict, metrics: dict | None) -> None:
    first = build(host, name, params)
    lrs(first, 30, metrics)
    saved = io.BytesIO()
    torch.save({"optimizer": first.scheduler.optimizer.state_dict(), "scheduler": first.state_dict()}, saved)
    expected = lrs(first, 40, metrics)

    saved.seek(0)
    state = torch.load(saved, weights_only=True)
    resumed = build(host, name, params)
    resumed.scheduler.optimizer.load_state_dict(state["optimizer"])
    resumed.load_state_dict(state["scheduler"])
    assert lrs(resumed, 40, metrics) == pytest.approx(expected)


@pytest.mark.parametrize("warmup", [1.0, 1.5, -0.1, -1, True])
def test_invalid_warmup(host: PluginHost, warmup: object) -> None:
    with pytest.raises(ValidationError, match="warmup"):
        host.registries.get("scheduler", "linear").params.model_validate({"warmup": warmup})


def test_build_errors(host: PluginHost) -> None:
    with pytest.raises(ValueError, match="exceeds total_steps=100"):
        build(host, "linear", {"warmup": 101})
    with pytest.raises(ValueError, match="needs total_steps >= 1"):
        build(host, "cosine", {}, total_steps=0)
    with pytest.raises(ValidationError, match="step_size"):
        build(host, "step", {})
    with pytest.raises(ValidationError, match="extra"):
        build(host, "reduce-on-plateau", {"metric": "loss"})
