"""PNG figures of a run: training curves, per-entity-type F1 and confusion matrices.

Figures are drawn on ``Figure`` objects with the Agg canvas, never through pyplot, so the caller's backend is untouched.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import confusion_matrix

DPI = 110


def _new_figure(width: float, height: float) -> Figure:
    """A figure of the given size in inches on a headless Agg canvas."""
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | Path) -> Path:
    """Lay out and write the figure as PNG, creating parent directories; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=DPI)
    return path


def _loss_series(records: Iterable[dict[str, Any]]) -> dict[str, tuple[list[int], list[float]]]:
    """Per task, the steps and training losses of the windows that trained it."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for record in records:
        for task, loss in record.get("loss", {}).items():
            steps, values = series.setdefault(task, ([], []))
            steps.append(record["step"])
            values.append(loss)
    return series


def _headline_series(
    records: Iterable[dict[str, Any]], headlines: dict[str, str]
) -> dict[str, tuple[list[int], list[float]]]:
    """Per task, the steps and headline metric values of the validation evaluations."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for record in records:
        if record.get("split") != "validation":
            continue
        for task, metrics in record.get("eval", {}).items():
            metric = headlines.get(task)
            if metric in metrics:
                steps, values = series.setdefault(task, ([], []))
                steps.append(record["step"])
                values.append(metrics[metric])
    return series


def _draw_series(axes: Axes, series: dict[str, tuple[list[int], list[float]]], empty: str, **style: Any) -> None:
    """One line per task with a legend, or a centred note when there is nothing to draw."""
    for task, (steps, values) in sorted(series.items()):
        axes.plot(steps, values, label=task, **style)
    if series:
        axes.legend()
    else:
        axes.text(0.5, 0.5, empty, ha="center", va="center", transform=axes.transAxes, color="gray")
    axes.grid(True, alpha=0.3)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_training_curves(records: list[dict[str, Any]], headlines: dict[str, str], path: str | Path) -> Path:
    """Training loss and validation headline metric per task over steps, side by side, to judge convergence."""
    figure = _new_figure(12, 4.5)
    loss_axes, dev_axes = figure.subplots(1, 2)
    _draw_series(loss_axes, _loss_series(records), "no training records", marker=".", markersize=4)
    loss_axes.set(title="Training loss", xlabel="step", ylabel="loss")
    dev_series = _headline_series(records, headlines)
    labelled = {f"{task} ({headlines[task]})": points for task, points in dev_series.items()}
    _draw_series(dev_axes, labelled, "no validation records", marker="o")
    dev_axes.set(title="Validation headline metric", xlabel="step", ylabel="metric value")
    return _save(figure, path)


def plot_entity_f1(per_type: dict[str, dict[str, float]], path: str | Path, title: str) -> Path:
    """Horizontal bars of F1 per entity type, labelled with support, to show which types lag."""
    names = list(per_type)
    scores = [per_type[name]["f1-score"] for name in names]
    labels = [f"{name} ({int(per_type[name]['support'])})" for name in names]
    figure = _new_figure(7, max(2.5, 0.45 * len(names) + 1.3))
    axes = figure.subplots()
    bars = axes.barh(labels, scores, color="tab:blue")
    axes.bar_label(bars, labels=[f"{score:.3f}" for score in scores], padding=3)
    axes.invert_yaxis()
    axes.set(title=title, xlabel="F1", xlim=(0, 1.12), ylabel="entity type (support)")
    axes.grid(True, axis="x", alpha=0.3)
    return _save(figure, path)


def plot_confusion_matrix(
    gold: np.ndarray, predicted: np.ndarray, labels: list[str], path: str | Path, title: str
) -> Path:
    """Counts of gold (rows) against predicted (columns) labels, to show which classes are confused."""
    if len(gold) != len(predicted):
        raise ValueError(f"gold and predicted differ in length: {len(gold)} gold vs {len(predicted)} predicted")
    counts = confusion_matrix(gold, predicted, labels=range(len(labels)))
    size = max(4.0, 0.6 * len(labels) + 2.5)
    figure = _new_figure(size + 1, size)
    axes = figure.subplots()
    image = axes.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=axes).ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _annotate_counts(axes, counts)
    ticks = range(len(labels))
    axes.set_xticks(ticks, labels, rotation=45, ha="right", rotation_mode="anchor")
    axes.set_yticks(ticks, labels)
    axes.set(title=title, xlabel="predicted", ylabel="gold")
    return _save(figure, path)


def _annotate_counts(axes: Axes, counts: np.ndarray) -> None:
    """Write each cell's count, white on dark cells so it stays legible."""
    threshold = counts.max() / 2
    for (row, column), count in np.ndenumerate(counts):
        colour = "white" if count > threshold else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=colour)
