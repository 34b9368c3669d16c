"""Trackers as callbacks: a JSONL metrics log (always there), TensorBoard and MLflow (optional extras).

TensorBoard and MLflow are imported when a run builds the callback, never when hone loads its plugins.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hone.errors import HoneError
from hone.hookspecs import hookimpl
from hone.paths import RunFileName, inside_run_dir
from hone.registry import Register


def numbers(values: dict[str, Any] | None) -> dict[str, float]:
    """The scalar entries of an event's metrics (booleans and reports left out)."""
    return {k: float(v) for k, v in (values or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class JsonlLoggerParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filename: RunFileName = Field("metrics.jsonl", description="File name inside the run directory.")


class JsonlLogger:
    """One JSON object per step_end / evaluation_done / compression_point event: stage, epoch, step, split, metrics."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _write(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")

    def on_step_end(self, event: str, data: dict[str, Any]) -> None:
        self._write({"stage": data.get("stage"), "epoch": data.get("epoch"), "step": data.get("step"), "split": "train",
                     "metrics": numbers(data.get("metrics"))})

    def on_evaluation_done(self, event: str, data: dict[str, Any]) -> None:
        self._write({"stage": data.get("stage"), "epoch": data.get("epoch"), "step": data.get("step"),
                     "split": data.get("split"), "metrics": numbers(data.get("metrics"))})

    def on_compression_point(self, event: str, data: dict[str, Any]) -> None:
        self._write({"stage": data.get("stage"), "split": "compression", "metrics": numbers(data)})


def jsonl_logger(params: JsonlLoggerParams, run_dir: Path) -> JsonlLogger:
    """Log scalar metrics as JSON lines in the run directory."""
    return JsonlLogger(inside_run_dir(Path(run_dir), params.filename))


class TensorBoardParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    log_dir: RunFileName = Field("tensorboard", description="Folder inside the run directory for the event files.")
    flush_secs: int = Field(30, gt=0, description="How often the writer flushes to disk.")


def summary_writer_class() -> Any:
    """torch's SummaryWriter (needs the tensorboard package), else tensorboardX's."""
    try:
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter
    except ImportError:
        pass
    try:
        from tensorboardX import SummaryWriter

        return SummaryWriter
    except ImportError:
        raise HoneError("callback 'tensorboard' needs TensorBoard: pip install 'hone-ml[tensorboard]' "
                        "(or tensorboardX)") from None


class TensorBoardTracker:
    """Scalars under ``<stage>/<split>/<name>`` against the stage's step; the run's facts as text."""

    def __init__(self, log_dir: Path, flush_secs: int) -> None:
        self.writer = summary_writer_class()(log_dir=str(log_dir), flush_secs=flush_secs)
        self.points: dict[str, int] = {}

    def _scalars(self, prefix: str, values: dict[str, float], step: int | None) -> None:
        for name, value in values.items():
            self.writer.add_scalar(f"{prefix}/{name}", value, global_step=step)

    def on_run_start(self, event: str, data: dict[str, Any]) -> None:
        facts = {k: v for k, v in data.items() if k != "labels"}
        self.writer.add_text("run", "\n".join(f"- **{k}**: {v}" for k, v in facts.items()))

    def on_step_end(self, event: str, data: dict[str, Any]) -> None:
        self._scalars(f"{data.get('stage')}/train", numbers(data.get("metrics")), data.get("step"))

    def on_evaluation_done(self, event: str, data: dict[str, Any]) -> None:
        self._scalars(f"{data.get('stage')}/{data.get('split')}", numbers(data.get("metrics")), data.get("step"))

    def on_compression_point(self, event: str, data: dict[str, Any]) -> None:
        stage = str(data.get("stage"))
        point = self.points[stage] = self.points.get(stage, -1) + 1
        self._scalars(f"{stage}/compression", numbers(data), point)

    def on_stage_end(self, event: str, data: dict[str, Any]) -> None:
        self.writer.flush()

    def on_run_end(self, event: str, data: dict[str, Any]) -> None:
        self.writer.close()

    def on_run_failed(self, event: str, data: dict[str, Any]) -> None:
        self.writer.add_text("run", f"**{data.get('status')}**: {data.get('error')}")
        self.writer.close()


def tensorboard(params: TensorBoardParams, run_dir: Path) -> TensorBoardTracker:
    """Log scalars to TensorBoard event files in the run directory (extra: hone-ml[tensorboard])."""
    return TensorBoardTracker(inside_run_dir(Path(run_dir), params.log_dir), params.flush_secs)


class MlflowParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tracking_uri: str | None = Field(None, description="MLflow tracking URI; default: $MLFLOW_TRACKING_URI, else an SQLite "
                                     "database in the run directory (mlflow.db, artifacts in mlartifacts/).")
    experiment: str = Field("hone", description="Experiment name (created if missing).")
    run_name: str | None = Field(None, description="Default: the spec's name.")
    log_artifacts: bool = Field(True, description="Attach spec.yaml and metrics.json to the MLflow run when it ends.")


class MlflowTracker:
    """An MLflow run per hone run (kept across --resume): parameters, metrics per step, status, artifacts."""

    ID_FILE = "mlflow-run.json"

    def __init__(self, params: MlflowParams, run_dir: Path) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise HoneError("callback 'mlflow' needs MLflow: pip install 'hone-ml[mlflow]'") from None
        self.params, self.run_dir = params, Path(run_dir)
        # MLflow 3 refuses its file store by default: a local SQLite database keeps the run self-contained
        local = f"sqlite:///{(self.run_dir / 'mlflow.db').resolve()}"
        self.client = MlflowClient(tracking_uri=params.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or local)
        self.run_id: str | None = None
        self.points: dict[str, int] = {}

    def _start(self, data: dict[str, Any]) -> str:
        saved = self.run_dir / self.ID_FILE
        if saved.exists():  # a resumed run continues its MLflow run
            run_id = json.loads(saved.read_text())["run_id"]
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        experiment = self.client.get_experiment_by_name(self.params.experiment)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(
            self.params.experiment, artifact_location=(self.run_dir / "mlartifacts").resolve().as_uri())
        run = self.client.create_run(experiment_id, run_name=self.params.run_name or str(data.get("name", "hone")),
                                     tags={"hone.run_dir": str(self.run_dir.resolve())})
        saved.write_text(json.dumps({"run_id": run.info.run_id, "experiment_id": experiment_id}))
        for key in ("device", "precision", "torch", "transformers", "hone"):
            if data.get(key) is not None:
                self.client.log_param(run.info.run_id, key, str(data[key]))
        return run.info.run_id

    def _log(self, prefix: str, values: dict[str, float], step: int | None) -> None:
        if self.run_id is None:
            return
        now = int(time.time() * 1000)
        from mlflow.entities import Metric

        metrics = [Metric(f"{prefix}.{name}", value, now, step or 0) for name, value in values.items()]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def on_run_start(self, event: str, data: dict[str, Any]) -> None:
        self.run_id = self._start(data)

    def on_step_end(self, event: str, data: dict[str, Any]) -> None:
        self._log(f"{data.get('stage')}.train", numbers(data.get("metrics")), data.get("step"))

    def on_evaluation_done(self, event: str, data: dict[str, Any]) -> None:
        self._log(f"{data.get('stage')}.{data.get('split')}", numbers(data.get("metrics")), data.get("step"))

    def on_compression_point(self, event: str, data: dict[str, Any]) -> None:
        stage = str(data.get("stage"))
        point = self.points[stage] = self.points.get(stage, -1) + 1
        self._log(f"{stage}.compression", numbers(data), point)

    def _end(self, status: str) -> None:
        if self.run_id is None:
            return
        if self.params.log_artifacts:
            for name in ("spec.yaml", "metrics.json"):
                if (self.run_dir / name).exists():
                    self.client.log_artifact(self.run_id, str(self.run_dir / name))
        self.client.set_terminated(self.run_id, status=status)

    def on_run_end(self, event: str, data: dict[str, Any]) -> None:
        self._end("FINISHED")

    def on_run_failed(self, event: str, data: dict[str, Any]) -> None:
        self._end("KILLED" if data.get("status") == "interrupted" else "FAILED")


def mlflow(params: MlflowParams, run_dir: Path) -> MlflowTracker:
    """Track the run in MLflow: parameters, metrics, status, artifacts (extra: hone-ml[mlflow])."""
    return MlflowTracker(params, run_dir)


@hookimpl
def register_callbacks(register: Register) -> None:
    register("jsonl-logger", jsonl_logger, JsonlLoggerParams)
    register("tensorboard", tensorboard, TensorBoardParams,
             requires={"tensorboard|tensorboardX": "pip install 'hone-ml[tensorboard]' (or tensorboardX)"})
    register("mlflow", mlflow, MlflowParams, requires={"mlflow": "pip install 'hone-ml[mlflow]'"})
