"""Checks of a spec's ``search:`` section against the spec and the plugins, before any trial runs."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import Any

import yaml
from pydantic import BaseModel

from hone.registry import Registries
from hone.spec.results import Catalog, ResultError
from hone_plugins.search.space import Components, SearchSpace, SpecPath, apply, format_path, parse_path
from hone.spec.models import AS_WRITTEN, ComponentRef, RunSpec
from hone.spec.loading import SpecError, SpecIssue, _locate, validate_spec


def base_data(spec: RunSpec) -> dict[str, Any]:
    """The spec every trial starts from: every field, paths resolved, no ``search`` section, and component params as
    written (a component whose name a trial samples then takes its own defaults, not the other's)."""
    return spec.model_dump(mode="json", exclude={"search"}, context={AS_WRITTEN: True})


def _unknown(key: Any, known: list[str], where: str) -> str:
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"{where} has no field '{key}'.{hint} Valid fields: {', '.join(sorted(known))}"


def resolve_path(spec: RunSpec, registries: Registries, path: SpecPath) -> Any:
    """The object at ``path`` in the validated spec (None for a plugin parameter left at its default); ``ValueError`` if absent."""
    obj: Any = spec
    for i, key in enumerate(path):
        where = format_path(path[:i]) or "the spec"
        last = i == len(path) - 1
        if isinstance(obj, list):
            if not isinstance(key, int) or not 0 <= key < len(obj):
                raise ValueError(f"{where} has {len(obj)} item{'s' if len(obj) != 1 else ''}; there is no [{key}]")
            obj = obj[key]
        elif isinstance(key, int):
            raise ValueError(f"{where} is not a list; [{key}] cannot index it")
        elif isinstance(obj, ComponentRef):
            params = type(obj.params).model_fields
            if key in ("name", *params):
                obj = obj.name if key == "name" else getattr(obj.params, key)
            else:
                raise ValueError(_unknown(key, ["name", *params], f"{where} ({obj.kind} '{obj.name}')"))
        elif isinstance(obj, BaseModel):
            fields = type(obj).model_fields
            if key not in fields:
                raise ValueError(_unknown(key, list(fields), where))
            obj = getattr(obj, key)
            if obj is None and not last:
                raise ValueError(f"{format_path(path[:i + 1])} is not set in the spec: set it there, then search its fields")
        elif isinstance(obj, dict):
            if key not in obj and not last:
                raise ValueError(f"{where} has no key '{key}'")
            obj = obj.get(key)
        else:
            raise ValueError(f"{where} is a single value ({obj!r}); it has no field '{key}'")
    return obj


def _space_issues(spec: RunSpec, registries: Registries, space: SearchSpace) -> Iterator[tuple[tuple[Any, ...], str]]:
    pickers = [k for k, e in space.entries.items() if isinstance(e, Components)]
    for key, entry in space.entries.items():
        path = parse_path(key)
        outer = next((p for p in pickers if p != key and path[:len(parse_path(p))] == parse_path(p)), None)
        if outer is not None:
            yield (key,), f"{outer} picks the whole component in this space: give this under its `choices` instead"
            continue
        try:
            target = resolve_path(spec, registries, path)
        except ValueError as error:
            yield (key,), str(error)
            continue
        if not isinstance(entry, Components):
            continue
        if not isinstance(target, ComponentRef):
            yield (key, "choices"), f"`choices` picks a component (a {{name: ...}} field such as an optimizer); {key} is not one"
            continue
        registry = registries[target.kind]
        for name, branch in entry.branches.items():
            if name not in registry:
                yield (key, "choices", name), _missing(registries, target.kind, name)
                continue
            fields = list(registry.get(name).params.model_fields)
            for sub in [*branch.fixed, *branch.dims]:
                if sub[0] not in fields:
                    yield (key, "choices", name, format_path(sub)), _unknown(sub[0], fields, f"{target.kind} '{name}'")


def _missing(registries: Registries, kind: str, name: str) -> str:
    try:
        registries.get(kind, name)
    except KeyError as error:
        return str(error)
    return ""


def _entries_for(space: SearchSpace, issue_path: str) -> list[str]:
    """The space entries a sampled spec's problem comes from: the entry it lies under, else those under its nearest parent."""
    def under(inner: str, outer: str) -> bool:
        return not outer or inner == outer or inner.startswith((outer + ".", outer + "["))

    paths = {k: format_path(parse_path(k)) for k in space.entries}
    inside = [k for k, p in paths.items() if under(issue_path, p)]
    if inside:
        return [max(inside, key=len)]
    parent = issue_path
    while True:
        found = [k for k, p in paths.items() if under(p, parent)]
        if found or not parent:
            return found
        parent = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", parent) if re.search(r"[.\[]", parent) else ""


def _sampled_issues(data: dict[str, Any], registries: Registries, space: SearchSpace) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Validate the spec at the space's corners (every choice, each range's ends): each must still be a valid spec."""
    seen: set[tuple[str, str]] = set()
    for settings in space.corners():
        try:
            validate_spec(apply(data, settings), registries, "<sampled>")
        except SpecError as error:
            for issue in error.issues:
                if (issue.path, issue.message) in seen:
                    continue
                seen.add((issue.path, issue.message))
                keys = _entries_for(space, issue.path)
                shown = [parse_path(k) for k in keys] or list(settings)
                values = ", ".join(f"{format_path(k)} = {settings[k]!r}" for k in shown)
                yield (keys[0],) if keys else (), f"with {values}, the spec is invalid: {issue.path}: {issue.message}"


def search_issues(spec: RunSpec, registries: Registries, sampler_error: str | None = None) -> list[tuple[tuple[Any, ...], str]]:
    """Every problem of ``spec.search``, each with its location under ``search``."""
    search = spec.search
    if search is None:
        return [((), "the spec has no `search:` section (searcher, objectives, space)")]
    issues: list[tuple[tuple[Any, ...], str]] = []
    catalog = Catalog(registries, spec.task)
    for index, objective in enumerate(search.objectives):
        try:
            objective.resolve(catalog, spec)
        except ResultError as error:
            issues.append((("objectives", index), str(error)))
    space = search.parsed_space()
    issues += [(("space", *loc), message) for loc, message in _space_issues(spec, registries, space)]
    if sampler_error:
        issues.append((("searcher",), sampler_error))
    if not issues:
        issues += [(("space", *loc), message) for loc, message in _sampled_issues(base_data(spec), registries, space)]
    return issues


def raise_search_issues(file: str, data: Any, nodes: yaml.Node | None, issues: list[tuple[tuple[Any, ...], str]]) -> None:
    """Report ``issues`` as :class:`SpecError`, in the style of every spec problem: path, line, message."""
    if not issues:
        return
    located = []
    for loc, message in issues:
        path, line = _locate(data, nodes, ("search", *loc))
        located.append(SpecIssue(path, message, line))
    raise SpecError(file, sorted(located, key=lambda issue: issue.line or 0))
