"""Run directories written before the open core (the flat core/ of 0ddd11a~1) still resume and still serve.

``data/before-open-core/`` holds what that hone wrote (``generate.py`` says how): an interrupted run and a
finished one of the same spec, and the old ``hone predict``'s answers from the finished one.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hone.run.runner import run
from hone.spec.loading import load_spec

from tests.reproducible import reproducible

FIXTURE = Path(__file__).parent / "data" / "before-open-core"


@pytest.fixture
def old_runs(tmp_path: Path) -> Path:
    root = tmp_path / "before-open-core"
    shutil.copytree(FIXTURE, root)
    for path in root.glob("*/*"):
        if path.name in ("spec.yaml", "events.jsonl"):
            path.write_text(path.read_text().replace("@FIXTURE@", str(root)))
    return root


@pytest.mark.slow
def test_a_run_interrupted_before_the_open_core_resumes_to_the_old_uninterrupted_results(old_runs: Path) -> None:
    spec, host = load_spec(old_runs / "spec.yaml")
    resumed = run(spec, host, out=old_runs / "interrupted", resume=True)
    results = json.loads((resumed / "metrics.json").read_text())
    expected = json.loads((old_runs / "finished" / "metrics.json").read_text())
    params, old_params = results["prune"].pop("params"), expected["prune"].pop("params")
    assert params == {**params, **old_params} and len(params) > len(old_params)  # now with the compressor's defaults
    # every loss, score and size; floats to 1e-6 relative: the old run was written on another CPU, whose fp32 kernels
    # round differently in the last digits (here an Intel Xeon; on an AMD EPYC a loss differs at 1e-7)
    assert differences(as_old(reproducible(results), expected), expected) == []


def differences(new: Any, old: Any, where: str = "") -> list[str]:
    """Where ``new`` differs from ``old``: equal values, floats within 1e-6 of each other (relative) allowed."""
    if isinstance(new, dict) and isinstance(old, dict) and new.keys() == old.keys():
        return [d for key in old for d in differences(new[key], old[key], f"{where}.{key}")]
    if isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
        return [d for i, (a, b) in enumerate(zip(new, old)) for d in differences(a, b, f"{where}[{i}]")]
    if isinstance(new, float) and isinstance(old, float) and math.isclose(new, old, rel_tol=1e-6):
        return []
    return [] if new == old and type(new) is type(old) else [f"{where}: {new!r} != {old!r}"]


def as_old(new: Any, old: Any) -> Any:
    """``new`` cut to the keys ``old`` has: results this hone adds (trainable parameters, latencies) are not compared."""
    if isinstance(new, dict) and isinstance(old, dict):
        return {key: as_old(new[key], old[key]) if key in new else "<missing>" for key in old}
    return new


@pytest.mark.slow
def test_hone_predict_serves_a_model_saved_before_the_open_core_as_it_did(old_runs: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "hone", "predict", str(old_runs / "finished"),
                           "--input", str(old_runs / "predict-input.jsonl")], capture_output=True, text=True, check=True)
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    expected = [json.loads(line) for line in (old_runs / "predict-expected.jsonl").read_text().splitlines()]
    assert [a["tags"] for a in answers] == [e["tags"] for e in expected]
    for got, want in zip(answers, expected):
        assert [(e["type"], e["text"]) for e in got["entities"]] == [(e["type"], e["text"]) for e in want["entities"]]
        assert [e["score"] for e in got["entities"]] == pytest.approx([e["score"] for e in want["entities"]], abs=1e-5)
