"""Evaluation plots: per-class precision/recall curves and the confusion matrix; curves and bars
as in-memory PNGs for self-contained pages (``figure_png``).

Figures are built with ``matplotlib.figure.Figure`` on an explicit Agg canvas instead of pyplot:
no global backend switch, no figure registry to leak, safe on a headless server and in threads.
matplotlib is imported inside the functions so importing edgevision costs nothing. PNGs are
written atomically (never a half-written file).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from edgevision.core.fileio import atomic_write


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: str | Path) -> Path:
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png"))


def plot_pr_curves(
    precision: Sequence[np.ndarray],
    recall: Sequence[np.ndarray],
    class_names: Sequence[str],
    path: str | Path,
    ap: Sequence[float] | None = None,
) -> Path:
    """One precision-recall curve per class, AP in the legend.

    Args:
        precision: per class, (D_c,) precision in descending score order (``voc_evaluate``).
        recall: per class, (D_c,) recall in the same order.
        class_names: C names, aligned with the curves.
        path: PNG to write.
        ap: optional per-class AP for the legend (NaN for a class without ground truth).

    Returns:
        ``path``. Classes with an empty curve (no ground truth) are skipped.
    """
    figure = _new_figure(7.0, 5.5)
    axes = figure.add_subplot()
    for k, name in enumerate(class_names):
        if len(recall[k]) == 0:
            continue
        label = name if ap is None else f"{name} {ap[k]:.3f}"
        # The envelope the AP integrates: the best precision at this or any higher recall.
        envelope = np.maximum.accumulate(np.asarray(precision[k])[::-1])[::-1]
        axes.plot(recall[k], envelope, linewidth=1.2, label=label)
    axes.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision")
    finite = [value for value in (ap or []) if np.isfinite(value)]
    title = "precision-recall" + (f" (mAP {np.mean(finite):.3f})" if finite else "")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if axes.lines and len(class_names) <= 30:  # beyond that a legend hides the curves
        axes.legend(loc="lower left", fontsize="small")
    return _save(figure, path)


def plot_confusion_matrix(
    matrix: np.ndarray, class_names: Sequence[str], path: str | Path, normalize: bool = True
) -> Path:
    """Heat map of ``matrix[predicted, true]`` with the background class last.

    Args:
        matrix: (C + 1, C + 1) counts from ``eval.confusion.confusion_matrix``.
        class_names: C names (``"background"`` is appended here).
        path: PNG to write.
        normalize: divide each column by its total, so column ``t`` reads "where objects of
            class ``t`` went" (columns without objects stay 0).

    Returns:
        ``path``.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    names = [*class_names, "background"]
    if matrix.shape != (len(names), len(names)):
        raise ValueError(f"matrix shape {matrix.shape} does not fit {len(class_names)} classes + 1")
    values = matrix / np.maximum(matrix.sum(axis=0, keepdims=True), 1) if normalize else matrix
    side = min(4.0 + 0.45 * len(names), 24.0)
    figure = _new_figure(side + 1.5, side)
    axes = figure.add_subplot()
    image = axes.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    figure.colorbar(image, ax=axes, shrink=0.8)
    ticks = np.arange(len(names))
    axes.set_xticks(ticks, names, rotation=90, fontsize="small")
    axes.set_yticks(ticks, names, fontsize="small")
    axes.set(xlabel="true", ylabel="predicted")
    axes.set_title("confusion matrix" + (" (column-normalised)" if normalize else ""))
    if len(names) <= 30:  # numbers stay legible up to about 30 cells a side
        _annotate_cells(axes, values, normalize)
    return _save(figure, path)


def _annotate_cells(axes, values: np.ndarray, normalize: bool) -> None:
    threshold = values.max() / 2 if values.size else 0
    for (row, col), value in np.ndenumerate(values):
        if value == 0:
            continue
        text = f"{value:.2f}" if normalize else f"{int(value)}"
        color = "white" if value > threshold else "black"
        axes.text(col, row, text, ha="center", va="center", fontsize="x-small", color=color)


def figure_png(figure) -> bytes:
    """A figure as PNG bytes, for embedding in a page instead of writing a file."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def plot_curves(
    x: Sequence[float], series: Mapping[str, Sequence[float]], title: str, xlabel: str = "epoch"
) -> bytes:
    """Small multiples, one panel per series against ``x``, as PNG bytes.

    Args:
        x: (N,) positions shared by every series (the epoch of each ``results.csv`` row).
        series: name -> (N,) values; NaN marks a row where the value was not logged (a
            validation metric under ``val_interval`` > 1) and is left out of that panel.
        title: figure title.
        xlabel: label of the x axis.

    Returns:
        The PNG; one row holds up to four panels.
    """
    from matplotlib.ticker import MaxNLocator

    if not series:
        raise ValueError("plot_curves needs at least one series")
    columns = min(4, len(series))
    rows = -(-len(series) // columns)
    figure = _new_figure(3.2 * columns, 2.4 * rows + 0.4)
    figure.suptitle(title)
    x_values = np.asarray(x, dtype=np.float64)
    for index, (name, values) in enumerate(series.items()):
        axes = figure.add_subplot(rows, columns, index + 1)
        y_values = np.asarray(values, dtype=np.float64)
        logged = np.isfinite(y_values)
        axes.plot(x_values[logged], y_values[logged], marker=".", linewidth=1.2)
        axes.set_title(name, fontsize=9, parse_math=False)  # names come from files: "$" is text
        axes.set_xlabel(xlabel, fontsize=8)
        axes.tick_params(labelsize=7)
        axes.grid(alpha=0.3)
        if np.all(x_values == np.round(x_values)):
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    return figure_png(figure)


def plot_bars(labels: Sequence[str], values: Sequence[float], title: str, xlabel: str) -> bytes:
    """Horizontal bars, first label on top, as PNG bytes (e.g. the AP gained per fixed error)."""
    figure = _new_figure(6.5, 0.9 + 0.32 * max(len(labels), 1))
    axes = figure.add_subplot()
    positions = np.arange(len(labels))
    axes.barh(positions, np.nan_to_num(np.asarray(values, dtype=np.float64)), color="#4c72b0")
    axes.set_yticks(positions, list(labels), fontsize="small", parse_math=False)
    axes.invert_yaxis()
    axes.set(xlabel=xlabel, title=title)
    axes.grid(axis="x", alpha=0.3)
    return figure_png(figure)
