"""Model selection: fine-tune each candidate with one shared spec, measure quality, latency and size, rank them.

    python examples/model-selection/select.py examples/model-selection/selection.yaml

The score is ``metric - sum(weight * measure)`` with the weights of ``objective.penalties`` (see selection.yaml).
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from hone_plugins.report.compare import compare, plot
from hone.errors import HoneError
from hone_plugins.report.write import try_write_report
from hone.report import load_run
from hone_plugins.report.rundata import find_metric, model_size, wall_seconds

MEASURES = ("latency_ms", "size_mb", "parameters_m", "wall_s")


def reduced_model(source: str, layers: int, folder: Path) -> str:
    """A copy of ``source`` keeping only its first ``layers`` transformer layers (made once, then reused)."""
    if (folder / "config.json").exists():
        return str(folder)
    import torch
    from transformers import AutoModel, AutoTokenizer

    from hone.run.loading import resolve_source

    path = resolve_source(source)
    model = AutoModel.from_pretrained(path)
    total = model.config.num_hidden_layers
    if not 1 <= layers <= total:
        raise HoneError(f"layers: {layers} is not between 1 and the model's {total} layers")
    stack = next(m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == total)
    del stack[layers:]
    model.config.num_hidden_layers = layers
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(path).save_pretrained(folder)
    return str(folder)


def sentences(spec: Any, host: Any, count: int) -> list[dict[str, str]]:
    """``count`` records for ``hone predict`` from the test split (else validation)."""
    path = spec.data.test or spec.data.validation
    if path is None:
        raise HoneError("the spec needs a test or validation file to time predictions on")
    reader = host.registries.get("reader", spec.data.reader.name).build(spec.data.reader.params)
    examples = reader.read(Path(path))[:count]
    return [{"text": example.get("text") or " ".join(example["tokens"])} for example in examples]


def latency_ms(run_dir: Path, records: list[dict[str, str]], host: Any, device: str) -> float:
    """Median milliseconds to predict one sentence at batch size 1, after three warm-up calls."""
    from hone_plugins.commands.predict import load_predictor

    task, model, tokenizer, labels = load_predictor(str(run_dir), host, device=device)
    options = {"batch_size": 1, "threshold": 0.0, "min_span_length": 1, "max_new_tokens": 1}
    for record in records[:3]:
        task.predict(model, tokenizer, [record], labels, options)
    times = []
    for record in records:
        start = time.perf_counter()
        task.predict(model, tokenizer, [record], labels, options)
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def evaluate_candidate(candidate: dict[str, Any], spec: Any, host: Any, out: Path, config: dict[str, Any],
                       report: bool) -> dict[str, Any]:
    """Fine-tune and evaluate one candidate (a finished run directory is reused); return its measures."""
    from hone.run.runner import run

    name = candidate["name"]
    source = candidate["model"]
    if candidate.get("layers"):
        source = reduced_model(source, int(candidate["layers"]), out / "models" / name)
    run_dir = out / name
    if not (run_dir / "state.json").exists() or load_run(run_dir).status != "completed":
        candidate_spec = spec.model_copy(update={"name": name, "model": spec.model.model_copy(update={"source": source})})
        cut = f" cut to {candidate['layers']} layers" if candidate.get("layers") else ""
        print(f"[{name}] fine-tuning {candidate['model']}{cut}", file=sys.stderr, flush=True)
        run(candidate_spec, host, out=run_dir, resume=run_dir.exists() and any(run_dir.iterdir()))
        if report:
            try_write_report(run_dir)
    latency = config.get("latency") or {}
    records = sentences(spec, host, int(latency.get("sentences", 20)))
    loaded = load_run(run_dir)
    size = model_size(loaded)
    return {
        "candidate": name, "run_dir": run_dir,
        "metric": find_metric(loaded, config["objective"]["metric"]),
        "latency_ms": latency_ms(run_dir, records, host, str(latency.get("device", "cpu"))),
        "size_mb": size.get("size_bytes", 0) / 1e6, "parameters_m": size.get("parameters", 0) / 1e6,
        "wall_s": wall_seconds(loaded) or 0.0,
    }


def score(row: dict[str, Any], penalties: dict[str, float]) -> float | None:
    if row["metric"] is None:
        return None
    return row["metric"] - sum(weight * row[measure] for measure, weight in penalties.items())


def ranking_table(rows: list[dict[str, Any]], metric: str, form: str) -> str:
    headers = ["rank", "candidate", "score", metric, *MEASURES]
    digits = {"latency_ms": 3, "size_mb": 4, "parameters_m": 6, "wall_s": 2}
    cells = [[str(i + 1), r["candidate"], *(f"{r[k]:.4f}" if r[k] is not None else "-" for k in ("score", "metric")),
              *(f"{r[m]:.{digits[m]}f}" for m in MEASURES)] for i, r in enumerate(rows)]
    if form == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([headers, *cells])
        return buffer.getvalue()
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells]) + "\n"


def load_config(path: Path) -> dict[str, Any]:
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(config, dict) or not config.get("candidates") or not config.get("objective", {}).get("metric"):
        raise HoneError(f"{path}: needs `spec`, `candidates` and `objective.metric`")
    unknown = set(config["objective"].get("penalties") or {}) - set(MEASURES)
    if unknown:
        raise HoneError(f"{path}: objective.penalties: unknown measure(s) {', '.join(sorted(unknown))}; use {', '.join(MEASURES)}")
    names = [c.get("name") for c in config["candidates"]]
    if None in names or len(set(names)) != len(names):
        raise HoneError(f"{path}: every candidate needs a unique `name`")
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("selection", type=Path, help="the selection file (see selection.yaml)")
    parser.add_argument("--out", type=Path, help="where runs and the ranking go (default: the file's output_dir)")
    parser.add_argument("--no-report", action="store_true", help="skip each candidate's report.html")
    args = parser.parse_args(argv)

    from hone.spec.loading import load_spec

    config = load_config(args.selection)
    spec, host = load_spec(args.selection.parent / config["spec"])
    out = args.out or args.selection.parent / config.get("output_dir", "runs")
    out.mkdir(parents=True, exist_ok=True)
    penalties = {k: float(v) for k, v in (config["objective"].get("penalties") or {}).items()}
    rows = [evaluate_candidate(c, spec, host, out, config, not args.no_report) for c in config["candidates"]]
    for row in rows:
        row["score"] = score(row, penalties)
    rows.sort(key=lambda r: float("-inf") if r["score"] is None else r["score"], reverse=True)
    metric = config["objective"]["metric"]
    table = ranking_table(rows, metric, "markdown")
    (out / "ranking.md").write_text(table)
    (out / "ranking.csv").write_text(ranking_table(rows, metric, "csv"))
    plot(compare([r["run_dir"] for r in rows], [metric]), out / "compare.png")
    print(table, end="")
    formula = " - ".join([metric, *(f"{w:g} * {m}" for m, w in penalties.items())])
    print(f"best: {rows[0]['candidate']} (score = {formula}); ranking in {out / 'ranking.md'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except HoneError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
