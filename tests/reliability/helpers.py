"""Specs, subprocess runs and run-directory checks shared by the reliability tests."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
NER_SAMPLE = REPO / "examples" / "data" / "ner-sample"

# A minimal stage of every stage type hone runs: the run-directory checks run each of them.
# A new stage type (compress, distill, search, ...) must be added here; test_confinement fails until it is.
STAGE_EXAMPLES: dict[str, dict[str, Any]] = {
    "train": {"type": "train", "epochs": 1, "batch_size": 8, "logging_steps": 1, "optimizer": {"name": "adamw", "lr": 3e-3}},
    "evaluate": {"type": "evaluate", "split": "test", "metrics": ["entity-f1", "accuracy"]},
}


def ner_spec(model_dir: Path, **overrides: Any) -> dict[str, Any]:
    """One 8-step train stage and a test evaluation on the shipped NER sample."""
    spec: dict[str, Any] = {
        "name": "reliability",
        "seed": 7,
        "model": str(model_dir),
        "task": {"name": "token-classification", "max_length": 48},
        "data": {
            "reader": "conll",
            "train": str(NER_SAMPLE / "train.txt"),
            "validation": str(NER_SAMPLE / "valid.txt"),
            "test": str(NER_SAMPLE / "test.txt"),
        },
        "stages": [dict(STAGE_EXAMPLES["train"], name="train"), dict(STAGE_EXAMPLES["evaluate"], name="test")],
    }
    spec.update(overrides)
    return spec


def write_spec(directory: Path, spec: dict[str, Any], name: str = "spec.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def write_plugin(directory: Path, name: str, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


def subprocess_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONE_")}
    env.update({"XDG_CACHE_HOME": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}, **extra)
    return env


def hone(tmp_path: Path, *args: str, stdin: str | None = None, timeout: int = 180, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m hone ARGS`` in ``tmp_path``, as a user would run it."""
    return subprocess.run([sys.executable, "-m", "hone", *args], input=stdin, capture_output=True, text=True,
                          env=subprocess_env(tmp_path, **env), cwd=tmp_path, timeout=timeout)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def kill_harness() -> ModuleType:
    """benchmarks/kill_resume.py, whose checks the tests reuse."""
    if str(REPO / "benchmarks") not in sys.path:
        sys.path.insert(0, str(REPO / "benchmarks"))
    return importlib.import_module("kill_resume")
