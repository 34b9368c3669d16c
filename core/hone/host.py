"""The loaded plugins, the registries they filled, and the one way to build a component."""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import pluggy

from hone.errors import ComponentError, HoneError
from hone.registry import Origin, Registries

LOCAL_PACKAGE = "hone_local_plugins"  # plugins-dir modules are imported as hone_local_plugins.<file stem>


@dataclass
class PluginInfo:
    """What ``hone plugins`` reports about one plugin."""

    name: str
    module: str
    source: str
    distribution: str | None = None
    version: str | None = None
    status: str = "ok"  # ok | failed | disabled
    error: str | None = None
    components: dict[str, list[str]] = field(default_factory=dict)

    @property
    def origin(self) -> Origin:
        return Origin(self.name, self.distribution, self.version, self.module)

    def as_dict(self) -> dict[str, Any]:
        """A row of ``hone plugins --json``: every field, and ``kind``, the kinds of component it registered."""
        return {"name": self.name, "kind": sorted(self.components), **asdict(self)}


@dataclass
class PluginHost:
    """The loaded plugins and the registries they filled."""

    registries: Registries
    plugins: list[PluginInfo]
    manager: pluggy.PluginManager

    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.status == "failed"]

    def describe(self, kind: str, name: str) -> str | None:
        """Where a component comes from: ``plugin 'x' (dist 1.0)``, plus the file for plugins-dir modules."""
        try:
            origin = self.registries.get(kind, name).origin
        except KeyError:
            return None
        return origin.describe() if origin.distribution else f"{origin.describe()} in {origin.module}"

    def build(self, kind: str, ref: Any, *args: Any, **kwargs: Any) -> Any:
        """Build a component from a spec reference (a ``ComponentRef``, a stage's spec), a name,
        ``{name: ..., <param>: ...}`` or ``(name, params)``; an error names the component, its plugin and its distribution."""
        name, params = reference(kind, ref)
        component = self.registries.get(kind, name)
        try:
            return component.build(params, *args, **kwargs)
        except HoneError:
            raise
        except ValueError as error:  # the plugin's own word on what it was given (documented: raise ValueError with the fix)
            raise ComponentError(f"{kind} '{name}' from {self.describe(kind, name)}: {error}") from error
        except Exception as error:
            raise ComponentError(f"{kind} '{name}' from {self.describe(kind, name)} failed: {type(error).__name__}: {error}") from error

    def blame(self, error: BaseException) -> str | None:
        """The plugin whose code raised ``error`` (innermost frame first), with file and line; None for hone's own code."""
        modules: dict[str, PluginInfo] = {}
        for info in self.plugins:
            if info.status == "ok":
                key = info.module.split(":")[0] if info.source == "entry-point" else f"{LOCAL_PACKAGE}.{info.name}"
                modules[key] = info
        for frame, line in reversed(list(traceback.walk_tb(error.__traceback__))):
            module = str(frame.f_globals.get("__name__", ""))
            info = next((i for m, i in modules.items() if module == m or module.startswith(m + ".")), None)
            if info is not None:
                where = f"{info.distribution} {info.version}" if info.distribution else info.module
                return f"plugin '{info.name}' ({where}), {frame.f_code.co_filename}:{line} in {frame.f_code.co_name}"
        return None




def reference(kind: str, ref: Any) -> tuple[str, Any]:
    """(name, params) of a reference to a component: params validated already, a mapping, or None."""
    if isinstance(ref, str):
        return ref, None
    if isinstance(ref, tuple):
        return ref
    if isinstance(ref, Mapping):
        return str(ref.get("name")), {k: v for k, v in ref.items() if k != "name"}
    if kind == "stage":
        return ref.type, ref
    return ref.name, ref.params
