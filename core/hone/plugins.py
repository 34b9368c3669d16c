"""Plugin discovery: entry points (via stevedore) and plain ``.py`` files, failures isolated."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import sys
import traceback
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy
from pydantic import BaseModel

from hone import hookspecs
from hone.errors import describe
from hone.host import LOCAL_PACKAGE, PluginHost, PluginInfo
from hone.registry import KINDS, Component, NoParams, Registries, RegistryError, check_info

ENTRY_POINT_GROUP = "hone.plugins"
DISABLE_ENV = "HONE_DISABLE_PLUGINS"
ALLOW_ENV = "HONE_ALLOW_PLUGINS"
PLUGINS_DIR_ENV = "HONE_PLUGINS_DIR"
BUILTIN_DISTRIBUTION = "hone-ml"
HOOKS: dict[str, str] = {kind: f"register_{kind}s" for kind in KINDS}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


class PluginLoadWarning(UserWarning):
    """A plugin could not be loaded or registered; the rest of hone still works."""


def _split_env(value: str | None) -> set[str]:
    return {part.strip() for part in (value or "").split(",") if part.strip()}


def _entry_points() -> list[tuple[importlib.metadata.EntryPoint, str | None, str | None]]:
    """Every ``hone.plugins`` entry point with its distribution and version, once each."""
    found: dict[tuple[str, str], tuple[importlib.metadata.EntryPoint, str | None, str | None]] = {}
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points.select(group=ENTRY_POINT_GROUP):
            # an editable install can list the same distribution twice: keep one
            found.setdefault((ep.name, ep.value), (ep, dist.metadata["Name"], dist.version))
    return sorted(found.values(), key=lambda item: (item[1] != BUILTIN_DISTRIBUTION, item[0].name))


def _describe_error(error: BaseException) -> str:
    return str(error) if isinstance(error, _HookFailed) else describe(error, first_line=False)


class _HookFailed(Exception):
    """A plugin's registration hook raised; the message names the hook and the plugin's line."""


def _raised_at(error: BaseException, function: Callable[..., Any]) -> str:
    """``file:line`` of the deepest frame of ``error`` in the hook's own file (where the plugin raised, or called
    ``register`` with what it refused), else the deepest frame."""
    frames = traceback.extract_tb(error.__traceback__)
    own = [f for f in frames if f.filename == function.__code__.co_filename]
    frame = (own or frames)[-1]
    return f"{frame.filename}:{frame.lineno}"


def _entry_point_plugins(
    disabled: set[str], allowed: set[str] | None
) -> Iterable[tuple[PluginInfo, ModuleType | None]]:
    from stevedore import NamedExtensionManager

    listed: list[PluginInfo] = []
    infos: dict[str, PluginInfo] = {}  # the enabled plugins by entry-point name
    entry_points: dict[str, importlib.metadata.EntryPoint] = {}
    for ep, dist, version in _entry_points():
        info = PluginInfo(ep.name, ep.value, "entry-point", dist, version)
        listed.append(info)
        # disabled first: a plugin whose name clashes can still be switched off, and is then listed disabled
        if ep.name in disabled or (dist or "") in disabled:
            info.status = "disabled"
        elif allowed is not None and ep.name not in allowed and (dist or "") not in allowed:
            info.status, info.error = "disabled", f"not in {ALLOW_ENV}"
        elif ep.name in infos:
            info.status, info.error = "failed", f"entry point name '{ep.name}' is also used by {infos[ep.name].distribution}"
        else:
            entry_points[ep.name], infos[ep.name] = ep, info

    def on_failure(_manager: Any, ep: importlib.metadata.EntryPoint, error: BaseException) -> None:
        infos[ep.name].status, infos[ep.name].error = "failed", _describe_error(error)

    # Only enabled names are imported, so a broken plugin can be switched off without running it. stevedore loads
    # every entry point of a name, so a name two distributions use is loaded below from the enabled one only.
    shared = {name for name in entry_points if sum(info.name == name for info in listed) > 1}
    manager = NamedExtensionManager(
        ENTRY_POINT_GROUP,
        names=[name for name in entry_points if name not in shared],
        name_order=True,
        on_load_failure_callback=on_failure,
        on_missing_entrypoints_callback=lambda names: None,
    )
    modules: dict[str, ModuleType] = {ext.name: ext.plugin for ext in manager.extensions}
    for name, ep in entry_points.items():
        # stevedore's scan cache can lag a fresh install by ~2 minutes; load what it missed
        if name not in modules and infos[name].status == "ok":
            try:
                modules[name] = ep.load()
            except Exception as error:  # a broken plugin must not take the host down
                on_failure(None, ep, error)
    for info in listed:
        yield info, modules.get(info.name) if infos.get(info.name) is info else None


def _directory_plugins(
    directory: Path, disabled: set[str], allowed: set[str] | None = None
) -> Iterable[tuple[PluginInfo, ModuleType | None]]:
    try:
        found = directory.is_dir()
    except (OSError, ValueError) as error:  # a name too long, a NUL byte
        found, reason = False, f"plugins directory unusable ({_describe_error(error)}): {directory}"
    else:
        reason = f"plugins directory not found: {directory}"
    if not found:
        info = PluginInfo(str(directory), str(directory), "plugins-dir", status="failed")
        info.error = reason
        yield info, None
        return
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        info = PluginInfo(path.stem, str(path), f"plugins-dir:{directory}")
        if path.stem in disabled:
            info.status = "disabled"
            yield info, None
            continue
        if allowed is not None and path.stem not in allowed:
            info.status, info.error = "disabled", f"not in {ALLOW_ENV}"
            yield info, None
            continue
        module_name = f"{LOCAL_PACKAGE}.{path.stem}"
        try:
            spec = importlib.util.spec_from_file_location(module_name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        except Exception as error:
            sys.modules.pop(module_name, None)
            info.status, info.error = "failed", _describe_error(error)
            yield info, None
        else:
            yield info, module


def _resolved(directory: Path) -> Path:
    """``directory`` made absolute; as given if it cannot be (a NUL byte, a name too long: reported later)."""
    try:
        return directory.resolve()
    except (OSError, ValueError):
        return directory


def _collector(kind: str, info: PluginInfo, staged: list[Component]) -> Callable[..., None]:
    """The ``register`` callable handed to one plugin's ``register_<kind>s`` hook."""

    def register(
        name: str,
        factory: Callable[..., Any],
        params: type[BaseModel] | None = None,
        *,
        aliases: Sequence[str] = (),
        doc: str | None = None,
        **declared: Any,
    ) -> None:
        for key in (name, *aliases):
            if not isinstance(key, str) or not _NAME.match(key):
                raise RegistryError(f"invalid {kind} name {key!r}: use lower-case letters, digits, '-', '_' or '.'")
        check_info(kind, name, declared)
        staged.append(
            Component(
                kind=kind,
                name=name,
                factory=factory,
                params=params or NoParams,
                origin=info.origin,
                aliases=tuple(aliases),
                doc=((doc or factory.__doc__ or "").strip().splitlines() or [""])[0],
                info=declared,
            )
        )

    return register


def _register_plugin(manager: pluggy.PluginManager, registries: Registries, info: PluginInfo, module: ModuleType) -> None:
    """Register one plugin module; on any error the plugin contributes nothing."""
    key = f"{info.distribution or info.source}:{info.name}"
    staged: list[Component] = []
    try:
        manager.register(module, name=key)
        for kind, hook_name in HOOKS.items():
            for impl in getattr(manager.hook, hook_name).get_hookimpls():
                if impl.plugin_name == key:
                    try:
                        impl.function(register=_collector(kind, info, staged))
                    except Exception as error:
                        raise _HookFailed(f"{hook_name} failed at {_raised_at(error, impl.function)}: "
                                          f"{_describe_error(error)}") from error
        added: list[Component] = []
        try:
            for component in staged:
                registries[component.kind].add(component)
                added.append(component)
        except RegistryError:
            for component in added:
                registries[component.kind].remove(component.name)
            raise
    except Exception as error:
        if manager.is_registered(module):
            manager.unregister(module)
        info.status, info.error = "failed", _describe_error(error)
        return
    for component in staged:
        info.components.setdefault(component.kind, []).append(component.name)


def load_plugins(
    plugins_dirs: Sequence[str | Path] = (),
    *,
    disabled: Iterable[str] | None = None,
    allowed: Iterable[str] | None = None,
    entry_points: bool = True,
    warn: bool = True,
) -> PluginHost:
    """Discover, import and register every plugin; report failures instead of raising.

    ``disabled`` defaults to ``$HONE_DISABLE_PLUGINS``, ``allowed`` to ``$HONE_ALLOW_PLUGINS``
    (unset: all), and ``$HONE_PLUGINS_DIR`` (``os.pathsep``-separated) adds plugin directories.
    """
    disabled_set = set(disabled) if disabled is not None else _split_env(os.environ.get(DISABLE_ENV))
    allowed_set = set(allowed) if allowed is not None else (_split_env(os.environ.get(ALLOW_ENV)) or None)
    directories = [Path(d) for d in plugins_dirs]
    directories += [Path(d) for d in os.environ.get(PLUGINS_DIR_ENV, "").split(os.pathsep) if d]

    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    registries = Registries()
    plugins: list[PluginInfo] = []
    sources: list[Iterable[tuple[PluginInfo, ModuleType | None]]] = []
    if entry_points:
        sources.append(_entry_point_plugins(disabled_set, allowed_set))
    # resolved, so one folder named twice (relative and absolute) is not loaded twice
    sources += [_directory_plugins(d, disabled_set, allowed_set) for d in dict.fromkeys(_resolved(d) for d in directories)]
    for source in sources:
        for info, module in source:
            if module is not None:
                _register_plugin(manager, registries, info, module)
            plugins.append(info)
    host = PluginHost(registries, plugins, manager)
    if warn:
        for info in host.failures():
            where = f"{info.distribution} {info.version}" if info.distribution else info.source
            warnings.warn(
                f"hone plugin '{info.name}' ({where}, {info.module}) was not loaded: {info.error}",
                PluginLoadWarning,
                stacklevel=2,
            )
    return host
