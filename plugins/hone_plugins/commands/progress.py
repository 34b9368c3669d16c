"""Progress bars (rich) for ``hone run`` on a terminal, and the bar that shows nothing."""

from __future__ import annotations

from typing import Any


class NoProgress:
    """The bar of a run without progress bars (``ctx.progress`` is None)."""

    def __init__(self, *_: Any, **__: Any) -> None:
        pass

    def advance(self, loss: float | None = None) -> None:
        pass

    def close(self) -> None:
        pass


class RichProgress:
    """One bar: steps, loss, throughput, ETA."""

    def __init__(self, description: str, total: int, completed: int = 0) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), transient=False,
        )
        self._task = self._progress.add_task(description, total=total, completed=completed, loss="-", rate="")
        self._progress.start()

    def advance(self, loss: float | None = None) -> None:
        fields: dict[str, Any] = {}
        if loss is not None:
            fields["loss"] = f"{loss:.4f}"
        task = self._progress.tasks[0]
        if task.speed:
            fields["rate"] = f"{task.speed:.1f} batch/s"
        self._progress.update(self._task, advance=1, **fields)

    def close(self) -> None:
        self._progress.stop()


def terminal_bars(quiet: bool) -> type[RichProgress] | None:
    """The progress bars for ``run()``: rich bars on a terminal unless ``quiet``, else none."""
    import sys

    return None if quiet or not sys.stderr.isatty() else RichProgress
