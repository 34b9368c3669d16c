"""Report plots as PNG bytes: matplotlib's object API on the Agg canvas, imported only when a plot is drawn."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

Series = Sequence[tuple[float, float]]
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def figure(width: float = 7.0, height: float = 3.2) -> Any:
    """A figure that never touches pyplot or a GUI backend (safe in threads and headless)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _steps_axis(ax: Any) -> None:
    """Whole steps on the x axis (a short run's few steps get no 2.25, 2.5... ticks)."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _boundaries(ax: Any, boundaries: Sequence[tuple[int, str]]) -> None:
    if len(boundaries) < 2:
        return
    for step, name in boundaries:
        ax.axvline(step, color="#999999", linestyle=":", linewidth=1)
        ax.annotate(name, (step, 1), xycoords=("data", "axes fraction"), xytext=(2, -10), textcoords="offset points",
                    fontsize=7, color="#666666")


SPARSE = 30  # a series with at most this many points also draws them: one logged point is a visible dot


def _plot(ax: Any, series: Series, label: str, color: str, marker: str | None = None) -> None:
    xs, ys = zip(*series)
    marker = marker or ("o" if len(xs) <= SPARSE else None)
    ax.plot(xs, ys, label=label, color=color, marker=marker, markersize=4 if len(xs) > 1 else 6, linewidth=1.4)


def training_curves(steps: Mapping[str, Series], evals: Mapping[str, Mapping[str, Series]],
                    boundaries: Sequence[tuple[int, str]]) -> bytes | None:
    """Loss (training, and each evaluated split's) and learning rate against the global step."""
    has_loss = bool(steps.get("loss")) or any(m.get("loss") for m in evals.values())
    has_lr = bool(steps.get("lr"))
    if not has_loss and not has_lr:
        return None
    panels = [p for p, present in (("loss", has_loss), ("lr", has_lr)) if present]
    fig = figure(7.0 if len(panels) == 1 else 10.0, 3.2)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        if panel == "loss":
            if steps.get("loss"):
                _plot(ax, steps["loss"], "train loss", COLORS[0])
            for i, (split, metrics) in enumerate(sorted(evals.items())):
                if metrics.get("loss"):
                    _plot(ax, metrics["loss"], f"{split} loss", COLORS[(i + 1) % len(COLORS)], "o")
            ax.set_title("loss")
            ax.legend(fontsize=8)
        else:
            _plot(ax, steps["lr"], "learning rate", COLORS[2])
            ax.set_title("learning rate")
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        _steps_axis(ax)
        ax.grid(alpha=0.3)
        _boundaries(ax, boundaries)
    return png(fig)


def metric_curves(evals: Mapping[str, Mapping[str, Series]], boundaries: Sequence[tuple[int, str]]) -> bytes | None:
    """Every evaluated metric but the loss against the global step, one line per split and metric."""
    lines = [(f"{split} {name}" if len(evals) > 1 else name, series)
             for split, metrics in sorted(evals.items()) for name, series in sorted(metrics.items())
             if name != "loss" and series]
    if not lines:
        return None
    fig = figure()
    ax = fig.add_subplot()
    for i, (label, series) in enumerate(lines):
        _plot(ax, series, label, COLORS[i % len(COLORS)], "o")
    _steps_axis(ax)
    ax.set_title("validation metrics")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncols=2 if len(lines) > 4 else 1)
    _boundaries(ax, boundaries)
    return png(fig)


def confusion_matrix(labels: Sequence[str], matrix: Sequence[Sequence[float]], title: str) -> bytes:
    """A heatmap of counts, rows normalised for the colour so rare classes still show."""
    import numpy as np

    counts = np.asarray(matrix, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    side = min(10.0, 2.4 + 0.38 * len(labels))
    fig = figure(side + 1.0, side)
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    ax.set_title(title)
    if len(labels) <= 20:
        for r in range(counts.shape[0]):
            for c in range(counts.shape[1]):
                ax.text(c, r, f"{counts[r, c]:g}", ha="center", va="center", fontsize=7,
                        color="white" if shares[r, c] > 0.6 else "black")
    fig.colorbar(image, ax=ax, label="share of the reference row", shrink=0.8)
    return png(fig)


def tradeoff(points: Sequence[Mapping[str, Any]], metric: str, axes: Sequence[tuple[str, str]],
             baseline: float | None = None, threshold: float | None = None, label_key: str | None = None) -> bytes | None:
    """``metric`` against each (key, title) of ``axes``: one panel per measure of size or speed."""
    panels = [(key, title) for key, title in axes
              if sum(isinstance(p.get(key), (int, float)) and isinstance(p.get(metric), (int, float)) for p in points) >= 1]
    if not panels:
        return None
    fig = figure(4.5 * len(panels), 3.4)
    for ax, (key, title) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        shown = [p for p in points if isinstance(p.get(key), (int, float)) and isinstance(p.get(metric), (int, float))]
        scale = 1e6 if key == "size_bytes" else 1.0
        for p in shown:
            inside = p.get("within_budget")
            color = COLORS[2] if inside else COLORS[3] if inside is False else COLORS[0]
            ax.scatter(p[key] / scale, p[metric], color=color, s=36, zorder=3)
            if label_key and p.get(label_key) is not None:
                ax.annotate(str(p[label_key]), (p[key] / scale, p[metric]), xytext=(4, 4), textcoords="offset points", fontsize=7)
        if baseline is not None:
            ax.axhline(baseline, color="#444444", linestyle="--", linewidth=1, label="uncompressed")
        if threshold is not None:
            ax.axhline(threshold, color=COLORS[3], linestyle=":", linewidth=1, label="budget")
        ax.set_xlabel(title)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if baseline is not None or threshold is not None:
            ax.legend(fontsize=7)
    return png(fig)


def layer_sparsity(sparsity: Mapping[str, float]) -> bytes | None:
    """Sparsity of each layer after compression (horizontal bars)."""
    items = [(name, float(v)) for name, v in sparsity.items() if isinstance(v, (int, float))]
    if not items or not any(v for _, v in items):
        return None
    items = items[:80]
    fig = figure(8.0, min(14.0, 1.0 + 0.16 * len(items)))
    ax = fig.add_subplot()
    ax.barh(range(len(items)), [v for _, v in items], color=COLORS[0])
    ax.set_yticks(range(len(items)), [n for n, _ in items], fontsize=6)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("sparsity")
    ax.set_title("sparsity per layer")
    return png(fig)


def history(numbers: Sequence[int], values: Mapping[str, Sequence[float | None]], directions: Mapping[str, str]) -> bytes | None:
    """Each objective per trial with its best-so-far line."""
    shown = {name: vs for name, vs in values.items() if any(v is not None for v in vs)}
    if not shown:
        return None
    fig = figure(5.0 * len(shown), 3.4)
    for i, (ax, (name, vs)) in enumerate(zip(fig.subplots(1, len(shown), squeeze=False)[0], shown.items())):
        pairs = [(n, v) for n, v in zip(numbers, vs) if v is not None]
        ax.scatter([n for n, _ in pairs], [v for _, v in pairs], color=COLORS[i % len(COLORS)], s=20, label="trial", zorder=3)
        best: list[float] = []
        pick = min if directions.get(name) == "minimize" else max
        for _, v in pairs:
            best.append(v if not best else pick(best[-1], v))
        ax.step([n for n, _ in pairs], best, where="post", color="#444444", linewidth=1.2, label="best so far")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("trial")
        ax.set_ylabel(name)
        ax.set_title(f"{name} ({directions.get(name, 'maximize')})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return png(fig)


def pareto_front(xs: Sequence[float], ys: Sequence[float], front: Sequence[bool], names: tuple[str, str],
                 labels: Sequence[str] | None = None) -> bytes:
    """Every trial on two objectives, the Pareto-optimal ones joined up."""
    fig = figure(5.5, 4.0)
    ax = fig.add_subplot()
    ax.scatter([x for x, f in zip(xs, front) if not f], [y for y, f in zip(ys, front) if not f],
               color="#aaaaaa", s=22, label="trial")
    best = sorted((x, y, i) for i, (x, y, f) in enumerate(zip(xs, ys, front)) if f)
    ax.plot([b[0] for b in best], [b[1] for b in best], color=COLORS[3], marker="o", markersize=6, linewidth=1.2,
            label="Pareto front", zorder=3)
    if labels:
        for x, y, i in best:
            ax.annotate(labels[i], (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7)
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title("Pareto front")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return png(fig)


def bars(values: Mapping[str, float], title: str, xlabel: str = "") -> bytes | None:
    """Horizontal bars, largest first (e.g. parameter importances)."""
    items = sorted(((k, float(v)) for k, v in values.items() if isinstance(v, (int, float))), key=lambda kv: -kv[1])
    if not items:
        return None
    fig = figure(6.5, 1.2 + 0.3 * len(items))
    ax = fig.add_subplot()
    ax.barh(range(len(items)), [v for _, v in items], color=COLORS[0])
    ax.set_yticks(range(len(items)), [k for k, _ in items], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return png(fig)


def comparison(runs: Sequence[str], metrics: Mapping[str, Sequence[float | None]],
               measures: Sequence[tuple[str, str, Sequence[float | None]]]) -> bytes | None:
    """Grouped bars of the chosen metrics per run, then the first metric against each measure (size, time, ...)."""
    shown = {m: vs for m, vs in metrics.items() if any(v is not None for v in vs)}
    scatter = [(key, title, vs) for key, title, vs in measures if any(v is not None for v in vs)] if shown else []
    if not shown and not scatter:
        return None
    count = (1 if shown else 0) + len(scatter)
    fig = figure(4.6 * count, 3.6)
    axes = list(fig.subplots(1, count, squeeze=False)[0])
    if shown:
        ax = axes.pop(0)
        width = 0.8 / len(shown)
        for i, (metric, vs) in enumerate(shown.items()):
            ax.bar([r + i * width for r in range(len(runs))], [v if v is not None else 0.0 for v in vs], width,
                   label=metric, color=COLORS[i % len(COLORS)])
        ax.set_xticks([r + 0.4 - width / 2 for r in range(len(runs))], runs, rotation=20, ha="right", fontsize=8)
        ax.set_title("metrics")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7)
    first, first_values = next(iter(shown.items())) if shown else ("", [])
    for ax, (key, title, vs) in zip(axes, scatter):
        for i, run in enumerate(runs):
            if vs[i] is not None and first_values[i] is not None:
                ax.scatter(vs[i], first_values[i], color=COLORS[i % len(COLORS)], s=40, zorder=3)
                ax.annotate(run, (vs[i], first_values[i]), xytext=(4, 4), textcoords="offset points", fontsize=7)
        ax.set_xlabel(title)
        ax.set_ylabel(first)
        ax.set_title(f"{first} vs {title}")
        ax.grid(alpha=0.3)
    return png(fig)
