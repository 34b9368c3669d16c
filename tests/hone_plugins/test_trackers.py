"""Tracker callbacks: jsonl-logger always; tensorboard and mlflow where their packages are installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hone.plugins import load_plugins

EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("run_start", {"name": "tiny", "device": "cpu", "precision": "fp32", "torch": "2", "sizes": {"train": 4}, "labels": ["O"]}),
    ("stage_start", {"stage": "train", "type": "train", "total_steps": 2}),
    ("step_end", {"stage": "train", "epoch": 0, "step": 1, "metrics": {"loss": 2.0, "lr": 0.1, "samples_per_s": 9.0}}),
    ("step_end", {"stage": "train", "epoch": 0, "step": 2, "metrics": {"loss": 1.5, "lr": 0.05, "samples_per_s": 9.5}}),
    ("evaluation_done", {"stage": "train", "epoch": 1, "step": 2, "split": "validation",
                         "metrics": {"loss": 1.4, "entity_f1": 0.25, "flag": True}}),
    ("compression_point", {"stage": "prune", "compressor": "magnitude", "sparsity": 0.5, "loss": 1.6, "within_budget": True}),
    ("stage_end", {"stage": "train", "result": {}}),
    ("run_end", {"status": "completed", "metrics": {}}),
]


def build(name: str, run_dir: Path, **params: Any) -> Any:
    return load_plugins(warn=False).build("callback", {"name": name, **params}, run_dir)


def replay(callback: Any) -> None:
    for event, data in EVENTS:
        method = getattr(callback, f"on_{event}", None)
        if method is not None:
            method(event, dict(data))


@pytest.mark.slow  # a fresh interpreter: the test's own imports would hide what plugin loading imports
def test_trackers_are_discovered_without_importing_their_packages() -> None:
    import subprocess
    import sys

    code = ("import sys, hone_plugins.trackers; assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules; "
            "from hone.plugins import load_plugins; h = load_plugins(warn=False); "
            "names = set(h.registries['callback'].names()); "
            "print(sorted(names & {'jsonl-logger','tensorboard','mlflow'}), "
            "[m for m in ('tensorboard','mlflow','tensorboardX','torch.utils.tensorboard') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "['jsonl-logger', 'mlflow', 'tensorboard'] []"


def test_jsonl_logger_writes_one_record_per_metric_event(tmp_path: Path) -> None:
    replay(build("jsonl-logger", tmp_path))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["split"] for r in records] == ["train", "train", "validation", "compression"]
    assert records[1]["metrics"] == {"loss": 1.5, "lr": 0.05, "samples_per_s": 9.5}
    assert records[2]["metrics"] == {"loss": 1.4, "entity_f1": 0.25}  # booleans are not metrics
    assert records[3]["metrics"]["sparsity"] == 0.5


def test_jsonl_logger_refuses_a_file_outside_the_run_directory() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="leaves the run directory"):
        load_plugins(warn=False).registries.get("callback", "jsonl-logger").params.model_validate({"filename": "../x.jsonl"})


def test_tensorboard_writes_readable_scalars(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    replay(build("tensorboard", tmp_path))
    accumulator = EventAccumulator(str(tmp_path / "tensorboard"))
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    assert {"train/train/loss", "train/train/lr", "train/validation/entity_f1", "prune/compression/sparsity"} <= tags
    assert [(e.step, e.value) for e in accumulator.Scalars("train/train/loss")] == [(1, 2.0), (2, 1.5)]


@pytest.mark.slow  # creating MLflow's database takes seconds
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # SQLAlchemy deprecations inside MLflow
def test_mlflow_records_params_metrics_status_and_artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "spec.yaml").write_text("name: tiny\n")
    replay(build("mlflow", run_dir, experiment="hone-test"))
    run_id = json.loads((run_dir / "mlflow-run.json").read_text())["run_id"]
    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["device"] == "cpu"
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "train.train.loss")] == [(1, 2.0), (2, 1.5)]
    assert run.data.metrics["train.validation.entity_f1"] == 0.25
    assert [a.path for a in client.list_artifacts(run_id)] == ["spec.yaml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing written outside the run directory


def test_trackers_follow_a_real_run(tmp_path: Path, tiny_bert: Path) -> None:
    from hone.run.runner import run
    from hone.spec.loading import load_spec

    callbacks: list[Any] = ["jsonl-logger", "csv-logger"]
    try:
        import tensorboard  # noqa: F401

        callbacks.append({"name": "tensorboard"})
    except ImportError:
        pass
    sample = Path(__file__).resolve().parents[2] / "examples" / "data" / "ner-sample"
    spec = {
        "name": "trackers", "model": str(tiny_bert), "task": {"name": "token-classification", "max_length": 48},
        "data": {"reader": "conll", "train": str(sample / "train.txt"), "validation": str(sample / "valid.txt")},
        "callbacks": callbacks,
        "stages": [{"type": "train", "epochs": 1, "batch_size": 16, "logging_steps": 1, "optimizer": {"name": "adamw", "lr": 1e-3}}],
    }
    (tmp_path / "spec.yaml").write_text(json.dumps(spec))
    loaded, host = load_spec(tmp_path / "spec.yaml")
    run_dir = run(loaded, host, out=tmp_path / "run")
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4 + 1  # 60 sentences / 16 = 4 steps, then the validation
    if len(callbacks) == 3:
        assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
