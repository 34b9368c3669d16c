"""Checks across a spec, from what its components declare, and of the machine it runs on: (location, message) pairs."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from hone.registry import Component, Registries
from hone.spec.models import SPLITS, ComponentRef, RunSpec

Found = Iterator[tuple[tuple[Any, ...], str]]
INT64 = (-(2**63), 2**63 - 1)


def numbers(value: Any, loc: tuple[Any, ...] = ()) -> Found:
    """Numbers no run can use, anywhere in the spec's data (plugin params and free-form fields included)."""
    if len(loc) > 100 or isinstance(value, bool):  # deeper than any spec: data built in code that contains itself
        return
    if isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
        yield loc, f"this integer does not fit in 64 bits: a run uses integers from {INT64[0]} to {INT64[1]}"
    elif isinstance(value, float) and not math.isfinite(value):
        yield loc, f"{value} is not a finite number"
    for key, item in value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ():
        yield from numbers(item, (*loc, key))


def refs(value: Any, loc: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], ComponentRef]]:
    """Every component reference in a validated spec, with where it is (a ref's params are written beside its name)."""
    if isinstance(value, ComponentRef):
        yield loc, value
        value = value.params
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from refs(getattr(value, name), (*loc, name))
    for key, item in value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ():
        yield from refs(item, (*loc, key))


def missing(component: Component) -> str | None:
    """What a component's ``requires=`` names that is not installed, with how to install it."""
    for modules, install in (component.info.get("requires") or {}).items():
        if not any(_installed(name) for name in modules.split("|")):
            names = modules.replace("|", " (or ", 1) + ")" * ("|" in modules)
            return f"{component.kind} '{component.name}' needs {names}, which is not installed: {install}"
    return None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, a module set to None
        return False


def spec_checks(spec: RunSpec, registries: Registries) -> Found:
    """Stage names, the data splits stages need, missing optional dependencies, metrics the task cannot feed."""
    names = spec.stage_names()
    given = spec.data.given_splits()
    for index, (name, stage) in enumerate(zip(names, spec.stages)):
        if name in names[:index]:
            yield ("stages", index, "name"), (f"stage '{name}' is also stages[{names.index(name)}]'s name: each stage needs its own "
                                              "(its results are kept under it)")
        for split in dict.fromkeys(stage.data_splits()):
            if split not in given:
                field = next((f for f in type(stage).model_fields if f not in ("type", "name") and getattr(stage, f) == split), None)
                yield ("stages", index, *([field] if field else [])), (
                    f"stage '{name}' ({stage.type}) needs the '{split}' split: give `data.{split}` or `data.path`")
    predicts = registries.get("task", spec.task.name).info.get("predictions")
    for loc, ref in refs(spec):
        component = registries.get(ref.kind, ref.name)
        if problem := missing(component):
            yield loc, problem
        scores = component.info.get("scores")
        if ref.kind == "metric" and predicts and scores is not None and predicts not in scores:
            fitting = [c.name for c in registries["metric"] if predicts in c.info.get("scores", (predicts,))]
            yield loc, (f"metric '{ref.name}' scores {' or '.join(scores)}, but task '{spec.task.name}' predicts {predicts}"
                        + (f"; metrics for it: {', '.join(fitting)}" if fitting else ""))


def machine_checks(spec: RunSpec) -> Found:
    """What the spec needs of this machine: its data files, its device."""
    for split in (*SPLITS, "path"):
        file = getattr(spec.data, split)
        if file is not None and not Path(file).exists():
            yield ("data", split), f"{file}: data file not found"
    if spec.device not in ("auto", "cpu"):
        from hone.run.devices import unavailable  # imports torch

        if problem := unavailable(spec.device):
            yield ("device",), problem
