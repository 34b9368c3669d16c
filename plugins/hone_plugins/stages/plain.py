"""Metric results as plain JSON values: NumPy and torch scalars become numbers, anything else unwritable is refused."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hone.errors import ComponentError


def plain_results(name: str, found: Any, origin: str | None = None) -> dict[str, Any]:
    """``found`` (what metric ``name`` returned) with every real-number scalar (NumPy, torch, 0-d arrays) as a Python
    number, so it can drive early stopping and objectives; a ComponentError naming the metric and its plugin for a
    value that is not a number, string, None, list or mapping (a tensor, an array, an object)."""
    where = f"metric '{name}'" + (f" from {origin}" if origin else "")
    if not isinstance(found, Mapping):
        raise ComponentError(f"{where} returned {type(found).__name__}: compute() must return a mapping of result names")
    return {str(key): _plain(value, where, str(key)) for key, value in found.items()}


def _plain(value: Any, where: str, key: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v, where, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, where, f"{key}[{i}]") for i, v in enumerate(value)]
    if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):  # numpy scalar, 0-d array or tensor
        number = value.item()  # a Python bool, int, float or complex
        if isinstance(number, (bool, int, float)):
            return number
    shape = getattr(value, "shape", None)
    hint = f" of shape {tuple(shape)} (return .tolist() for a list)" if shape is not None else ""
    raise ComponentError(f"{where} returned {type(value).__module__}.{type(value).__qualname__}{hint} for "
                         f"'{key}': results must be numbers, strings, lists or mappings")
