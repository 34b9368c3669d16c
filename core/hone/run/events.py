"""The run's append-only event log, and dispatch of events to callbacks."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hone.errors import ComponentError, HoneError

EVENTS = (
    "run_start", "stage_start", "epoch_start", "step_end", "evaluation_done",
    "checkpoint_saved", "epoch_end", "stage_end", "run_end", "run_failed", "batch_skipped",
    "compression_point", "compression_done",
)


class EventLog:
    """Writes ``events.jsonl`` (one JSON object a line) and forwards each event to callbacks."""

    def __init__(self, path: Path | None, callbacks: Sequence[tuple[str, Any]] = (), origins: Mapping[str, str | None] | None = None) -> None:
        self.path = path
        self.callbacks = list(callbacks)  # (component name, callback object)
        self.origins = dict(origins or {})  # component name -> "plugin 'x' (distribution version)"
        if path is not None and path.exists() and path.stat().st_size:
            with path.open("rb+") as handle:
                handle.seek(-1, 2)
                if handle.read(1) != b"\n":  # a line cut short by a crash: end it, so the next event starts its own
                    handle.write(b"\n")

    def emit(self, event: str, **data: Any) -> None:
        assert event in EVENTS, event
        if self.path is not None:
            line = json.dumps({"time": round(time.time(), 3), "event": event, **data}, default=str)
            try:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(line + "\n")
            except OSError as error:
                raise HoneError(f"{self.path}: cannot append the '{event}' event ({error.strerror or error})") from error
        for name, callback in self.callbacks:
            method = getattr(callback, f"on_{event}", None)
            if method is None:
                continue
            try:
                method(event, data)
            except HoneError:
                raise  # a deliberate stop with its own message (e.g. a pruned search trial)
            except Exception as error:
                origin = f" from {self.origins[name]}" if self.origins.get(name) else ""
                raise ComponentError(f"callback '{name}'{origin} failed on {event}: {type(error).__name__}: {error}") from error


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every complete event; a line cut short by a crash is skipped."""
    events = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return events
