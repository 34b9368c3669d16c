"""``hone select SPEC``: every candidate fine-tuned with the same spec, measured and ranked; rerun to continue."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import yaml

from hone.errors import HoneError, Interrupted, describe
from hone.plugins import PluginHost
from hone_plugins.commands.progress import terminal_bars
from hone_plugins.report.rundata import load_run
from hone.run.rundir import SPEC, changed_fields
from hone.spec.loading import SpecError, SpecIssue, check_ready, check_sections, load_spec
from hone_plugins.folder_lock import LOCK, lock_folder
from hone_plugins.selection.candidates import CUT_JSON, Plan, cut_model, measure, plan, timing_examples
from hone_plugins.selection.check import NO_SECTION
from hone_plugins.selection.ranking import MARKDOWN, STATE, markdown, read_state, write_ranking
from hone_plugins.selection.spec import SelectionSpec

def _claim(directory: Path) -> IO[str]:
    """Lock the selection directory: one ``hone select`` at a time works in it."""
    if directory.is_dir() and any(p.name != LOCK for p in directory.iterdir()) and not (directory / STATE).exists():
        raise HoneError(f"{directory} already holds something else than a model selection: choose another --out")
    return lock_folder(directory, "hone select")


def _saved_spec(run_dir: Path) -> Any:
    try:
        return yaml.safe_load((run_dir / SPEC).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None


def conflicts(plans: Sequence[Plan], host: PluginHost) -> list[str]:
    """Candidates whose earlier run or cut belongs to another model or another spec (they cannot be reused)."""
    found = []
    for item in plans:
        cut = item.cut_dir / CUT_JSON if item.cut_dir is not None else None
        if cut is not None and cut.exists():
            made = {k: v for k, v in json.loads(cut.read_text(encoding="utf-8")).items() if k != "of_layers"}
            if made != item.definition():
                found.append(f"candidate '{item.name}': {item.cut_dir} was cut from {made}, not {item.definition()}")
                continue
        if (item.run_dir / SPEC).exists():
            changed = changed_fields(_saved_spec(item.run_dir), item.spec, host)
            if changed:
                found.append(f"candidate '{item.name}': the spec changed since it was fine-tuned in {item.run_dir} "
                             f"(fields: {', '.join(changed)})")
    return found


def _finished(run_dir: Path) -> bool:
    try:
        return load_run(run_dir).status == "completed"
    except HoneError:
        return False


def _fresh_state(spec: Any, selection: SelectionSpec) -> dict[str, Any]:
    objective = selection.objective
    return {"name": spec.name, "status": "running", "started": time.time(),
            "objective": {"metric": objective.metric, "direction": objective.goal,
                          "penalties": objective.penalties.weights(), "formula": objective.formula()},
            "latency": selection.latency.model_dump(mode="json"), "candidates": []}


def run_candidate(item: Plan, old: dict[str, Any], host: PluginHost, selection: SelectionSpec,
                  examples: Callable[[], Any], quiet: bool, say: Callable[[str], None]) -> dict[str, Any]:
    """Fine-tune one candidate (a finished run is not trained again), then measure it (its measures are kept)."""
    from hone.run.runner import run

    row: dict[str, Any] = {"name": item.name, **item.definition(), "run_dir": str(item.run_dir), "status": "running"}
    latency = selection.latency.model_dump(mode="json")
    if _finished(item.run_dir):
        if old.get("status") == "measured" and old.get("latency") == latency and old.get("measures"):
            say(f"{item.name}: fine-tuned and measured earlier")
            return {**row, "status": "measured", "latency": latency, "measures": old["measures"]}
        say(f"{item.name}: fine-tuned earlier; measuring")
    else:
        if item.cut_dir is not None:
            say(f"{item.name}: keeping layers {item.layers} of {item.model.source}")
            cut_model(item)
        resume = item.run_dir.is_dir() and any(item.run_dir.iterdir())
        say(f"{item.name}: {'resuming' if resume else 'fine-tuning'} {item.spec.model.source}")
        run(item.spec, host, out=item.run_dir, resume=resume, progress=terminal_bars(quiet))
    measures = measure(item, host, selection.objective, selection.latency, examples())
    say(f"{item.name}: {selection.objective.metric} {measures['metric']:.4f}, latency {measures['latency_ms']:.2f} ms, "
        f"{measures['size_mb']:.1f} MB, {measures['wall_s']:.1f} s")
    return {**row, "status": "measured", "latency": latency, "measures": measures}


def select_command(spec_file: Path, out: Path | None = None, plugins_dirs: Sequence[str] = (), quiet: bool = False,
                   report: bool = True) -> int:
    """The whole of ``hone select``: check everything, then fine-tune, measure and rank each candidate."""
    say: Callable[[str], None] = (lambda _: None) if quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    spec, host = load_spec(spec_file, plugins_dirs=list(plugins_dirs))
    if getattr(spec, "selection", None) is None:
        raise SpecError(str(spec_file), [SpecIssue("selection", NO_SECTION)])
    check_ready(spec_file, spec)
    check_sections(spec_file, spec, host)  # the selection's own checks among them
    selection: SelectionSpec = spec.selection  # type: ignore[attr-defined]
    directory = (out or Path(spec.output_dir) / f"{spec.name}-selection").resolve()
    plans = [plan(c, spec, Path(spec_file).parent.resolve(), directory) for c in selection.candidates]
    lock = _claim(directory)
    try:
        if found := conflicts(plans, host):
            raise HoneError(f"{directory}: earlier work cannot be reused:\n  " + "\n  ".join(found) +
                            "\nrename the candidate, remove its folder to fine-tune it again, or use another --out")
        earlier = {row.get("name"): row for row in (read_state(directory) or {}).get("candidates", [])}
        state = _fresh_state(spec, selection)
        state["candidates"] = [{"name": p.name, **p.definition(), "run_dir": str(p.run_dir), "status": "pending",
                                **{k: v for k, v in earlier.get(p.name, {}).items() if k in ("measures", "latency")}}
                               for p in plans]
        write_ranking(directory, state)
        cache: list[Any] = []

        def examples() -> Any:
            if not cache:
                cache.append(timing_examples(spec, host, selection.latency))
            return cache[0]

        try:
            for index, item in enumerate(plans):
                say(f"[{index + 1}/{len(plans)}] {item.name}")
                try:
                    row = run_candidate(item, earlier.get(item.name, {}), host, selection, examples, quiet, say)
                except Interrupted:
                    raise
                except HoneError as error:
                    row = {**{k: v for k, v in state["candidates"][index].items() if k != "measures"},
                           "status": "failed", "error": describe(error, 300)}
                    say(f"{item.name}: failed: {describe(error, 300)}")
                state["candidates"][index] = row
                write_ranking(directory, state)
        except (Interrupted, KeyboardInterrupt):
            state["status"] = "interrupted"
            write_ranking(directory, state)
            raise
        failed = [row for row in state["candidates"] if row["status"] == "failed"]
        state.update(status="failed" if failed else "completed", finished=time.time())
        write_ranking(directory, state)
    finally:
        lock.close()
    if report:
        write_reports(directory, plans)
    final = read_state(directory) or state
    print(markdown(final), end="")
    if final.get("best"):
        print(f"best: {final['best']}; ranking in {directory / MARKDOWN}")
    if failed:
        raise HoneError(f"{len(failed)} of {len(plans)} candidates failed ({', '.join(r['name'] for r in failed)}); "
                        "run `hone select` again to retry them")
    return 0


def write_reports(directory: Path, plans: Sequence[Plan]) -> None:
    """Each candidate's report (with where it ranks), then the selection's own."""
    from hone_plugins.report.write import try_write_report

    for item in plans:
        if item.run_dir.is_dir():
            try_write_report(item.run_dir)
    if found := try_write_report(directory):
        print(f"report: {found}")
