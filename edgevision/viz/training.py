"""Training curves from ``results.csv``: one panel per logged column."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from edgevision.core.fileio import atomic_write


def plot_results(csv_path: str | Path, png_path: str | Path) -> Path | None:
    """Plot every numeric column of ``results.csv`` against the epoch; None when there is no data."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None
    columns = [c for c in rows[0] if c != "epoch" and _is_number(rows[-1].get(c, ""))]
    epochs = [float(r["epoch"]) for r in rows]
    cols = min(4, len(columns))
    figure = Figure(figsize=(3.2 * cols, 2.6 * math.ceil(len(columns) / cols)), tight_layout=True)
    for i, column in enumerate(columns):
        axes = figure.add_subplot(math.ceil(len(columns) / cols), cols, i + 1)
        points = [
            (e, float(r[column]))
            for e, r in zip(epochs, rows, strict=True)
            if _is_number(r[column])
        ]
        axes.plot([p[0] for p in points], [p[1] for p in points], marker=".", linewidth=1.2)
        axes.set_title(column, fontsize=9)
        axes.grid(alpha=0.3)
    return atomic_write(png_path, lambda tmp: figure.savefig(tmp, format="png", dpi=90))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True
