"""Loading what a run starts from: the model source, the model and tokenizer, the encoded data."""

from __future__ import annotations

import importlib
import pickle
import warnings
from typing import Any

from hone.errors import HoneError, describe
from hone.run.data import check_labels
from hone.spec.models import RunSpec

# what transformers raises for a missing model, custom code without trust_remote_code, a refused pickle
LOAD_ERRORS = (OSError, ValueError, pickle.UnpicklingError)


def resolve_source(source: str) -> str:
    """``pkg:<module>`` names an installed package whose ``get_model_path()`` gives a model folder."""
    if source.startswith("pkg:"):
        module_name = source[4:]
        try:
            return str(importlib.import_module(module_name).get_model_path())
        except (ImportError, AttributeError) as error:
            raise HoneError(f"model.source '{source}': cannot get a model path from package '{module_name}' ({error})") from None
    return source


def load_model(spec: RunSpec, task: Any, labels: list[str]) -> tuple[Any, Any, list[str]]:
    """(model, tokenizer, labels) of the spec's model; a fine-tuned head keeps its own labels, in its own order."""
    if spec.model.trust_remote_code:
        warnings.warn(f"model.trust_remote_code is on: code from '{spec.model.source}' will run", stacklevel=3)
    try:
        model, tokenizer = task.load(resolve_source(spec.model.source), labels, trust_remote_code=spec.model.trust_remote_code,
                                     revision=spec.model.revision)
    except LOAD_ERRORS as error:
        raise HoneError(f"model.source '{spec.model.source}': cannot load ({describe(error)})") from None
    return model, tokenizer, task.model_labels(model) if hasattr(task, "model_labels") else labels


def encode_splits(spec: RunSpec, task: Any, tokenizer: Any, labels: list[str],
                  splits: dict[str, list[Any]]) -> dict[str, list[dict[str, Any]]]:
    """Every non-empty split encoded by the task, after checking its labels against the training labels."""
    if labels and "label" in (splits["train"] or [{}])[0]:
        for name in ("validation", "test"):
            check_labels(splits[name], labels, getattr(spec.data, name) or spec.data.path or name)
    return {name: task.encode(examples, tokenizer, labels) for name, examples in splits.items() if examples}
