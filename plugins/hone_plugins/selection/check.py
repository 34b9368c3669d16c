"""Checks of a spec's ``selection:`` section needing the rest of the spec or this machine, before any training."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hone.errors import HoneError, describe
from hone.spec.loading import SpecError, SpecIssue, _locate, read_spec_file
from hone.spec.models import ModelSpec, RunSpec, SpecPaths
from hone_plugins.selection.spec import Candidate, SelectionSpec

Found = Iterator[tuple[tuple[Any, ...], str]]
NO_SECTION = "`hone select` needs a `selection:` section: candidates (model sources) and an objective (a metric)"


def candidate_model(candidate: Candidate, spec: RunSpec, base: Path) -> ModelSpec:
    """The candidate's model source, made absolute against the spec's folder where it is local."""
    if candidate.model is None:
        return spec.model
    return candidate.model.model_copy(update={"source": SpecPaths(base)(candidate.model.source)})


def layer_count(model: ModelSpec) -> int:
    """The number of transformer layers of a model, from its config alone; a HoneError if it cannot be read."""
    from transformers import AutoConfig

    from hone.run.loading import resolve_source
    from hone_plugins.tasks.common import quiet_transformers

    quiet_transformers()
    try:
        config = AutoConfig.from_pretrained(resolve_source(model.source), revision=model.revision,
                                            trust_remote_code=model.trust_remote_code)
    except (OSError, ValueError) as error:
        raise HoneError(f"cannot read the model's config ({describe(error, 200)})") from None
    count = getattr(config, "num_hidden_layers", None)
    if not isinstance(count, int):
        raise HoneError(f"{type(config).__name__} does not say how many layers it has (no num_hidden_layers)")
    return count


def selection_issues(spec: RunSpec, selection: SelectionSpec, base: Path) -> Found:
    for index, candidate in enumerate(selection.candidates):
        model = candidate_model(candidate, spec, base)
        where = ("selection", "candidates", index)
        if candidate.model is not None and model.source.startswith("/") and not Path(model.source).exists():
            yield (*where, "model"), f"{model.source}: model folder not found"
            continue
        if candidate.layers is None:
            continue
        try:
            total = layer_count(model)
        except HoneError as error:
            yield (*where, "layers"), f"cannot cut {model.source}: {error}"
            continue
        kept = candidate.kept(total)
        if len(kept) > total or max(kept) >= total:
            yield (*where, "layers"), f"{model.source} has {total} layers (0..{total - 1}): keep at most {total}"
    split = selection.latency.split
    if split is not None and getattr(spec.data, split) is None and spec.data.path is None:
        yield ("selection", "latency", "split"), f"the spec's data has no {split} split to time predictions on; " \
                                                 f"use one of {', '.join(spec.data.given_splits())}"


def check_selection(file: str | Path, spec: RunSpec) -> None:
    """Report every problem of the spec's selection section at once (path, line, message), or none."""
    selection = getattr(spec, "selection", None)
    if selection is None:
        raise SpecError(str(file), [SpecIssue("selection", NO_SECTION)])
    issues = list(selection_issues(spec, selection, Path(file).parent.resolve()))
    if issues:
        data, nodes = read_spec_file(Path(file))
        found = []
        for loc, message in issues:
            path, line = _locate(data, nodes, loc)
            found.append(SpecIssue(path, message, line))
        raise SpecError(str(file), found)
