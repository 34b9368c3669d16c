"""Kill -9 a tiny real training run at many points, resume each, and compare with the uninterrupted run.

    .venv/bin/python benchmarks/kill_resume.py [--points 20] [--seed 0] [--chain] [--spec SPEC.yaml]

Each kill point runs `python -m hone run SPEC --out DIR -q` in a subprocess, sends SIGKILL after
the run has logged a chosen number of events (plus a random delay, so kills also land inside
steps, evaluations and checkpoint writes), checks that every file of the run directory can still
be read, then runs `--resume` to the end and compares `metrics.json` and the loss curve with an
uninterrupted run. `--chain` kills one run directory at every point in turn, then resumes it once.
`--spec` uses another spec (any stage types); `{model}` in it becomes the tiny model's folder and
`{repo}` the repository, e.g. `--spec benchmarks/kill_resume_stages.yaml` (train, distill, compress).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
NER_SAMPLE = REPO / "examples" / "data" / "ner-sample"


@dataclass(frozen=True)
class KillPoint:
    """SIGKILL once the run's events.jsonl holds ``after_events`` lines, ``delay`` seconds later."""

    after_events: int
    delay: float


@dataclass
class Trial:
    point: KillPoint
    killed: bool = False
    killed_after: str = "-"
    problems_after_kill: list[str] = field(default_factory=list)
    resume_rc: int | None = None
    resume_error: str = ""
    problems_after_resume: list[str] = field(default_factory=list)
    same_metrics: bool = False
    same_losses: bool = False
    seconds: float = 0.0

    @property
    def survived(self) -> bool:
        return self.killed and self.resume_rc == 0 and not self.problems_after_kill and not self.problems_after_resume


def save_tiny_model(directory: Path) -> Path:
    """The test suite's 2-layer, 32-wide BERT (tests/conftest.py), saved without any download."""
    spec = importlib.util.spec_from_file_location("hone_test_conftest", REPO / "tests" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import torch

    torch.manual_seed(0)
    return module.save_tiny_model(directory, "bert")


def kill_spec(model_dir: Path) -> dict[str, Any]:
    """Two train stages (one early-stopping, checkpoints every 2 steps) and an evaluation: every resume path."""
    return {
        "name": "kill-resume",
        "seed": 7,
        "model": str(model_dir),
        "task": {"name": "token-classification", "max_length": 48},
        "data": {"reader": "conll", **{k: str(NER_SAMPLE / f"{f}.txt") for k, f in
                                       (("train", "train"), ("validation", "valid"), ("test", "test"))}},
        "stages": [
            {"type": "train", "name": "head", "epochs": 1, "batch_size": 8, "train_only": ["classifier.*"],
             "optimizer": {"name": "adamw", "lr": 1e-2}, "logging_steps": 1},
            {"type": "train", "name": "all", "epochs": 4, "batch_size": 8, "logging_steps": 1, "checkpoint_steps": 2,
             "optimizer": {"name": "adamw", "lr": 3e-3}, "scheduler": {"name": "linear", "warmup": 0.1},
             "early_stopping": {"metric": "loss", "patience": 1, "min_delta": 0.2}},
            {"type": "evaluate", "name": "test", "split": "test", "metrics": ["entity-f1", "accuracy"]},
        ],
    }


def write_spec(directory: Path, model_dir: Path, template: Path | None = None) -> Path:
    path = directory / "spec.yaml"
    if template is None:
        path.write_text(yaml.safe_dump(kill_spec(model_dir), sort_keys=False))
    else:
        path.write_text(template.read_text().replace("{model}", str(model_dir)).replace("{repo}", str(REPO)))
    return path


def subprocess_env(cache: Path) -> dict[str, str]:
    # one thread everywhere: the same float reduction order in every run, and fair to a shared machine
    return {**os.environ, "XDG_CACHE_HOME": str(cache), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def hone_run(spec_file: Path, out: Path, resume: bool) -> list[str]:
    return [sys.executable, "-m", "hone", "run", str(spec_file), "--out", str(out), "-q", *(["--resume"] if resume else [])]


def event_lines(run_dir: Path) -> list[bytes]:
    path = run_dir / "events.jsonl"
    return path.read_bytes().split(b"\n") if path.exists() else [b""]


def read_file(path: Path, cut_last_line_ok: bool) -> None:
    """Parse ``path`` as hone would; raise on anything unreadable."""
    if path.suffix == ".json":
        json.loads(path.read_text(encoding="utf-8"))
    elif path.suffix == ".jsonl":
        *complete, last = path.read_text(encoding="utf-8").split("\n")
        for number, line in enumerate(complete, 1):
            if line.strip():
                try:
                    json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"line {number} is not JSON ({error.msg}): {line[:60]!r}") from None
        if last and not cut_last_line_ok:
            raise ValueError(f"last line cut short: {last[:60]!r}")
    elif path.suffix in (".yaml", ".yml"):
        yaml.safe_load(path.read_text(encoding="utf-8"))
    elif path.suffix == ".safetensors":
        from safetensors.torch import load_file

        load_file(str(path))
    elif path.suffix == ".pt":
        import torch

        torch.load(path, weights_only=True, map_location="cpu")
    elif path.suffix == ".csv":
        list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    elif path.suffix in (".txt", "") or path.name == "LATEST":
        path.read_text(encoding="utf-8")
    else:
        path.read_bytes()


def unreadable(run_dir: Path, cut_last_line_ok: bool) -> list[str]:
    """Every file hone would read that does not parse; hidden temporaries (``.x.tmp``) are skipped."""
    problems = []
    for path in sorted(run_dir.rglob("*")):
        relative = path.relative_to(run_dir)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        try:
            read_file(path, cut_last_line_ok)
        except Exception as error:  # noqa: BLE001  (any failure to parse is what this looks for)
            problems.append(f"{relative}: {type(error).__name__}: {error}")
    if (run_dir / "checkpoints").is_dir():
        from hone.run.checkpoint import Checkpoints

        try:
            Checkpoints(run_dir / "checkpoints").latest_good()
        except Exception as error:  # noqa: BLE001
            problems.append(f"checkpoints/: {type(error).__name__}: {error}")
    return problems


def comparable(metrics: Any) -> Any:
    """``metrics`` without measurements no two runs share: wall-clock figures (a compress stage's ``seconds`` and
    ``latency_ms``) and each stage's peak RSS (``peak_rss_mb``)."""
    if isinstance(metrics, dict):
        return {k: comparable(v) for k, v in metrics.items()
                if "seconds" not in k and not k.endswith(("per_s", "latency_ms", "rss_mb"))}
    return [comparable(v) for v in metrics] if isinstance(metrics, list) else metrics


def losses(run_dir: Path) -> dict[tuple[str, int], float]:
    from hone.run.events import read_events

    return {(e["stage"], e["step"]): e["metrics"]["loss"] for e in read_events(run_dir / "events.jsonl")
            if e["event"] == "step_end" and "loss" in e["metrics"]}


def run_until_killed(command: list[str], run_dir: Path, point: KillPoint, env: dict[str, str], base: int = 0) -> tuple[bool, str]:
    """Start ``command``; SIGKILL it at ``point`` (counted from ``base`` lines). Return (killed, last event seen)."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while process.poll() is None and len(event_lines(run_dir)) - 1 < base + point.after_events:
            time.sleep(0.003)
        time.sleep(point.delay)
        killed = process.poll() is None
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    complete = [line for line in event_lines(run_dir)[:-1] if line.strip()]
    try:
        last = json.loads(complete[-1])["event"] if complete else "(none)"
    except json.JSONDecodeError:
        last = "(cut line)"
    return killed, last


def resume_to_end(spec_file: Path, run_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # killed before hone created the folder: there is nothing to resume, so start it again
    command = hone_run(spec_file, run_dir, resume=run_dir.exists())
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)


def reference_run(spec_file: Path, root: Path, env: dict[str, str]) -> tuple[Path, float]:
    run_dir = root / "reference"
    start = time.perf_counter()
    result = subprocess.run(hone_run(spec_file, run_dir, resume=False), env=env, capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        raise SystemExit(f"the uninterrupted run failed:\n{result.stderr}")
    return run_dir, time.perf_counter() - start


def plan(points: int, events: int, seed: int) -> list[KillPoint]:
    """``points`` kill points spread evenly over the run's events; half right after an event, half a bit later."""
    rng = random.Random(seed)
    span = events - 2  # after run_start, before run_end
    plans = []
    for i in range(points):
        after = 1 + int((i + rng.random()) * span / points)
        plans.append(KillPoint(after, 0.0 if i % 2 == 0 else round(rng.uniform(0.0, 0.25), 3)))
    return plans


def finish(trial: Trial, spec_file: Path, run_dir: Path, reference: Path, env: dict[str, str]) -> Trial:
    result = resume_to_end(spec_file, run_dir, env)
    trial.resume_rc = result.returncode
    trial.resume_error = (result.stderr.strip().splitlines() or [""])[-1] if result.returncode else ""
    trial.problems_after_resume = unreadable(run_dir, cut_last_line_ok=False)
    if result.returncode == 0:
        state = json.loads((run_dir / "state.json").read_text())
        if state.get("status") != "completed":
            trial.problems_after_resume.append(f"state.json: status {state.get('status')!r}")
        trial.same_metrics = comparable(json.loads((run_dir / "metrics.json").read_text())) == comparable(
            json.loads((reference / "metrics.json").read_text()))
        expected, logged = losses(reference), losses(run_dir)
        trial.same_losses = set(logged) == set(expected) and all(logged[k] == expected[k] for k in expected)
    return trial


def independent(spec_file: Path, root: Path, reference: Path, points: list[KillPoint], env: dict[str, str]) -> list[Trial]:
    trials = []
    for number, point in enumerate(points, 1):
        start = time.perf_counter()
        run_dir = root / f"kill-{number:02d}"
        trial = Trial(point)
        trial.killed, trial.killed_after = run_until_killed(hone_run(spec_file, run_dir, False), run_dir, point, env)
        trial.problems_after_kill = unreadable(run_dir, cut_last_line_ok=True) if run_dir.exists() else []
        trials.append(finish(trial, spec_file, run_dir, reference, env))
        trial.seconds = time.perf_counter() - start
        print(f"  {number:2d}/{len(points)} {describe(trial)}", file=sys.stderr, flush=True)
    return trials


def chain(spec_file: Path, root: Path, reference: Path, points: list[KillPoint], env: dict[str, str], events: int) -> list[Trial]:
    """One run directory killed at every point in turn (each restart resumes), then resumed to the end."""
    run_dir = root / "chain"
    trials = []
    for number, point in enumerate(points, 1):
        start = time.perf_counter()
        base = len(event_lines(run_dir)) - 1
        # new events before the kill: run_start, stage_start and epoch_start come first on every restart,
        # then 0 to 2x a fair share of the run, so the run both advances and gets cut at varied places
        trial = Trial(KillPoint(3 + point.after_events % max(1, 2 * events // len(points)), point.delay))
        command = hone_run(spec_file, run_dir, resume=run_dir.exists())
        trial.killed, trial.killed_after = run_until_killed(command, run_dir, trial.point, env, base)
        trial.problems_after_kill = unreadable(run_dir, cut_last_line_ok=True) if run_dir.exists() else []
        trial.resume_rc, trial.seconds = 0, time.perf_counter() - start
        trials.append(trial)
        print(f"  {number:2d}/{len(points)} killed={trial.killed} after {trial.killed_after}", file=sys.stderr, flush=True)
    final = finish(Trial(KillPoint(0, 0.0), killed=True), spec_file, run_dir, reference, env)
    for trial in trials:
        trial.resume_rc, trial.resume_error = final.resume_rc, final.resume_error
        trial.problems_after_resume, trial.same_metrics, trial.same_losses = (
            final.problems_after_resume, final.same_metrics, final.same_losses)
    return trials


def describe(trial: Trial) -> str:
    problems = trial.problems_after_kill + trial.problems_after_resume
    return (f"after event {trial.point.after_events} +{trial.point.delay * 1000:.0f} ms: killed={trial.killed} "
            f"({trial.killed_after}), resume rc={trial.resume_rc}, same metrics={trial.same_metrics}"
            + (f", problems: {problems}" if problems else "") + (f", error: {trial.resume_error}" if trial.resume_error else ""))


def report(trials: list[Trial], mode: str, reference_seconds: float, events: int) -> str:
    from common import table

    rows = [[i, f"{t.point.after_events}/{events}", f"{t.point.delay * 1000:.0f}", t.killed_after, "yes" if t.killed else "no (run ended)",
             "yes" if not t.problems_after_kill else "; ".join(t.problems_after_kill)[:80], t.resume_rc,
             "yes" if t.same_metrics else "NO", "yes" if t.same_losses else "NO", f"{t.seconds:.1f}"]
            for i, t in enumerate(trials, 1)]
    killed = [t for t in trials if t.killed]
    lines = [
        table(["#", "after event", "+ms", "last event logged", "killed", "readable after kill", "resume rc",
               "same metrics.json", "same loss curve", "s"], rows),
        "",
        f"mode: {mode}; uninterrupted run {reference_seconds:.1f} s, {events} events",
        (f"kill points tried: {len(trials)}; killed (process still running): {len(killed)}; "
         f"survived (readable, resumed to completion): {sum(t.survived for t in killed)}; "
         f"identical final metrics.json: {sum(t.same_metrics for t in killed)}; "
         f"identical loss curve: {sum(t.same_losses for t in killed)}"),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=20, help="kill points (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill-point delays")
    parser.add_argument("--chain", action="store_true", help="kill one run directory at every point in turn")
    parser.add_argument("--spec", type=Path, help="spec template ({model}: the tiny model folder, {repo}: the repository)")
    parser.add_argument("--workdir", type=Path, help="keep the run directories here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hone-kill-") as scratch:
        root = args.workdir or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        env = subprocess_env(root / "cache")
        spec_file = write_spec(root, save_tiny_model(root / "tiny-bert"), args.spec)
        reference, seconds = reference_run(spec_file, root, env)
        events = len(event_lines(reference)) - 1
        points = plan(args.points, events, args.seed)
        if args.chain:
            trials = chain(spec_file, root, reference, points, env, events)
        else:
            trials = independent(spec_file, root, reference, points, env)
        print(report(trials, "chain" if args.chain else "independent", seconds, events))
        if not all(t.survived and t.same_metrics for t in trials if t.killed):
            raise SystemExit(1)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
