"""One registry type for every kind of component: refuses duplicates, suggests names."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

KINDS: tuple[str, ...] = (
    "metric",
    "optimizer",
    "scheduler",
    "compressor",
    "distiller",
    "searcher",
    "task",
    "reader",
    "callback",
)


class NoParams(BaseModel):
    """Params model for components that take no parameters."""

    model_config = ConfigDict(extra="forbid")


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
    """A named factory of one kind, with the pydantic model of its parameters."""

    kind: str
    name: str
    factory: Callable[..., Any]
    params: type[BaseModel]
    origin: Origin
    aliases: tuple[str, ...] = ()
    doc: str = ""

    def build(self, params: BaseModel | dict[str, Any] | None = None, *args: Any, **kwargs: Any) -> Any:
        """Validate ``params`` (if given as a dict) and call the factory."""
        if not isinstance(params, BaseModel):
            params = self.params.model_validate(params or {})
        return self.factory(params, *args, **kwargs)


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
            raise UnknownComponentError(f"Unknown {self.kind} '{name}'.{suggest(name, self.names(True))}") from None

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

    def __getitem__(self, kind: str) -> Registry:
        return self.by_kind[kind]

    def get(self, kind: str, name: str) -> Component:
        return self.by_kind[kind].get(name)
