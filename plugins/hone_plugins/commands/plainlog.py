"""The run's story on a stream: one line per stage start, epoch (with its evaluation's metrics) and stage end,
and a line when a stage resumes, stops early or restores its best weights (``hone run`` attaches it)."""

from __future__ import annotations

import time
from typing import Any


class PlainLog:
    """One line per stage start, epoch (with its evaluation's metrics) and stage end on a stream, and a line when a
    stage resumes, stops early or restores its best weights: the run's story, beside progress bars or in a log file."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.loss: dict[str, list[float]] = {}  # the epoch's logged training losses, per stage
        self.evaluated: dict[str, dict[str, Any]] = {}
        self.watched: dict[str, dict[str, Any]] = {}  # the early-stopping state after the stage's last evaluation
        self.started: dict[str, float] = {}

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    @staticmethod
    def _scalars(values: dict[str, Any]) -> str:
        return ", ".join(f"{k} {v:.4g}" for k, v in values.items() if isinstance(v, float) and k not in ("lr", "samples_per_s"))

    def on_stage_start(self, event: str, data: dict[str, Any]) -> None:
        stage = str(data.get("stage"))
        self.started[stage] = time.perf_counter()
        steps = f", {data['total_steps']} steps" if data.get("total_steps") else ""
        if data.get("resumed_at_step"):
            self._line(f"[{stage}] {data.get('type', 'stage')} resumed at step {data['resumed_at_step']}{steps.replace(',', ' of', 1)}")
        else:
            self._line(f"[{stage}] {data.get('type', 'stage')} started{steps}")

    def on_step_end(self, event: str, data: dict[str, Any]) -> None:
        loss = (data.get("metrics") or {}).get("loss")
        if isinstance(loss, float):
            self.loss.setdefault(str(data.get("stage")), []).append(loss)

    def on_evaluation_done(self, event: str, data: dict[str, Any]) -> None:
        self.evaluated[str(data.get("stage"))] = {"split": data.get("split"), **(data.get("metrics") or {})}
        if isinstance(data.get("early_stopping"), dict):
            self.watched[str(data.get("stage"))] = data["early_stopping"]

    def on_epoch_end(self, event: str, data: dict[str, Any]) -> None:
        stage = str(data.get("stage"))
        parts = [f"step {data.get('step')}"]
        if losses := self.loss.pop(stage, None):
            parts.append(f"train loss {sum(losses) / len(losses):.4g}")
        if evaluated := self.evaluated.pop(stage, None):
            parts.append(f"{evaluated.pop('split')}: {self._scalars(evaluated)}")
        if isinstance(data.get("samples_per_s"), (int, float)):
            parts.append(f"{data['samples_per_s']:.1f} samples/s")
        self._line(f"[{stage}] epoch {data.get('epoch')} done: " + " · ".join(parts))
        watch = self.watched.get(stage) or {}
        if watch.get("stop"):
            self._line(f"[{stage}] early stopping: {watch.get('metric')} has not improved on {_number(watch.get('best'))} for "
                       f"{watch.get('bad_evals')} evaluation(s) (patience {watch.get('patience')}); no more epochs")

    def on_compression_point(self, event: str, data: dict[str, Any]) -> None:
        shown = {k: v for k, v in data.items() if k not in ("stage", "compressor")}
        self._line(f"[{data.get('stage')}] tried {', '.join(f'{k} {v}' for k, v in shown.items())}")

    def on_stage_end(self, event: str, data: dict[str, Any]) -> None:
        stage = str(data.get("stage"))
        seconds = time.perf_counter() - self.started.pop(stage, time.perf_counter())
        results = [f"{split}: {self._scalars(values)}" for split, values in (data.get("result") or {}).items()
                   if isinstance(values, dict) and self._scalars(values)]
        result = data.get("result") or {}
        if result.get("restored_best"):
            metric = (self.watched.get(stage) or {}).get("metric", "the watched metric")
            self._line(f"[{stage}] restored the best weights ({metric} {_number(result.get('best'))})")
        self.watched.pop(stage, None)
        self._line(f"[{stage}] done in {seconds:.1f} s" + (" · " + " · ".join(results) if results else ""))

    def on_run_end(self, event: str, data: dict[str, Any]) -> None:
        self._line(f"run {data.get('status', 'completed')}")


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"
