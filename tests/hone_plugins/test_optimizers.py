"""Built-in optimizers, built through real plugin discovery as the engine builds them."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from pydantic import ValidationError

from hone.plugins import PluginHost, load_plugins
from hone.registry import Component


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return load_plugins(allowed={"hone.optimizers", "hone.schedulers"})


def optimizer(host: PluginHost, name: str) -> Component:
    return host.registries.get("optimizer", name)


def one_step(opt: torch.optim.Optimizer, param: torch.Tensor, grad: float = 2.0) -> None:
    """One optimizer step with a constant gradient ``grad`` on every element."""
    opt.zero_grad()
    (param * grad).sum().backward()
    opt.step()


def test_registered(host: PluginHost) -> None:
    assert {"sgd", "adam", "adamw", "adafactor"} <= set(host.registries["optimizer"].names())
    assert optimizer(host, "adamw").doc.startswith("AdamW")


def test_import_does_not_load_torch() -> None:
    code = (
        "import sys, hone_plugins.optimizers, hone_plugins.schedulers; "
        "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_sgd_known_step(host: PluginHost) -> None:
    param = torch.ones(3, requires_grad=True)
    one_step(optimizer(host, "sgd").build({"lr": 0.1}, [param]), param)
    assert torch.allclose(param.detach(), torch.full((3,), 0.8))


def test_sgd_nesterov_step(host: PluginHost) -> None:
    param = torch.ones(1, requires_grad=True)
    one_step(optimizer(host, "sgd").build({"lr": 0.1, "momentum": 0.9, "nesterov": True}, [param]), param)
    # buffer = g = 2; nesterov update g + momentum * buffer = 3.8
    assert param.item() == pytest.approx(1 - 0.1 * 3.8)


def test_nesterov_needs_momentum(host: PluginHost) -> None:
    with pytest.raises(ValidationError, match="nesterov=true requires momentum > 0"):
        optimizer(host, "sgd").build({"nesterov": True}, [torch.ones(1, requires_grad=True)])


def test_adam_first_step_is_lr_times_sign(host: PluginHost) -> None:
    param = torch.ones(2, requires_grad=True)
    one_step(optimizer(host, "adam").build({"lr": 0.1}, [param]), param)
    assert torch.allclose(param.detach(), torch.full((2,), 0.9))


def test_adamw_decoupled_weight_decay(host: PluginHost) -> None:
    param = torch.ones(2, requires_grad=True)
    opt = optimizer(host, "adamw").build({"lr": 0.1}, [param])
    assert opt.param_groups[0]["weight_decay"] == 0.01
    one_step(opt, param)
    assert torch.allclose(param.detach(), torch.full((2,), 1 * (1 - 0.1 * 0.01) - 0.1))


def test_adamw_model_parameters_and_groups(host: PluginHost) -> None:
    model = torch.nn.Linear(4, 2)
    opt = optimizer(host, "adamw").build({"lr": 1e-3}, model.parameters())
    assert isinstance(opt, torch.optim.AdamW) and len(opt.param_groups[0]["params"]) == 2
    groups = [{"params": [model.weight]}, {"params": [model.bias], "weight_decay": 0.0}]
    opt = optimizer(host, "adamw").build({"lr": 1e-3}, groups)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 1e-3]


def test_adafactor_with_external_lr(host: PluginHost) -> None:
    param = torch.ones(4, requires_grad=True)
    opt = optimizer(host, "adafactor").build({"lr": 0.1}, [param])
    one_step(opt, param)
    # first step: update = g / sqrt(g^2) = 1, RMS 1 is not clipped, no parameter scaling
    assert torch.allclose(param.detach(), torch.full((4,), 0.9))


def test_adafactor_relative_step(host: PluginHost) -> None:
    model = torch.nn.Linear(4, 3)
    before = model.weight.detach().clone()
    opt = optimizer(host, "adafactor").build({}, model.parameters())
    assert opt.param_groups[0]["relative_step"] and opt.param_groups[0]["lr"] is None
    opt.zero_grad()
    model(torch.ones(2, 4)).sum().backward()
    opt.step()
    assert not torch.equal(before, model.weight.detach())
    assert torch.isfinite(model.weight).all()


@pytest.mark.parametrize(
    "params, message",
    [
        ({"lr": 1e-3, "relative_step": True}, "lr cannot be set with relative_step=true"),
        ({"relative_step": False}, "relative_step=false requires an lr"),
        ({"lr": 1e-3, "warmup_init": True}, "warmup_init=true requires relative_step=true"),
    ],
)
def test_adafactor_invalid(host: PluginHost, params: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        optimizer(host, "adafactor").params.model_validate(params)


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "adafactor"])
@pytest.mark.parametrize("lr", [0, -1e-3])
def test_lr_must_be_positive(host: PluginHost, name: str, lr: float) -> None:
    with pytest.raises(ValidationError, match="greater than 0"):
        optimizer(host, name).params.model_validate({"lr": lr})


@pytest.mark.parametrize(
    "name, params",
    [("sgd", {"learning_rate": 0.1}), ("adam", {"betas": [0.9, 1.0]}), ("adamw", {"weight_decay": -0.1})],
)
def test_invalid_params(host: PluginHost, name: str, params: dict) -> None:
    with pytest.raises(ValidationError):
        optimizer(host, name).params.model_validate(params)
