"""``edgevision data stats``: what is in a dataset, before training on it.

Counts per class, objects per image, and the box size / aspect distributions in *original* image
pixels, with the COCO size buckets (small < 32^2 <= medium < 96^2 <= large, by box area) that COCO
AP reports separately. Plots use matplotlib's object API on an Agg canvas, so nothing global (the
pyplot backend, rcParams) changes and importing this module has no side effects.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgevision.core.fileio import atomic_write, atomic_write_text
from edgevision.core.records import RecordSet
from edgevision.ops.boxes import box_area, order_corners, xyxy_to_xywh

PERCENTILES = (0, 5, 25, 50, 75, 95, 100)
SMALL_AREA, LARGE_AREA = 32**2, 96**2  # COCO bucket limits, square pixels


def _all_boxes(record_set: RecordSet) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) xyxy of every box (swapped corners put in order, as written otherwise), (N,) labels."""
    boxes = [r.boxes for r in record_set.records]
    labels = [r.labels for r in record_set.records]
    if not boxes:
        return np.zeros((0, 4), np.float64), np.zeros((0,), np.int64)
    return order_corners(np.concatenate(boxes).astype(np.float64)), np.concatenate(labels)


def _per_image(record_set: RecordSet) -> np.ndarray:
    return np.array([r.num_objects for r in record_set.records], dtype=np.int64)


def _distribution(values: np.ndarray) -> dict | None:
    """Mean and :data:`PERCENTILES` of ``values``; None when there are none."""
    if len(values) == 0:
        return None
    points = np.percentile(values, PERCENTILES)
    summary = {f"p{p}": round(float(v), 4) for p, v in zip(PERCENTILES, points, strict=True)}
    summary["mean"] = round(float(values.mean()), 4)
    return summary


def _class_rows(record_set: RecordSet, labels: np.ndarray) -> list[dict]:
    num_classes = record_set.num_classes
    image_of_box = np.repeat(np.arange(len(record_set)), _per_image(record_set))
    known = (labels >= 0) & (labels < num_classes)
    image_class_pairs = np.unique(image_of_box[known] * num_classes + labels[known])
    instances = np.bincount(labels[known], minlength=num_classes)
    images = np.bincount(image_class_pairs % num_classes, minlength=num_classes)
    return [
        {"name": name, "instances": int(instances[i]), "images": int(images[i])}
        for i, name in enumerate(record_set.class_names)
    ]


def _size_buckets(areas: np.ndarray) -> dict:
    counts = {
        "small": int((areas < SMALL_AREA).sum()),
        "medium": int(((areas >= SMALL_AREA) & (areas < LARGE_AREA)).sum()),
        "large": int((areas >= LARGE_AREA).sum()),
    }
    total = max(len(areas), 1)
    return {name: {"count": n, "share": round(n / total, 4)} for name, n in counts.items()}


def dataset_stats(record_set: RecordSet) -> dict:
    """Summary statistics of a dataset split (plain JSON-ready values).

    Returns:
        dict with ``num_images``, ``num_objects``, ``num_classes``, ``images_without_objects``,
        ``classes`` (list of ``{name, instances, images}`` in class order), ``objects_per_image``
        (``mean``, ``max``, ``histogram``: list where entry k counts images with k objects),
        ``box_width``, ``box_height``, ``box_area``, ``box_aspect`` (width / height), ``image_width``
        and ``image_height`` (each ``{p0 .. p100, mean}`` or None when empty), and ``coco_sizes``
        (``small``/``medium``/``large`` -> ``{count, share}``). Labels outside the class list
        count in the totals but in no class row.
    """
    boxes, labels = _all_boxes(record_set)
    wh, areas = xyxy_to_xywh(boxes)[:, 2:], box_area(boxes)
    positive = (wh > 0).all(axis=1)  # aspect is undefined for a zero-width or zero-height box
    per_image = _per_image(record_set)
    return {
        "num_images": len(record_set),
        "num_objects": int(len(wh)),
        "num_classes": record_set.num_classes,
        "images_without_objects": int((per_image == 0).sum()),
        "classes": _class_rows(record_set, labels),
        "objects_per_image": {
            "mean": round(float(per_image.mean()), 4) if len(per_image) else 0.0,
            "max": int(per_image.max()) if len(per_image) else 0,
            "histogram": np.bincount(per_image).tolist(),
        },
        "box_width": _distribution(wh[:, 0]),
        "box_height": _distribution(wh[:, 1]),
        "box_area": _distribution(areas),
        "box_aspect": _distribution(wh[positive, 0] / wh[positive, 1]),
        "image_width": _distribution(np.array([r.width for r in record_set.records], float)),
        "image_height": _distribution(np.array([r.height for r in record_set.records], float)),
        "coco_sizes": _size_buckets(areas),
    }


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned first column, right-aligned others, widths from the longest cell."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [str(row[0]).ljust(widths[0])]
        cells += [str(cell).rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return lines


def format_stats(stats: dict) -> str:
    """The :func:`dataset_stats` dict as the aligned text table ``data stats`` prints."""
    per_image = stats["objects_per_image"]
    lines = [
        f"images {stats['num_images']}  objects {stats['num_objects']}  "
        f"classes {stats['num_classes']}  images without objects {stats['images_without_objects']}",
        f"objects per image: mean {per_image['mean']:.2f}  max {per_image['max']}",
        "",
    ]
    total = max(stats["num_objects"], 1)
    class_rows = [
        [c["name"], c["instances"], f"{100 * c['instances'] / total:.1f}%", c["images"]]
        for c in stats["classes"]
    ]
    lines += _table(["class", "instances", "share", "images"], class_rows) + [""]
    keys = [f"p{p}" for p in PERCENTILES] + ["mean"]
    size_rows = [
        [name.replace("box_", "box ").replace("image_", "image "), *_cells(stats[name], keys)]
        for name in (
            "box_width",
            "box_height",
            "box_area",
            "box_aspect",
            "image_width",
            "image_height",
        )
    ]
    lines += _table(["pixels", *keys], size_rows) + [""]
    sizes = stats["coco_sizes"]
    lines.append(
        "COCO sizes (box area): "
        + "  ".join(f"{k} {v['count']} ({100 * v['share']:.1f}%)" for k, v in sizes.items())
    )
    histogram = per_image["histogram"]
    lines.append(
        "objects per image: " + "  ".join(f"{k}:{n}" for k, n in enumerate(histogram) if n)
    )
    return "\n".join(lines) + "\n"


def _cells(summary: dict | None, keys: list[str]) -> list[str]:
    if summary is None:
        return ["-"] * len(keys)
    return [f"{summary[k]:.4g}" for k in keys]


def _save_figure(figure, path: Path) -> Path:
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=100))


def _new_axes(title: str, xlabel: str, ylabel: str):
    # Figure + Agg canvas directly: no pyplot, so no global backend or figure registry is touched.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.8), layout="tight")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return figure, axes


def _plot_class_counts(record_set: RecordSet, labels: np.ndarray, path: Path) -> Path:
    figure, axes = _new_axes("instances per class", "", "instances")
    counts = [int((labels == i).sum()) for i in range(record_set.num_classes)]
    axes.bar(range(len(counts)), counts, tick_label=record_set.class_names)
    axes.tick_params(axis="x", labelrotation=45)
    return _save_figure(figure, path)


def _plot_wh(wh: np.ndarray, path: Path) -> Path:
    figure, axes = _new_axes("box width vs height", "width (px)", "height (px)")
    if len(wh):  # a log axis needs data to place its ticks
        axes.scatter(wh[:, 0], wh[:, 1], s=3, alpha=0.3)
        axes.set(xscale="log", yscale="log")
    return _save_figure(figure, path)


def _plot_area(areas: np.ndarray, path: Path) -> Path:
    figure, axes = _new_axes("box size", "sqrt(box area) (px)", "boxes")
    axes.hist(np.sqrt(areas), bins=50)
    for limit in (32, 96):  # the COCO small / medium / large limits
        axes.axvline(limit, color="red", linestyle="--", linewidth=1)
    return _save_figure(figure, path)


def _plot_aspect(wh: np.ndarray, path: Path) -> Path:
    figure, axes = _new_axes("box aspect", "width / height (log scale)", "boxes")
    ratios = wh[:, 0] / wh[:, 1]
    if len(ratios):  # log-spaced bins so 1:2 and 2:1 get equal room
        axes.hist(ratios, bins=np.geomspace(ratios.min(), ratios.max() * 1.0001, 50))
        axes.set(xscale="log")
        ticks = [t for t in (0.1, 0.2, 0.25, 0.5, 0.75, 1, 1.33, 2, 4, 5, 10) if _within(t, ratios)]
        axes.set_xticks(ticks, labels=[f"{t:g}" for t in ticks])
        axes.minorticks_off()
    return _save_figure(figure, path)


def _within(value: float, values: np.ndarray) -> bool:
    return bool(values.min() <= value <= values.max())


def _plot_per_image(per_image: np.ndarray, path: Path) -> Path:
    figure, axes = _new_axes("objects per image", "objects", "images")
    histogram = np.bincount(per_image)
    axes.bar(range(len(histogram)), histogram)
    return _save_figure(figure, path)


def plot_stats(record_set: RecordSet, out_dir: str | Path) -> list[Path]:
    """Write the five stats plots as PNG files into ``out_dir``.

    Returns:
        paths of ``class_counts.png``, ``box_wh.png`` (log-log scatter), ``box_area.png``
        (histogram of sqrt(area) with the COCO limits), ``box_aspect.png`` and
        ``objects_per_image.png``.
    """
    out_dir = Path(out_dir)
    boxes, labels = _all_boxes(record_set)
    wh = xyxy_to_xywh(boxes)[:, 2:]
    positive = (wh > 0).all(axis=1)  # log axes and ratios need positive sizes
    wh, areas = wh[positive], box_area(boxes)[positive]
    return [
        _plot_class_counts(record_set, labels, out_dir / "class_counts.png"),
        _plot_wh(wh, out_dir / "box_wh.png"),
        _plot_area(areas, out_dir / "box_area.png"),
        _plot_aspect(wh, out_dir / "box_aspect.png"),
        _plot_per_image(_per_image(record_set), out_dir / "objects_per_image.png"),
    ]


def save_stats(record_set: RecordSet, out_dir: str | Path, plots: bool = True) -> list[Path]:
    """``data stats``: write ``stats.json``, ``stats.txt`` and (optionally) the plots, atomically.

    Returns:
        every path written, JSON first.
    """
    out_dir = Path(out_dir)
    stats = dataset_stats(record_set)
    paths = [
        atomic_write_text(out_dir / "stats.json", json.dumps(stats, indent=2) + "\n"),
        atomic_write_text(out_dir / "stats.txt", format_stats(stats)),
    ]
    return paths + (plot_stats(record_set, out_dir) if plots else [])
