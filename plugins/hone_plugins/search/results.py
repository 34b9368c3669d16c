"""A search's result files: best.yaml or pareto/, trials.csv, trials.json, importances.json, search.json (plain data)."""

from __future__ import annotations

import csv
import io
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from hone.atomic import write_json, write_text
from hone_plugins.search.study import (DUPLICATE_OF, ERROR, INTERRUPTED, PRUNED_AT, RETRY_OF, RUN_DIR, SPEC, SURPLUS, Search, counted,
                               masked)

BEST, PARETO, TRIALS_CSV, TRIALS_JSON, IMPORTANCES, SUMMARY = "best.yaml", "pareto", "trials.csv", "trials.json", "importances.json", "search.json"


def _seconds(trial: Any) -> float | None:
    if trial.datetime_start is None or trial.datetime_complete is None:
        return None
    return round((trial.datetime_complete - trial.datetime_start).total_seconds(), 3)


def _note(trial: Any) -> str:
    attrs = trial.user_attrs
    notes = [f"retry of {attrs[RETRY_OF]}" if RETRY_OF in attrs else "", "interrupted" if attrs.get(INTERRUPTED) else "",
             f"duplicate of {attrs[DUPLICATE_OF]}" if DUPLICATE_OF in attrs else "", "surplus" if attrs.get(SURPLUS) else "",
             f"pruned after {attrs[PRUNED_AT]} evaluation(s)" if PRUNED_AT in attrs else "", attrs.get(ERROR, "")]
    return "; ".join(n for n in notes if n)


def trial_rows(search: Search, trials: list[Any]) -> list[dict[str, Any]]:
    """One plain record per trial: number, state, objective values, parameters, timings, run directory, notes."""
    assert search.spec.search is not None
    metrics = [o.metric for o in search.spec.search.objectives]
    rows = []
    for t in trials:
        rows.append({
            "number": t.number, "state": t.state.name.lower(),
            "values": dict(zip(metrics, t.values)) if t.values else None,
            "params": t.params,
            "intermediate": {str(k): v for k, v in sorted(t.intermediate_values.items())},
            "duration_s": _seconds(t) if DUPLICATE_OF not in t.user_attrs else 0.0,
            "start": t.datetime_start.isoformat() if t.datetime_start else None,
            "complete": t.datetime_complete.isoformat() if t.datetime_complete else None,
            "run_dir": t.user_attrs.get(RUN_DIR), "worker": t.user_attrs.get("owner"), "note": _note(t),
        })
    return rows


def _csv(rows: list[dict[str, Any]], metrics: list[str]) -> str:
    params = list(dict.fromkeys(k for row in rows for k in row["params"]))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["number", "state", *metrics, "duration_s", *params, "run_dir", "note"])
    for row in rows:
        values = row["values"] or {}
        writer.writerow([row["number"], row["state"], *(values.get(m, "") for m in metrics), row["duration_s"],
                         *(row["params"].get(p, "") for p in params), row["run_dir"] or "", row["note"]])
    return out.getvalue()


def _spec_text(search: Search, trial: Any, values: dict[str, float]) -> str:
    shown = ", ".join(f"{k} = {v:.6g}" for k, v in values.items())
    header = f"# trial {trial.number} of study '{search.study_name}' ({shown}); run it with: hone run <this file>\n"
    return header + yaml.safe_dump(trial.user_attrs[SPEC], sort_keys=False)


def importances(search: Search, study: Any) -> dict[str, Any]:
    """fANOVA importance of each parameter, per objective; an ``error`` where there is too little to go on."""
    import optuna

    assert search.spec.search is not None
    out: dict[str, Any] = {"method": "fanova", "objectives": {}}
    for i, objective in enumerate(search.spec.search.objectives):
        try:
            found = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), target=lambda t, i=i: t.values[i])
            out["objectives"][objective.metric] = {k: round(float(v), 6) for k, v in found.items()}
        except (ValueError, RuntimeError) as error:
            out["objectives"][objective.metric] = {"error": str(error)}
    return out


def tidy(search: Search, trials: list[Any], best_dirs: set[str | None]) -> None:
    """Remove finished trials' checkpoints (never resumed: an interrupted trial runs afresh), and models not kept."""
    from optuna.trial import TrialState

    assert search.spec.search is not None
    keep = search.spec.search.keep
    root = search.search_dir / "trials"
    for trial in trials:
        run_dir = trial.user_attrs.get(RUN_DIR)
        if trial.state in (TrialState.RUNNING, TrialState.WAITING) or not run_dir or DUPLICATE_OF in trial.user_attrs:
            continue
        path = Path(run_dir)
        if path.parent != root or not path.is_dir():  # another machine's trial, or not ours to touch
            continue
        shutil.rmtree(path / "checkpoints", ignore_errors=True)
        # a trial that is not the best now never becomes it: the best only improves
        if keep == "none" or (keep == "best" and run_dir not in best_dirs):
            shutil.rmtree(path / "model", ignore_errors=True)


def write_results(search: Search, study: Any, status: str = "running", started: float | None = None) -> dict[str, Any]:
    """Write every result file from the study as it is now (parameter importances once it stopped); return the summary."""
    from optuna.trial import TrialState

    assert search.spec.search is not None
    config = search.spec.search
    directory = search.search_dir
    trials = study.get_trials(deepcopy=False)
    rows = trial_rows(search, trials)
    metrics = [o.metric for o in config.objectives]
    write_text(directory / TRIALS_CSV, _csv(rows, metrics))
    write_json(directory / TRIALS_JSON, rows)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    summary: dict[str, Any] = {
        "study": search.study_name, "storage": masked(search.storage_url), "search_dir": str(directory),
        "searcher": config.searcher.model_dump(mode="json"), "pruner": config.pruner.model_dump(),
        "objectives": [{"metric": o.metric, "direction": o.goal} for o in config.objectives],
        "space": config.space, "budget": {"trials": config.trials, "timeout_s": config.timeout},
        "trials": {state: sum(r["state"] == state for r in rows) for state in ("complete", "pruned", "fail", "running", "waiting")},
        "counted": len(counted(trials)), "duplicates": sum(DUPLICATE_OF in t.user_attrs for t in trials),
        "retried": sorted(t.user_attrs[RETRY_OF] for t in trials if RETRY_OF in t.user_attrs),
        "compute_s": round(sum(r["duration_s"] or 0.0 for r in rows), 3),
        "status": status, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if started is not None:
        summary["wall_s"] = round(time.time() - started, 3)
    if complete and len(metrics) == 1:
        best = study.best_trial
        write_text(directory / BEST, _spec_text(search, best, {metrics[0]: best.value}))
        summary["best"] = {"number": best.number, "value": best.value, "params": best.params, "spec": BEST,
                           "run_dir": best.user_attrs.get(RUN_DIR)}
    elif complete:
        front = [t for t in study.best_trials if DUPLICATE_OF not in t.user_attrs]
        folder = directory / PARETO
        folder.mkdir(exist_ok=True)
        keep = {f"{t.number}.yaml" for t in front}
        for stale in folder.glob("*.yaml"):
            if stale.name not in keep:
                stale.unlink(missing_ok=True)
        for t in front:
            write_text(folder / f"{t.number}.yaml", _spec_text(search, t, dict(zip(metrics, t.values))))
        summary["pareto"] = [{"number": t.number, "values": dict(zip(metrics, t.values)), "params": t.params,
                              "spec": f"{PARETO}/{t.number}.yaml", "run_dir": t.user_attrs.get(RUN_DIR)} for t in front]
    keep = {summary["best"]["run_dir"]} if "best" in summary else {p["run_dir"] for p in summary.get("pareto", [])}
    tidy(search, trials, keep)
    if status != "running":
        write_json(directory / IMPORTANCES, importances(search, study))
    write_json(directory / SUMMARY, summary)
    return summary


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """What ``hone search`` prints at the end."""
    counts = summary["trials"]
    lines = [f"trials: {counts['complete']} complete, {counts['pruned']} pruned, {counts['fail']} failed "
             f"({summary['duplicates']} duplicates, compute {summary['compute_s']:.1f} s)"]
    if "best" in summary:
        best = summary["best"]
        lines.append(f"best: trial {best['number']}, {summary['objectives'][0]['metric']} {best['value']:.4f}; "
                     f"spec {Path(summary['search_dir']) / BEST}")
    for point in summary.get("pareto", []):
        shown = ", ".join(f"{k} {v:.4f}" for k, v in point["values"].items())
        lines.append(f"pareto: trial {point['number']}, {shown}; spec {Path(summary['search_dir']) / point['spec']}")
    lines.append(f"search directory: {summary['search_dir']}")
    return lines
