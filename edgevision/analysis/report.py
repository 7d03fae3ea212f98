"""One self-contained HTML page per run: settings, curves, metrics, errors, label review, speed.

A run folder collects files from several commands (``train``: ``args.yaml``, ``results.csv``;
``val``: ``metrics.json``, ``per_class.json``, plots; the analysis commands: ``errors.json``,
``label_review.csv``; ``bench``: ``speed.json``). The report renders a section for each file that
exists and skips the others, so it works for every task and needs no change when a task writes
fewer files. Data of unknown layout (JSON rows, dicts of counts) is shown as generic tables, so a
new field appears without code here. The page embeds everything (images as data URIs, plots drawn
here from ``results.csv``) and opens offline. Torch-free: it runs next to an exported model.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml

from edgevision.core.errors import DataError
from edgevision.core.fileio import atomic_write_text
from edgevision.viz.html import (
    any_table,
    data_uri,
    details,
    escape,
    figure,
    image_uri,
    mapping_table,
    note,
    page,
    preformatted,
    records_table,
)
from edgevision.viz.plots import plot_bars, plot_curves

REPORT_NAME = "report.html"
# Where val outputs sit: in the folder itself (a ``val`` run) or in its ``val/`` (a training run).
SEARCH_FOLDERS = (".", "val")
TABLE_ROWS = 50  # rows shown from long lists (label review, worst images); the file has them all
SETTINGS_ROWS = 18  # per column of the settings table
MAX_OTHER_IMAGES = 12
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SUMMARY_SETTINGS = ("task", "model", "data", "epochs", "imgsz")


class _RunFiles:
    """Finds a run's files in the folder or its ``val/``, reads each once, remembers what was shown."""

    def __init__(self, root: Path):
        self.root = root
        self.shown: set[Path] = set()
        self._cache: dict[Path, object] = {}

    def find(self, name: str) -> Path | None:
        for folder in SEARCH_FOLDERS:
            path = self.root / folder / name
            if path.is_file():
                return path
        return None

    def load(self, name: str) -> tuple[Path, object] | tuple[None, None]:
        """(path, parsed content) of a ``.json``/``.yaml``/``.csv`` file, or (None, None)."""
        path = self.find(name)
        if path is None:
            return None, None
        if path not in self._cache:
            self._cache[path] = _parse(path)
        return path, self._cache[path]

    def image(self, name: str, caption: str) -> str | None:
        path = self.find(name)
        if path is None:
            return None
        self.shown.add(path)
        return figure(image_uri(path), caption)


def _parse(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            return json.loads(text)
        if path.suffix == ".yaml":
            return yaml.safe_load(text)
        return list(csv.DictReader(text.splitlines()))
    except json.JSONDecodeError as e:
        raise DataError(path, f"not valid JSON ({e.msg})", "write it again", line=e.lineno) from e
    except (yaml.YAMLError, csv.Error, UnicodeDecodeError) as e:
        raise DataError(path, f"unreadable ({e})", "write it again or delete it") from e


def write_run_report(run_dir: str | Path, title: str | None = None) -> Path:
    """Write ``run_dir/report.html``, one offline page about the run, and return its path.

    Args:
        run_dir: a training run folder (``runs/train/exp``) or a val run folder; val outputs
            are looked up in the folder itself, then in its ``val/``.
        title: page title; the folder name by default.

    Returns:
        The report's path. The write is atomic: a reader never sees half a page.

    Raises:
        DataError: the folder does not exist, holds no run outputs, or a file in it is corrupt.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(run_dir, "no such run folder", "pass the folder train or val printed")
    files = _RunFiles(run_dir)
    sections = []
    for section_id, heading, build in SECTIONS:
        body = build(files)
        if body is not None:
            sections.append((section_id, heading, body))
    if not sections:
        raise DataError(
            run_dir, "no run outputs found (args.yaml, results.csv, metrics.json, ...)",
            "pass the folder train or val printed",
        )  # fmt: skip
    html = page(title or run_dir.resolve().name, sections, _subtitle(files))
    return atomic_write_text(run_dir / REPORT_NAME, html)


def _subtitle(files: _RunFiles) -> str:
    _, settings = files.load("args.yaml")
    settings = settings if isinstance(settings, Mapping) else {}
    named = [f"{key} {settings[key]}" for key in SUMMARY_SETTINGS if key in settings]
    return " · ".join([*named, str(files.root.resolve())])


def _settings(files: _RunFiles) -> str | None:
    path, settings = files.load("args.yaml")
    if path is None:
        return None
    if not isinstance(settings, Mapping):
        return any_table(settings, "setting")
    return mapping_table(settings, "setting", max_rows=SETTINGS_ROWS) + note(f"from {path.name}")


def _curves(files: _RunFiles) -> str | None:
    path, rows = files.load("results.csv")
    if path is None:
        return files.image("results.png", "training curves (results.png)")
    epochs, groups = _curve_groups(rows)
    if not epochs or not any(groups.values()):
        return note(f"{path.name} holds no finished epoch yet")
    return "".join(
        figure(data_uri(plot_curves(epochs, series, heading), "image/png"), f"{heading} per epoch")
        for heading, series in groups.items()
        if series
    )


def _curve_groups(rows: list[dict]) -> tuple[list[float], dict[str, dict[str, list[float]]]]:
    """(epochs, {"losses"|"metrics"|"learning rate and time": {column: values}}) from CSV rows.

    Every numeric column lands in exactly one group; a blank cell (not logged that epoch) is NaN.
    """
    columns = {name: _numbers(rows, name) for name in (rows[0] if rows else {})}
    columns = {name: values for name, values in columns.items() if values is not None}
    epochs = columns.pop("epoch", [float(index + 1) for index in range(len(rows))])
    groups: dict[str, dict[str, list[float]]] = {
        "losses": {},
        "metrics": {},
        "learning rate and time": {},
    }
    for name, values in columns.items():
        groups[_column_kind(name)][name] = values
    return epochs, groups


def _numbers(rows: list[dict], column: str) -> list[float] | None:
    """The column as floats (NaN for blanks), or None when it is not numeric."""
    values = []
    for row in rows:
        text = (row.get(column) or "").strip()
        try:
            values.append(float(text) if text else math.nan)
        except ValueError:
            return None
    return values if any(math.isfinite(value) for value in values) else None


def _column_kind(name: str) -> str:
    """Loss, metric or schedule, from the column name alone (every task logs its own names)."""
    lower = name.lower()
    if "loss" in lower:
        return "losses"
    if lower.startswith(("lr", "time", "mem")):
        return "learning rate and time"
    metric_words = ("acc", "top", "map", "ap", "precision", "recall", "f1", "iou", "oks")
    if lower.startswith("train_") and not any(word in lower for word in metric_words):
        return "losses"  # train_cls, train_box, train_ce: the terms the loop logs
    return "metrics"


def _metrics(files: _RunFiles) -> str | None:
    path, metrics = files.load("metrics.json")
    printout = files.find("metrics.txt")
    if path is None and printout is None:
        return None
    parts = []
    if isinstance(metrics, Mapping):
        flat = {key: value for key, value in metrics.items() if not isinstance(value, Mapping)}
        parts += [mapping_table(flat, "metric")] if flat else []  # nested ones: per-class section
    elif path is not None:
        parts.append(any_table(metrics, "metric"))
    if printout is not None:
        text = printout.read_text(encoding="utf-8", errors="replace")
        parts.append(details(f"printout ({printout.name})", preformatted(text)))
    return "".join(parts)


def _per_class(files: _RunFiles) -> str | None:
    path, rows = files.load("per_class.json")
    if path is not None:
        return any_table(rows, "class")
    _, metrics = files.load("metrics.json")
    if not isinstance(metrics, Mapping):
        return None
    # Classification writes {"precision": {class: value}, "recall": {...}}: one row per class.
    by_class: dict[str, dict] = {}
    for metric, values in metrics.items():
        if isinstance(values, Mapping):
            for name, value in values.items():
                by_class.setdefault(str(name), {"class": name})[metric] = value
    return records_table(list(by_class.values())) if by_class else None


def _pr_curves(files: _RunFiles) -> str | None:
    return files.image("pr_curves.png", "precision-recall per class")


def _confusion_matrix(files: _RunFiles) -> str | None:
    return files.image("confusion_matrix.png", "confusion matrix")


def _errors(files: _RunFiles) -> str | None:
    path, report = files.load("errors.json")
    if path is None:
        return None
    if not isinstance(report, Mapping):
        return any_table(report)
    parts = [_delta_table(report["delta"])] if isinstance(report.get("delta"), Mapping) else []
    rest = {key: value for key, value in report.items() if key not in ("delta", "worst_images")}
    scalars = {key: value for key, value in rest.items() if not isinstance(value, dict | list)}
    if scalars:
        parts.append(mapping_table(scalars, "setting"))
    for key, value in rest.items():
        if key not in scalars:
            parts.append(f"<h3>{escape(key.replace('_', ' '))}</h3>" + any_table(value, key))
    return "".join(parts)


def _delta_table(delta: Mapping) -> str:
    """ΔAP per error type (the AP gained if that error were fixed), largest gain first, + bars."""
    rows = [
        {"error type": name, **(values if isinstance(values, Mapping) else {"ap": values})}
        for name, values in delta.items()
    ]
    rows = [row for row in rows if len(row) > 1]
    if not rows:
        return ""
    key = "ap50_95" if "ap50_95" in rows[0] else list(rows[0])[1]
    rows.sort(key=lambda row: (math.isnan(_number(row.get(key))), -_number(row.get(key))))
    labelled = [{_delta_label(name): value for name, value in row.items()} for row in rows]
    chart = plot_bars(
        [str(row["error type"]) for row in rows],
        [_number(row.get(key)) for row in rows],
        "AP gained by fixing each error type",
        _delta_label(key),
    )
    return (
        "<h3>AP gained by fixing each error type</h3>"
        + records_table(labelled)
        + figure(data_uri(chart, "image/png"), f"{_delta_label(key)} per error type")
    )


def _delta_label(key: str) -> str:
    """``ap50_95`` -> ``ΔAP50-95``; other columns keep their name."""
    return "Δ" + key.upper().replace("_", "-") if key.startswith("ap") else key


def _number(value: object) -> float:
    """A sortable float: NaN for anything that is not a number."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if is_number else math.nan


def _worst_images(files: _RunFiles) -> str | None:
    sheet = files.image("worst_images.jpg", "worst images: predictions and ground truth")
    _, report = files.load("errors.json")
    worst = report.get("worst_images") if isinstance(report, Mapping) else None
    parts = [sheet] if sheet else []
    if isinstance(worst, list) and worst:
        parts.append(_first_rows(worst, "errors.json worst_images"))
    return "".join(parts) or None


def _label_review(files: _RunFiles) -> str | None:
    sheet = files.image("label_review.jpg", "label review: suspected label errors")
    path, rows = files.load("label_review.csv")
    parts = [sheet] if sheet else []
    if path is not None:
        parts.append(_first_rows(rows, path.name) if rows else note(f"{path.name} is empty"))
    return "".join(parts) or None


def _first_rows(rows: list, source: str) -> str:
    shown = rows[:TABLE_ROWS]
    body = any_table(shown)
    if len(rows) > len(shown):
        body += note(f"first {len(shown)} of {len(rows)} rows; all of them are in {source}")
    return body


def _speed(files: _RunFiles) -> str | None:
    path, speed = files.load("speed.json")
    return None if path is None else any_table(speed, "engine")


def _other_images(files: _RunFiles) -> str | None:
    """Plots no section above claims (another task's curves, say), so nothing written is hidden."""
    found = sorted(
        path
        for folder in SEARCH_FOLDERS
        for path in (files.root / folder).glob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    )
    skipped = {files.find("results.png")} if files.find("results.csv") else set()
    images = [path for path in found if path not in files.shown and path not in skipped]
    if not images:
        return None
    shown = images[:MAX_OTHER_IMAGES]
    parts = [figure(image_uri(path), path.relative_to(files.root).as_posix()) for path in shown]
    if len(images) > len(shown):
        parts.append(note(f"{len(images) - len(shown)} more images in the folder, not shown"))
    return "".join(parts)


# (section id, heading, builder): page order. ``_other_images`` goes last: it shows what is left.
SECTIONS: tuple[tuple[str, str, Callable[[_RunFiles], str | None]], ...] = (
    ("settings", "Settings", _settings),
    ("curves", "Training curves", _curves),
    ("metrics", "Metrics", _metrics),
    ("per-class", "Per class", _per_class),
    ("pr-curves", "Precision-recall curves", _pr_curves),
    ("confusion-matrix", "Confusion matrix", _confusion_matrix),
    ("errors", "Error breakdown", _errors),
    ("worst-images", "Worst images", _worst_images),
    ("label-review", "Label review", _label_review),
    ("speed", "Speed", _speed),
    ("other-images", "Other images", _other_images),
)
