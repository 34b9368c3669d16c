"""A search space over spec paths: parsing, sampling through an Optuna trial, grids and corner points.

Nothing here imports Optuna: a trial is anything with ``suggest_float/int/categorical``.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hone_plugins.search.dimensions import Choice, Dimension, Float, Int, Trial, encode

SpecPath = tuple[str | int, ...]
_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_\-]*)((?:\[\d+\])*)")


class SpaceError(ValueError):
    """One entry of a space is malformed; ``loc`` is where inside the entry."""

    def __init__(self, message: str, loc: tuple[Any, ...] = ()) -> None:
        super().__init__(message)
        self.loc = loc


def parse_path(text: str) -> SpecPath:
    """``stages[0].optimizer.lr`` -> ``('stages', 0, 'optimizer', 'lr')``."""
    if not isinstance(text, str) or not text:
        raise SpaceError("a space key must be a spec path such as stages[0].optimizer.lr")
    path: list[str | int] = []
    for segment in text.split("."):
        match = _SEGMENT.fullmatch(segment)
        if match is None:
            raise SpaceError(f"'{text}' is not a spec path (use names and [index], e.g. stages[0].optimizer.lr)")
        path.append(match.group(1))
        path += [int(i) for i in re.findall(r"\[(\d+)\]", match.group(2))]
    return tuple(path)


def format_path(path: SpecPath) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(path))


def _number(value: Any, what: str, loc: tuple[Any, ...]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpaceError(f"{what} must be a finite number, got {value!r}", loc)
    return float(value)


@dataclass(frozen=True)
class Branch:
    """One choice of a component: fixed params and searched params (relative paths)."""

    fixed: dict[SpecPath, Any] = field(default_factory=dict)
    dims: dict[SpecPath, Dimension] = field(default_factory=dict)


@dataclass(frozen=True)
class Components:
    """A component chosen among plugin names, each with its own (conditional) parameters."""

    branches: dict[str, Branch]


Entry = Float | Int | Choice | Components
RANGE_KEYS = {"uniform", "loguniform", "int"}
ENTRY_KEYS = RANGE_KEYS | {"choice", "choices"}


def parse_entry(value: Any, nested: bool = False) -> Entry:
    """One space entry: ``[a, b]``, ``{choice: [...]}``, ``{uniform|loguniform|int: [lo, hi], step?, log?}``, ``{choices: {...}}``."""
    if isinstance(value, list):
        return _choice(value, ())
    if not isinstance(value, Mapping):
        raise SpaceError(f"expected a list of values or a mapping with one of {', '.join(sorted(ENTRY_KEYS))}; got {value!r}")
    kinds = [k for k in value if k in ENTRY_KEYS]
    if len(kinds) != 1:
        found = f"got {', '.join(map(str, value)) or 'nothing'}"
        raise SpaceError(f"give exactly one of {', '.join(sorted(ENTRY_KEYS))} ({found}){_close(value, ENTRY_KEYS)}")
    kind, allowed = kinds[0], {"step", "log"} if kinds[0] in RANGE_KEYS else set()
    if extra := sorted(map(str, set(value) - {kind} - allowed)):
        raise SpaceError(f"unknown key{'s' if len(extra) > 1 else ''} {', '.join(extra)} beside '{kind}'{_close(extra, allowed)}",
                         (extra[0],))
    if kind == "choice":
        if not isinstance(value[kind], list):
            raise SpaceError("`choice` takes a list of values", (kind,))
        return _choice(value[kind], (kind,))
    if kind == "choices":
        if nested:
            raise SpaceError("`choices` cannot be nested inside another choice's parameters", (kind,))
        return _components(value[kind])
    return _range(kind, value)


def _close(keys: Any, valid: set[str]) -> str:
    """``. Did you mean 'x'?`` for the first of ``keys`` close to a ``valid`` one; ``''`` where none is."""
    return next((f". Did you mean '{m[0]}'?" for k in sorted(map(str, keys)) if (m := difflib.get_close_matches(k, sorted(valid), 1))), "")


def _choice(values: list[Any], loc: tuple[Any, ...]) -> Choice:
    if not values:
        raise SpaceError("a choice needs at least one value", loc)
    encoded = [encode(v) for v in values]
    duplicates = sorted({repr(v) for v in encoded if encoded.count(v) > 1})
    if duplicates:
        raise SpaceError(f"duplicate choice {', '.join(duplicates)}", loc)
    return Choice(tuple(values))


def _range(kind: str, value: Mapping[str, Any]) -> Float | Int:
    bounds = value[kind]
    if not (isinstance(bounds, list) and len(bounds) == 2):
        raise SpaceError(f"`{kind}` takes [low, high], got {bounds!r}", (kind,))
    low, high = (_number(b, n, (kind, i)) for i, (b, n) in enumerate(zip(bounds, ("low", "high"))))
    if not low < high:
        raise SpaceError(f"low ({bounds[0]}) must be below high ({bounds[1]})", (kind,))
    if not isinstance(value.get("log", False), bool):
        raise SpaceError("`log` is true or false", ("log",))
    log = kind == "loguniform" or value.get("log", False)
    if log and low <= 0:
        raise SpaceError(f"a log scale needs low > 0, got {bounds[0]}", (kind, 0))
    step = value.get("step")
    if kind == "int":
        if not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds):
            raise SpaceError(f"`int` bounds must be integers, got {bounds!r}", (kind,))
        if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 1):
            raise SpaceError(f"`step` of an int range is a positive integer, got {step!r}", ("step",))
        if log and step not in (None, 1):
            raise SpaceError("a log-scaled int range takes no step", ("step",))
        if step is not None and (bounds[1] - bounds[0]) % step:
            raise SpaceError(f"high - low ({bounds[1] - bounds[0]}) must be a multiple of step ({step})", ("step",))
        return Int(bounds[0], bounds[1], log, step or 1)
    if step is not None:
        step = _number(step, "step", ("step",))
        if step <= 0 or log:
            raise SpaceError("`step` must be > 0 and cannot be combined with a log scale", ("step",))
        count = (high - low) / step
        if abs(count - round(count)) > 1e-9 * max(1.0, count):
            raise SpaceError(f"high - low ({high - low:g}) must be a multiple of step ({step:g})", ("step",))
    return Float(low, high, log, step)


def _components(value: Any) -> Components:
    if not isinstance(value, Mapping) or not value:
        raise SpaceError("`choices` maps component names to their parameters, e.g. {adamw: {lr: {loguniform: [1e-5, 1e-3]}}, sgd: null}",
                         ("choices",))
    branches: dict[str, Branch] = {}
    for name, params in value.items():
        loc = ("choices", name)
        if not isinstance(name, str):
            raise SpaceError(f"a component name is text, got {name!r}", loc)
        if params is None:
            branches[name] = Branch()
            continue
        if not isinstance(params, Mapping):
            raise SpaceError("a choice's parameters are a mapping of parameter to value or range (or null)", loc)
        fixed: dict[SpecPath, Any] = {}
        dims: dict[SpecPath, Dimension] = {}
        for key, setting in params.items():
            try:
                path = parse_path(key)
                if path == ("name",):
                    raise SpaceError("the component's name is the choice itself")
                if isinstance(setting, list) or (isinstance(setting, Mapping) and set(setting) & ENTRY_KEYS):
                    entry = parse_entry(setting, nested=True)
                    assert not isinstance(entry, Components)
                    dims[path] = entry
                else:
                    fixed[path] = setting
            except SpaceError as error:
                raise SpaceError(str(error), (*loc, key, *error.loc)) from None
        branches[name] = Branch(fixed, dims)
    return Components(branches)


def branch_param(path: str, choice: str, sub: SpecPath) -> str:
    """The Optuna name of a conditional parameter: ``stages[0].optimizer:sgd.lr``."""
    return f"{path}:{choice}.{format_path(sub)}"


@dataclass(frozen=True)
class SearchSpace:
    """Parsed entries by spec path, in the order the spec gives them."""

    entries: dict[str, Entry]

    @classmethod
    def parse(cls, space: Mapping[str, Any]) -> SearchSpace:
        entries: dict[str, Entry] = {}
        for key, value in space.items():
            try:
                parse_path(key)
                entries[key] = parse_entry(value)
            except SpaceError as error:
                raise SpaceError(str(error), (key, *error.loc)) from None
        return cls(entries)

    def suggest(self, trial: Trial) -> dict[SpecPath, Any]:
        """Sample one point; return the values to set, by spec path (a component choice sets the whole component)."""
        settings: dict[SpecPath, Any] = {}
        for key, entry in self.entries.items():
            if isinstance(entry, Components):
                name = trial.suggest_categorical(key, list(entry.branches))
                branch = entry.branches[name]
                settings[parse_path(key)] = _component(name, branch, {
                    sub: dim.suggest(trial, branch_param(key, name, sub)) for sub, dim in branch.dims.items()})
            else:
                settings[parse_path(key)] = entry.suggest(trial, key)
        return settings

    def grid(self) -> dict[str, list[Any]]:
        """Every parameter's values for a grid search; ``ValueError`` names the continuous ones."""
        grid: dict[str, list[Any]] = {}
        continuous: list[str] = []
        for key, entry in self.entries.items():
            named: list[tuple[str, Dimension]] = []
            if isinstance(entry, Components):
                grid[key] = list(entry.branches)
                named = [(branch_param(key, n, sub), d) for n, b in entry.branches.items() for sub, d in b.dims.items()]
            else:
                named = [(key, entry)]
            for name, dim in named:
                values = dim.grid()
                if values is None:
                    continuous.append(name)
                else:
                    grid[name] = values
        if continuous:
            raise ValueError(f"a grid needs finite values, but {', '.join(continuous)} "
                             f"{'is' if len(continuous) == 1 else 'are'} continuous: give a list, an int range or a `step`")
        return grid

    def corners(self, limit: int = 256) -> Iterator[dict[SpecPath, Any]]:
        """Points at the edges of the space: every choice and each range's ends.

        All combinations while there are at most ``limit``; otherwise one entry varied at a time.
        """
        options: list[list[Any]] = []
        for entry in self.entries.values():
            if isinstance(entry, Components):
                values = []
                for name, branch in entry.branches.items():
                    subs = list(branch.dims.items())
                    for combo in itertools.product(*(dim.corners() for _, dim in subs)):
                        values.append(_component(name, branch, {sub: v for (sub, _), v in zip(subs, combo)}))
                options.append(values)
            else:
                options.append(entry.corners())
        paths = [parse_path(k) for k in self.entries]
        if math.prod(len(o) for o in options) <= limit:
            for combo in itertools.product(*options):
                yield dict(zip(paths, combo))
            return
        base = [o[0] for o in options]
        for i, values in enumerate(options):
            for value in values:
                yield dict(zip(paths, [*base[:i], value, *base[i + 1:]]))


def _component(name: str, branch: Branch, sampled: Mapping[SpecPath, Any]) -> dict[str, Any]:
    component: dict[str, Any] = {"name": name}
    for path, value in [*branch.fixed.items(), *sampled.items()]:
        set_path(component, path, value)
    return component


def set_path(data: Any, path: SpecPath, value: Any) -> None:
    """Set ``value`` at ``path`` inside nested dicts and lists, creating the last mapping key if needed."""
    for key in path[:-1]:
        data = data[key]
        if data is None:
            raise KeyError(format_path(path))
    data[path[-1]] = value


def apply(data: dict[str, Any], settings: Mapping[SpecPath, Any]) -> dict[str, Any]:
    """A deep copy of ``data`` with ``settings`` applied (in order: a component first, then its fields)."""
    out = json.loads(json.dumps(data))
    for path, value in sorted(settings.items(), key=lambda item: len(item[0])):
        set_path(out, path, json.loads(json.dumps(value)))
    return out
