"""A candidate's run spec, its kept-layer cut of a model, and its measures once fine-tuned."""

from __future__ import annotations

import json
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hone.atomic import write_text
from hone.errors import HoneError
from hone.plugins import PluginHost
from hone.spec.models import ModelSpec, RunSpec
from hone_plugins.report.rundata import load_run, model_size, wall_seconds
from hone_plugins.search.objectives import objective_value
from hone_plugins.selection.check import candidate_model
from hone_plugins.selection.spec import Candidate, Latency, SelectionObjective

CUT_JSON = "cut.json"


@dataclass
class Plan:
    """What one candidate is: its name, where its model comes from, its run directory and its run spec."""

    name: str
    model: ModelSpec
    layers: list[int] | int | None
    run_dir: Path
    cut_dir: Path | None
    spec: RunSpec

    def definition(self) -> dict[str, Any]:
        """What makes the candidate this candidate (a change means its earlier run is another model's)."""
        return {"model": self.model.source, "revision": self.model.revision, "layers": self.layers}


def plan(candidate: Candidate, spec: RunSpec, base: Path, directory: Path) -> Plan:
    assert candidate.name is not None, "candidates are named when the spec is validated"
    model = candidate_model(candidate, spec, base)
    cut_dir = directory / "models" / candidate.name if candidate.layers is not None else None
    trained = ModelSpec(source=str(cut_dir)) if cut_dir is not None else model
    run_spec = spec.model_copy(update={"name": candidate.name, "model": trained, "selection": None})
    return Plan(candidate.name, model, candidate.layers, directory / "runs" / candidate.name, cut_dir, run_spec)


def cut_model(plan: Plan) -> Path:
    """The candidate's model with only its kept layers, saved once under models/<name>/ (then reused)."""
    assert plan.cut_dir is not None
    if (plan.cut_dir / CUT_JSON).exists():
        return plan.cut_dir
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    from hone.run.loading import resolve_source
    from hone_plugins.tasks.common import quiet_transformers
    from hone_plugins.stages.distill import keep_layers

    quiet_transformers()
    options = {"revision": plan.model.revision, "trust_remote_code": plan.model.trust_remote_code}
    path = resolve_source(plan.model.source)
    config = AutoConfig.from_pretrained(path, **options)
    architecture = next((getattr(transformers, a) for a in config.architectures or [] if hasattr(transformers, a)),
                        transformers.AutoModel)  # the class it was saved as keeps its head (a causal LM's, say)
    model = architecture.from_pretrained(path, **options)
    total = model.config.num_hidden_layers
    cut = keep_layers(model, list(range(plan.layers)) if isinstance(plan.layers, int) else list(plan.layers or []))
    temporary = plan.cut_dir.with_name(f".{plan.cut_dir.name}.tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    cut.save_pretrained(temporary)
    AutoTokenizer.from_pretrained(path, **options).save_pretrained(temporary)
    write_text(temporary / CUT_JSON, json.dumps({**plan.definition(), "of_layers": total}, indent=2))
    shutil.rmtree(plan.cut_dir, ignore_errors=True)  # a cut killed before its cut.json was written
    temporary.rename(plan.cut_dir)
    return plan.cut_dir


def timing_examples(spec: RunSpec, host: PluginHost, latency: Latency) -> list[dict[str, Any]]:
    """The examples predictions are timed on: the latency split's first ones, as the reader gives them."""
    from hone.run.data import load_splits

    splits = load_splits(spec.data, host, spec.seed)
    order = [latency.split] if latency.split else ["test", "validation", "train"]
    split = next((s for s in order if splits.get(s)), None)
    if split is None:
        raise HoneError(f"no examples to time predictions on in the {' or '.join(order)} split")
    return splits[split][:latency.examples]


def latency_ms(run_dir: Path, examples: list[dict[str, Any]], host: PluginHost, latency: Latency) -> float:
    """Median milliseconds ``hone predict`` takes for one example at batch size 1, after ``latency.warmup`` calls."""
    import torch

    from hone_plugins.commands.predict import load_predictor

    task, model, tokenizer, labels = load_predictor(str(run_dir), host, device=latency.device)
    options = {"batch_size": 1, "threshold": 0.0, "min_span_length": 1, "max_new_tokens": latency.max_new_tokens}
    times = []
    with torch.inference_mode():
        for index in range(latency.warmup + len(examples)):
            example = examples[index % len(examples)]
            start = time.perf_counter()
            task.predict(model, tokenizer, [example], labels, options)
            if index >= latency.warmup:
                times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def measure(plan: Plan, host: PluginHost, objective: SelectionObjective, latency: Latency,
            examples: list[dict[str, Any]]) -> dict[str, Any]:
    """The objective's metric and every measure of a fine-tuned candidate."""
    run = load_run(plan.run_dir)
    size = model_size(run)
    return {
        "metric": objective_value(run.metrics, objective.metric, plan.spec.stage_names()),
        "latency_ms": latency_ms(plan.run_dir, examples, host, latency),
        "size_mb": size.get("size_bytes", 0) / 1e6,
        "parameters_m": size.get("parameters", 0) / 1e6,
        "wall_s": wall_seconds(run) or 0.0,
    }
