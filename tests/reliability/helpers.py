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

from tests import runs
from tests.runs import NER_SAMPLE, REPO, write_spec  # noqa: F401 (write_spec: the reliability tests import it from here)

# A minimal stage of every stage type hone runs: the crash/resume and run-directory checks run each of them.
# A new stage type must be added here (test_security's test_every_stage_type_has_a_reliability_example says so).
STAGE_EXAMPLES: dict[str, dict[str, Any]] = {
    "train": {"type": "train", "epochs": 1, "batch_size": 8, "logging_steps": 1, "optimizer": {"name": "adamw", "lr": 3e-3}},
    "evaluate": {"type": "evaluate", "split": "test", "metrics": ["entity-f1", "accuracy"]},
    "distill": {"type": "distill", "epochs": 1, "batch_size": 8, "student": {"layers": [0]}, "distiller": "logits"},
    "compress": {"type": "compress", "compressor": "test-halve"},
    "lm-eval": {"type": "lm-eval", "include_path": str(REPO / "tests" / "hone_plugins" / "lmeval" / "tasks"),
                "tasks": ["tiny_mc", "tiny_gen"], "limit": 4},
    "export": {"type": "export", "exporter": "onnx"},
}
# Stage types whose plugin needs an optional extra (the module it installs): their examples skip where it is absent.
STAGE_EXTRAS = {"export": "onnxruntime"}
# Stage types that score a language model, with the module their extra installs: their examples run on a tiny GPT-2
# with causal-lm data in place of the NER spec, and skip where the extra is absent.
LANGUAGE_MODEL_STAGES = {"lm-eval": "lm_eval"}

# Components the examples need that hone may not ship: plain plugins-dir modules, written beside the spec.
TEST_COMPRESSOR = '''
import torch
from hone.hookspecs import hookimpl


class HalveSmallest:
    def compress(self, model, context):
        zeroed = 0
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, torch.nn.Linear):
                    weight = module.weight
                    mask = weight.abs() <= weight.abs().flatten().kthvalue(max(1, weight.numel() // 2)).values
                    zeroed += int(mask.sum())
                    weight[mask] = 0.0
        return model, {"zeroed": zeroed}


def halve_smallest(params):
    """Zero the smaller half of every Linear layer's weights (a test compressor)."""
    return HalveSmallest()


@hookimpl
def register_compressors(register):
    register("test-halve", halve_smallest)
'''
STAGE_PLUGINS: dict[str, dict[str, str]] = {"compress": {"reliability_compressor": TEST_COMPRESSOR}}


def with_stages(spec: dict[str, Any], directory: Path, *types: str) -> dict[str, Any]:
    """``spec`` running one example stage of each of ``types``, with the plugins they need written to ``directory``."""
    import pytest

    for module in {STAGE_EXTRAS[t] for t in types if t in STAGE_EXTRAS}:
        pytest.importorskip(module, reason=f"{module} (an optional extra) is not installed")
    spec = dict(spec, stages=[dict(STAGE_EXAMPLES[t], name=f"{i}-{t}") for i, t in enumerate(types)])
    if any(t in LANGUAGE_MODEL_STAGES for t in types):
        spec = causal_lm(spec, directory, *(LANGUAGE_MODEL_STAGES[t] for t in types if t in LANGUAGE_MODEL_STAGES))
    for stage_type in types:
        for module, source in STAGE_PLUGINS.get(stage_type, {}).items():
            write_plugin(directory / "reliability-plugins", module, source)
            spec["plugins_dir"] = [str(directory / "reliability-plugins")]
    return spec


def causal_lm(spec: dict[str, Any], directory: Path, *modules: str) -> dict[str, Any]:
    """``spec`` on a tiny random GPT-2 and a few texts (causal-lm; evaluate stages score perplexity)."""
    import pytest
    import torch

    from tests.conftest import save_tiny_model

    for module in modules:
        pytest.importorskip(module, reason=f"{module} (an optional extra) is not installed")
    torch.manual_seed(0)
    model = save_tiny_model(directory / "tiny-gpt2", "gpt2")
    texts = directory / "texts.jsonl"
    blocks = (NER_SAMPLE / "train.txt").read_text().split("\n\n")
    sentences = [" ".join(line.split()[0] for line in block.splitlines())
                 for block in blocks if "-DOCSTART-" not in block]
    texts.write_text("".join(json.dumps({"text": s}) + "\n" for s in sentences[:24] if s))
    stages = [{k: v for k, v in stage.items() if not (stage["type"] == "evaluate" and k == "metrics")}
              for stage in spec["stages"]]
    return dict(spec, model=str(model), task="causal-lm", stages=stages,
                data={"reader": "jsonl", "train": str(texts), "validation": str(texts), "test": str(texts)})


def ner_spec(model_dir: Path, **overrides: Any) -> dict[str, Any]:
    """One 8-step train stage and a test evaluation on the shipped NER sample."""
    stages = [dict(STAGE_EXAMPLES["train"], name="train"), dict(STAGE_EXAMPLES["evaluate"], name="test")]
    return runs.ner_spec(model_dir, **{"name": "reliability", "stages": stages, **overrides})


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
                          env=subprocess_env(tmp_path, **env), cwd=tmp_path, timeout=timeout, check=False)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def kill_harness() -> ModuleType:
    """benchmarks/kill_resume.py, whose checks the tests reuse."""
    if str(REPO / "benchmarks") not in sys.path:
        sys.path.insert(0, str(REPO / "benchmarks"))
    return importlib.import_module("kill_resume")


def checkpoints_in(root: Path) -> Any:
    """A checkpoints folder that saves the way a run does (hone's safetensors model format)."""
    from hone.plugins import load_plugins
    from hone.run.checkpoint import Checkpoints

    host = load_plugins(warn=False)
    return Checkpoints(root, format=host.build("model_format", "safetensors", host))
