"""One registry type for every kind of component: refuses duplicates, suggests names."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

KINDS: tuple[str, ...] = (
    "metric", "optimizer", "scheduler", "compressor", "distiller", "searcher", "pruner", "task", "reader",
    "callback", "stage", "command", "spec_section", "report_section", "runtime", "exporter", "adapter", "model_format",
)
INFO: dict[str, tuple[str, ...]] = {
    "metric": ("results", "scores"),  # results: {result: "max" | "min"} or callable(params); scores: the prediction kinds it fits
    "task": ("default_metrics", "predictions"),  # predictions: its kind ("tags", "labels", "numbers", "texts", "nothing")
    "stage": ("model",),  # "keeps" | "changes" | "replaces" the run's model
    "command": ("arguments",),  # callable(argparse.ArgumentParser) adding the command's options
    "report_section": ("order",),  # where the section goes in a run report (lower first)
    "exporter": ("refuses",),  # {compressor name: why a model it compressed cannot be exported}
}
"""The keywords ``register(...)`` takes beside name, factory, params, aliases and doc, per kind."""
COMMON_INFO = ("requires",)  # any kind: {module, or "a|b" for either, : how to install it}, checked before any work
MODEL_EFFECTS = ("keeps", "changes", "replaces")


class Params(BaseModel):
    """The base of a component's params model: unknown keys are an error."""

    model_config = ConfigDict(extra="forbid")


class NoParams(Params):
    """Params model for components that take no parameters."""


@dataclass(frozen=True)
class Origin:
    """Where a component came from: the plugin (entry point) and its distribution."""

    plugin: str
    distribution: str | None = None
    version: str | None = None
    module: str | None = None

    def describe(self) -> str:
        dist = f"{self.distribution} {self.version or ''}".strip() if self.distribution else "no distribution"
        return f"plugin '{self.plugin}' ({dist})"


@dataclass(frozen=True)
class Component:
    """A named factory of one kind, with the pydantic model of its parameters and what it declares (``info``)."""

    kind: str
    name: str
    factory: Callable[..., Any]
    params: type[BaseModel]
    origin: Origin
    aliases: tuple[str, ...] = ()
    doc: str = ""
    info: Mapping[str, Any] = field(default_factory=dict)

    def build(self, params: BaseModel | Mapping[str, Any] | None = None, *args: Any, **kwargs: Any) -> Any:
        """Validate ``params`` (if given as a mapping) and call the factory."""
        if not isinstance(params, BaseModel):
            params = self.params.model_validate(dict(params or {}))
        return self.factory(params, *args, **kwargs)

    def results(self, params: BaseModel | None = None) -> dict[str, str]:
        """The result names a metric declares, each with ``max`` or ``min`` (which way is better)."""
        declared = self.info.get("results") or {}
        if callable(declared):
            declared = declared(params if params is not None else self.params())
        return dict(declared)


class Register(Protocol):
    """The callable handed to every ``register_*`` hook."""

    def __call__(
        self,
        name: str,
        factory: Callable[..., Any],
        params: type[BaseModel] | None = None,
        *,
        aliases: Sequence[str] = (),
        doc: str | None = None,
        **info: Any,
    ) -> None: ...


class RegistryError(Exception):
    """A component could not be registered or found."""


class UnknownComponentError(RegistryError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def suggest(name: str, choices: Sequence[str]) -> str:
    """``Did you mean 'x'? Available: a, b, c`` for an unknown ``name``."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    available = ", ".join(sorted(choices)) or "none installed"
    return f"{hint} Available: {available}"


def check_info(kind: str, name: str, info: Mapping[str, Any]) -> None:
    """Refuse declarations a kind does not know, and malformed ones."""
    unknown = sorted(set(info) - set(INFO.get(kind, ())) - set(COMMON_INFO))
    if unknown:
        known = ", ".join((*INFO.get(kind, ()), *COMMON_INFO))
        raise RegistryError(f"{kind} '{name}': register() got unknown keyword {', '.join(unknown)} (a {kind} takes: {known})")
    if kind == "spec_section" and not name.isidentifier():
        raise RegistryError(f"spec section '{name}': a section's name is a spec key: letters, digits and '_'")
    if kind == "stage" and info.get("model", "keeps") not in MODEL_EFFECTS:
        raise RegistryError(f"stage '{name}': model={info['model']!r}; use one of {', '.join(MODEL_EFFECTS)}")
    refuses = info.get("refuses")
    if refuses is not None and not (isinstance(refuses, Mapping) and all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in refuses.items())):
        raise RegistryError(f"exporter '{name}': refuses must map compressor names to the reason, got {refuses!r}")
    results = info.get("results")
    if results is not None and not callable(results):
        bad = {k: v for k, v in dict(results).items() if v not in ("max", "min")}
        if bad:
            raise RegistryError(f"metric '{name}': results must map names to 'max' or 'min', got {bad}")


@dataclass
class Registry:
    """Components of one kind, by name and alias."""

    kind: str
    _by_name: dict[str, Component] = field(default_factory=dict)
    _aliases: dict[str, str] = field(default_factory=dict)

    def add(self, component: Component) -> None:
        if component.kind != self.kind:
            raise RegistryError(f"cannot add a {component.kind} to the {self.kind} registry")
        if not callable(component.factory):
            raise RegistryError(f"{self.kind} '{component.name}': factory is not callable")
        if not (isinstance(component.params, type) and issubclass(component.params, BaseModel)):
            raise RegistryError(f"{self.kind} '{component.name}': params must be a pydantic model class")
        check_info(self.kind, component.name, component.info)
        for key in (component.name, *component.aliases):
            if key in self:
                other = self.get(key)
                raise RegistryError(
                    f"Duplicate {self.kind} '{key}': registered by {other.origin.describe()} "
                    f"and by {component.origin.describe()}"
                )
        self._by_name[component.name] = component
        for alias in component.aliases:
            self._aliases[alias] = component.name

    def remove(self, name: str) -> None:
        component = self._by_name.pop(name)
        for alias in component.aliases:
            self._aliases.pop(alias, None)

    def get(self, name: str) -> Component:
        key = self._aliases.get(name, name)
        try:
            return self._by_name[key]
        except KeyError:
            raise UnknownComponentError(f"Unknown {self.kind.replace('_', ' ')} '{name}'.{suggest(name, self.names(True))}") from None

    def names(self, with_aliases: bool = False) -> list[str]:
        names = list(self._by_name)
        return sorted(names + list(self._aliases) if with_aliases else names)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name or name in self._aliases

    def __iter__(self) -> Iterator[Component]:
        return iter(sorted(self._by_name.values(), key=lambda c: c.name))

    def __len__(self) -> int:
        return len(self._by_name)


@dataclass
class Registries:
    """One :class:`Registry` per kind."""

    by_kind: dict[str, Registry] = field(default_factory=lambda: {k: Registry(k) for k in KINDS})
    cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)  # models built from the registries

    def __getitem__(self, kind: str) -> Registry:
        return self.by_kind[kind]

    def get(self, kind: str, name: str) -> Component:
        return self.by_kind[kind].get(name)
