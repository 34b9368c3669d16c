from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from hone.registry import KINDS, Component, NoParams, Origin, Registries, Registry, RegistryError, UnknownComponentError

BUILTIN = Origin("optimizers", "hone-ml", "0.1.0", "hone_plugins.optimizers")
THIRD_PARTY = Origin("fancy", "hone-fancy-optim", "2.3.1", "hone_fancy_optim")


class LrParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lr: float = 1e-3


def factory(params: BaseModel, *args: Any, **kwargs: Any) -> tuple[BaseModel, tuple[Any, ...], dict[str, Any]]:
    return params, args, kwargs


def optimizer(name: str, origin: Origin = BUILTIN, aliases: tuple[str, ...] = (), params: Any = LrParams) -> Component:
    return Component("optimizer", name, factory, params, origin, aliases)


@pytest.fixture
def optimizers() -> Registry:
    registry = Registry("optimizer")
    for name in ("sgd", "adam", "adamw", "adafactor"):
        registry.add(optimizer(name))
    return registry


def test_duplicate_name_from_another_distribution_is_refused_naming_both(optimizers: Registry) -> None:
    with pytest.raises(RegistryError) as caught:
        optimizers.add(optimizer("adamw", THIRD_PARTY))
    message = str(caught.value)
    assert "Duplicate optimizer 'adamw'" in message
    assert "plugin 'optimizers' (hone-ml 0.1.0)" in message
    assert "plugin 'fancy' (hone-fancy-optim 2.3.1)" in message


def test_alias_clashing_with_a_name_is_refused_naming_both(optimizers: Registry) -> None:
    with pytest.raises(RegistryError, match=r"Duplicate optimizer 'sgd'.*hone-ml 0\.1\.0.*hone-fancy-optim 2\.3\.1"):
        optimizers.add(optimizer("fancy-sgd", THIRD_PARTY, aliases=("sgd",)))


def test_name_clashing_with_an_alias_is_refused_naming_both(optimizers: Registry) -> None:
    optimizers.add(optimizer("lion", THIRD_PARTY, aliases=("evolved-sign",)))
    with pytest.raises(RegistryError, match=r"Duplicate optimizer 'evolved-sign'.*hone-fancy-optim.*hone-ml"):
        optimizers.add(optimizer("evolved-sign"))


def test_refused_duplicate_leaves_the_first_registration(optimizers: Registry) -> None:
    with pytest.raises(RegistryError):
        optimizers.add(optimizer("fancy", THIRD_PARTY, aliases=("adam",)))
    assert optimizers.get("adam").origin == BUILTIN
    assert "fancy" not in optimizers


def test_component_without_a_distribution_is_described_as_such(optimizers: Registry) -> None:
    local = Origin("my_optim", None, None, "/plugins/my_optim.py")
    with pytest.raises(RegistryError, match=r"plugin 'my_optim' \(no distribution\)"):
        optimizers.add(optimizer("sgd", local))


def test_unknown_name_suggests_the_closest_and_lists_available(optimizers: Registry) -> None:
    with pytest.raises(UnknownComponentError) as caught:
        optimizers.get("adamww")
    assert str(caught.value) == "Unknown optimizer 'adamww'. Did you mean 'adamw'? Available: adafactor, adam, adamw, sgd"


def test_unknown_name_far_from_any_lists_available_without_a_guess(optimizers: Registry) -> None:
    with pytest.raises(UnknownComponentError) as caught:
        optimizers.get("lbfgs")
    assert str(caught.value) == "Unknown optimizer 'lbfgs'. Available: adafactor, adam, adamw, sgd"


def test_unknown_name_in_an_empty_registry_says_none_installed() -> None:
    with pytest.raises(UnknownComponentError, match=r"Unknown compressor 'prune'\. Available: none installed$"):
        Registry("compressor").get("prune")


def test_unknown_component_error_is_a_key_error_with_an_unquoted_message(optimizers: Registry) -> None:
    with pytest.raises(KeyError) as caught:
        optimizers.get("nadam")
    assert not str(caught.value).startswith(("'", '"'))


def test_alias_resolves_to_its_component() -> None:
    registry = Registry("optimizer")
    registry.add(optimizer("adamw", aliases=("adam-w", "decoupled-adam")))
    assert registry.get("adam-w") is registry.get("adamw")
    assert registry.get("decoupled-adam").name == "adamw"
    assert "adam-w" in registry


def test_aliases_are_suggested_and_listed_as_available() -> None:
    registry = Registry("optimizer")
    registry.add(optimizer("adamw", aliases=("decoupled-adam",)))
    with pytest.raises(UnknownComponentError, match=r"Did you mean 'decoupled-adam'\? Available: adamw, decoupled-adam$"):
        registry.get("decoupled-adan")


def test_names_lists_components_and_optionally_aliases() -> None:
    registry = Registry("optimizer")
    registry.add(optimizer("sgd", aliases=("plain-sgd",)))
    registry.add(optimizer("adam"))
    assert registry.names() == ["adam", "sgd"]
    assert registry.names(with_aliases=True) == ["adam", "plain-sgd", "sgd"]
    assert [c.name for c in registry] == ["adam", "sgd"]
    assert len(registry) == 2


def test_remove_forgets_the_name_and_its_aliases() -> None:
    registry = Registry("optimizer")
    registry.add(optimizer("sgd", aliases=("plain-sgd",)))
    registry.remove("sgd")
    assert "sgd" not in registry and "plain-sgd" not in registry
    registry.add(optimizer("plain-sgd", THIRD_PARTY))


@pytest.mark.parametrize("params", [dict, {"lr": 0.1}, LrParams(), None, int])
def test_params_must_be_a_pydantic_model_class(params: Any) -> None:
    with pytest.raises(RegistryError, match="params must be a pydantic model class"):
        Registry("optimizer").add(optimizer("sgd", params=params))


def test_factory_must_be_callable() -> None:
    component = Component("optimizer", "sgd", "torch.optim.SGD", LrParams, BUILTIN)  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match="factory is not callable"):
        Registry("optimizer").add(component)


def test_component_of_another_kind_is_refused() -> None:
    metric = Component("metric", "accuracy", factory, NoParams, BUILTIN)
    with pytest.raises(RegistryError, match="cannot add a metric to the optimizer registry"):
        Registry("optimizer").add(metric)


def test_build_validates_dict_params_then_calls_the_factory(optimizers: Registry) -> None:
    params, args, kwargs = optimizers.get("adamw").build({"lr": 0.5}, ["p1"], total_steps=10)
    assert params == LrParams(lr=0.5)
    assert args == (["p1"],) and kwargs == {"total_steps": 10}


def test_build_uses_defaults_when_no_params_are_given(optimizers: Registry) -> None:
    params, _, _ = optimizers.get("sgd").build()
    assert params == LrParams()


def test_build_rejects_unknown_params(optimizers: Registry) -> None:
    with pytest.raises(ValidationError, match="lrr"):
        optimizers.get("sgd").build({"lrr": 0.1})


def test_no_params_model_refuses_any_parameter() -> None:
    with pytest.raises(ValidationError):
        NoParams.model_validate({"anything": 1})


def test_registries_hold_one_registry_per_kind() -> None:
    registries = Registries()
    assert set(registries.by_kind) == set(KINDS)
    assert all(registries[kind].kind == kind for kind in KINDS)


def test_registries_get_looks_up_by_kind_and_name() -> None:
    registries = Registries()
    registries["optimizer"].add(optimizer("sgd"))
    assert registries.get("optimizer", "sgd").name == "sgd"
    with pytest.raises(UnknownComponentError, match="Unknown metric 'sgd'"):
        registries.get("metric", "sgd")
