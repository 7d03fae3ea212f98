"""Where the AP is lost: TIDE's error types, each priced by re-running the COCO evaluator.

The types and their oracle fixes are defined in :mod:`edgevision.analysis.error_types` (and
:data:`DEFINITIONS`). ``ΔAP`` of a type = AP with only that type fixed - baseline AP. Every AP
comes from ``val``'s COCO evaluator (:func:`edgevision.eval.coco.coco_evaluate` /
:func:`~edgevision.eval.coco.coco_precision`) run on the fixed detections, so the baseline is
exactly what ``val`` prints. ``ΔAP50`` classifies at ``t_f`` = 0.5 and reads AP50;
``ΔAP50-95`` is the mean over COCO's ten thresholds ``t`` of (AP_t after the fixes classified at
``t_f = t``) - AP_t, where tidecv reports ΔAP at its one threshold only. Per class and per COCO
size (objects < 32², < 96², larger) the same fixed evaluations are read at that class or area.

Two more differences from tidecv: it scores a class whose every object is missed as 0 after the
fix (no objects left), while here that class (or class and size) keeps its baseline AP, which is
0 too unless size ranges re-match; and it clamps negative ΔAP to 0, while here ΔAP is reported
as computed (the oracle fixes cannot lower COCO's AP, up to exact score or IoU ties).

At the operating confidence (detections scoring >= ``conf``, IoU 0.5) the same rules count false
positives per type, missed objects and false negatives (every unmatched object, missed or
pointed at); an image's cost is its false positives plus false negatives, the wrong boxes a user
of the model sees there.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from edgevision.analysis.error_types import (
    DEFINITIONS,
    FALSE_POSITIVE_TYPES,
    REPAIRED_TYPES,
    TYPES,
    ImageErrors,
    classify_errors,
    fix_errors,
)
from edgevision.core.errors import ConfigError
from edgevision.core.fileio import atomic_write_text
from edgevision.core.records import RecordSet
from edgevision.eval.coco import (
    AREA_NAMES,
    coco_evaluate,
    coco_precision,
    image_file_names,
    resolve_backend,
)
from edgevision.eval.detections import check_detections

__all__ = [
    "DEFINITIONS",
    "TYPES",
    "ImageErrors",
    "classify_errors",
    "error_breakdown",
    "fix_errors",
    "format_error_breakdown",
    "write_error_breakdown",
]

SHORT_NAMES = dict(zip(TYPES, ("cls", "loc", "both", "dupe", "bkg", "miss"), strict=True))
OPERATING_IOU = 0.5  # threshold of the counts at the operating confidence


def error_breakdown(
    record_set: RecordSet,
    detections: Sequence[Mapping],
    conf: float = 0.25,
    top_images: int = 16,
    backend: str = "auto",
) -> dict:
    """ΔAP per error type (overall, per class, per size), counts and worst images at ``conf``.

    Args:
        record_set: ground truth (difficult objects ignored, as ``val`` does).
        detections: one ``{"boxes", "scores", "classes"}`` mapping per record (original pixels),
            ideally at a low score threshold, as for ``val``.
        conf: operating confidence of the counts and the worst images.
        top_images: how many worst images to list.
        backend: COCO evaluator, as in :func:`~edgevision.eval.coco.coco_evaluate`.

    Returns:
        ``baseline`` (``mAP50``, ``mAP50-95``: ``coco_evaluate``'s own numbers),
        ``baseline_per_class`` / ``baseline_per_size`` (``ap50``, ``ap50_95``), ``delta``
        ({type: {``ap50``, ``ap50_95``}}), ``per_class`` ({class name: delta-like}),
        ``per_size`` ({"small", "medium", "large": delta-like}), ``counts`` (false positives per
        type, missed, ``false_negatives``, ``true_positives`` at ``conf``), ``worst_images``,
        ``conf``, ``definitions``, ``iou_thresholds`` and ``backend``. NaN where a class or size
        has no object.
    """
    if not 0.0 <= conf <= 1.0:
        raise ConfigError(f"conf={conf}; it must lie in [0, 1]")
    if top_images < 0:
        raise ConfigError(f"top_images={top_images}; use 0 or more")
    name = resolve_backend(backend)
    checked = [
        {"boxes": d.boxes, "scores": d.scores, "classes": d.classes}
        for d in check_detections(detections, len(record_set), record_set.num_classes)
    ]
    coco = coco_evaluate(record_set, checked, backend=name)
    base = coco_precision(record_set, checked, backend=name)
    thresholds = base["iou_thresholds"]
    base_ap = _average_precision(base["precision"])  # (T, K, A)
    deltas = _fixed_deltas(record_set, checked, thresholds, base_ap, name)
    iou50 = int(np.flatnonzero(np.isclose(thresholds, 0.5))[0])
    sizes = AREA_NAMES[1:]
    return {
        "baseline": {"mAP50": coco["mAP50"], "mAP50-95": coco["mAP50-95"]},
        "baseline_per_class": dict(
            zip(record_set.class_names, _per_class(base_ap, iou50), strict=True)
        ),
        "baseline_per_size": {s: _summary(base_ap[:, :, a], iou50) for a, s in _areas(sizes)},
        "delta": {kind: _summary(deltas[kind][:, :, 0], iou50) for kind in TYPES},
        "per_class": _per_class_deltas(deltas, record_set.class_names, iou50),
        "per_size": {
            size: {kind: _summary(deltas[kind][:, :, a], iou50) for kind in TYPES}
            for a, size in _areas(sizes)
        },
        **_operating_point(record_set, checked, conf, top_images),
        "conf": conf,
        "definitions": dict(DEFINITIONS),
        "iou_thresholds": [float(t) for t in thresholds],
        "backend": name,
    }


def _fixed_deltas(
    record_set: RecordSet, detections: list[dict], thresholds, base_ap: np.ndarray, backend: str
) -> dict[str, np.ndarray]:
    """{type: (T, K, A) AP_t with that type fixed at t_f = t, minus AP_t}; NaN where undefined.

    A type with no error at a threshold is not re-evaluated: its fixed AP is the baseline, so
    its ΔAP is exactly 0. A class and area left without objects (all missed) keeps its baseline.
    """
    errors = [classify_errors(record_set, detections, t) for t in thresholds.tolist()]
    deltas = {}
    for kind in TYPES:
        fixed = base_ap.copy()
        for group in _fix_groups(errors, kind):
            fixed_set, fixed_detections = fix_errors(
                record_set, detections, errors[group[0]], [kind]
            )
            precision = coco_precision(
                fixed_set, fixed_detections, backend=backend, iou_thresholds=thresholds[group]
            )["precision"]
            fixed[group] = _average_precision(precision)
        emptied = np.isnan(fixed) & ~np.isnan(base_ap)
        fixed[emptied] = base_ap[emptied]
        deltas[kind] = fixed - base_ap
    return deltas


def _fix_groups(errors: list[list[ImageErrors]], kind: str) -> list[list[int]]:
    """Threshold indices grouped by identical fixes of ``kind`` (none where it has no error).

    COCOeval matches each threshold on its own, so one evaluation of a fix at all thresholds of
    its group prices them all (background errors, for one, rarely change with the threshold).
    """
    groups: dict[bytes, list[int]] = {}
    for index, image_errors in enumerate(errors):
        if any(_count(e, kind) for e in image_errors):
            key = b"".join(_fix_key(e, kind) for e in image_errors)
            groups.setdefault(key, []).append(index)
    return list(groups.values())


def _fix_key(errors: ImageErrors, kind: str) -> bytes:
    """What :func:`fix_errors` reads for ``kind`` in one image, as bytes."""
    if kind == "missed":
        return errors.missed.tobytes()
    hit = errors.detection_type == kind
    if kind not in REPAIRED_TYPES:
        return hit.tobytes()
    return hit.tobytes() + errors.gt_index[hit].tobytes() + errors.matched.tobytes()


def _average_precision(precision: np.ndarray) -> np.ndarray:
    """(T, R, K, A) COCO precision -> (T, K, A) AP, NaN where the class has no object."""
    ap = precision.mean(axis=1)
    ap[(precision <= -1).any(axis=1)] = np.nan
    return ap


def _mean(values: np.ndarray) -> float:
    """Mean over the defined (non-NaN) entries, as COCO's summary averages; NaN if none."""
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else math.nan


def _summary(values: np.ndarray, iou50: int) -> dict:
    """(T, K) per threshold and class -> {"ap50", "ap50_95"} averaged over classes."""
    per_threshold = [_mean(row) for row in values]
    return {"ap50": per_threshold[iou50], "ap50_95": _mean(np.asarray(per_threshold))}


def _per_class(values: np.ndarray, iou50: int) -> list[dict]:
    """(T, K, A) -> per class {"ap50", "ap50_95"} at area "all"."""
    return [
        {"ap50": float(values[iou50, k, 0]), "ap50_95": _mean(values[:, k, 0])}
        for k in range(values.shape[1])
    ]


def _per_class_deltas(deltas: dict, class_names: list[str], iou50: int) -> dict:
    per_type = {kind: _per_class(values, iou50) for kind, values in deltas.items()}
    return {name: {kind: per_type[kind][k] for kind in TYPES} for k, name in enumerate(class_names)}


def _areas(sizes: Sequence[str]) -> list[tuple[int, str]]:
    return [(AREA_NAMES.index(size), size) for size in sizes]


def _count(errors: ImageErrors, kind: str) -> int:
    if kind == "missed":
        return int(errors.missed.sum())
    return int((errors.detection_type == kind).sum())


def _operating_point(
    record_set: RecordSet, detections: list[dict], conf: float, top_images: int
) -> dict:
    """Counts per type at ``conf`` (IoU 0.5) and the images with the most wrong boxes."""
    kept = [{key: value[d["scores"] >= conf] for key, value in d.items()} for d in detections]
    errors = classify_errors(record_set, kept, OPERATING_IOU)
    rows = []
    for index, (file, image_errors) in enumerate(
        zip(image_file_names(record_set), errors, strict=True)
    ):
        counts = {kind: _count(image_errors, kind) for kind in TYPES}
        counts["false_negatives"] = int((~image_errors.ignored & ~image_errors.matched).sum())
        counts["true_positives"] = _count(image_errors, "tp")
        cost = sum(counts[kind] for kind in FALSE_POSITIVE_TYPES) + counts["false_negatives"]
        rows.append({"index": index, "file": file, "cost": cost, **counts})
    totals = {key: sum(row[key] for row in rows) for key in (*TYPES, "false_negatives")}
    totals["true_positives"] = sum(row["true_positives"] for row in rows)
    worst = sorted((row for row in rows if row["cost"] > 0), key=lambda row: -row["cost"])
    return {"counts": totals, "worst_images": worst[:top_images]}


def format_error_breakdown(breakdown: dict) -> str:
    """The breakdown as fixed-width tables for the terminal and the metrics text file."""
    baseline, counts = breakdown["baseline"], breakdown["counts"]
    lines = [
        f"Where the AP is lost (TIDE error types; COCO evaluator {breakdown['backend']})",
        f"baseline mAP50 {baseline['mAP50']:.4f}  mAP50-95 {baseline['mAP50-95']:.4f}",
        "ΔAP = AP with only that type fixed - baseline; counts at conf "
        f"{breakdown['conf']:g}, IoU {OPERATING_IOU:g}",
        "",
        f"{'type':<16}{'ΔAP50':>9}{'ΔAP50-95':>10}{'count':>8}",
    ]
    for kind in TYPES:
        delta = breakdown["delta"][kind]
        lines.append(
            f"{kind:<16}{_cell(delta['ap50'])}{_cell(delta['ap50_95'], 10)}{counts[kind]:>8}"
        )
    lines.append(f"{'false negatives':<35}{counts['false_negatives']:>8}")
    lines.append(f"{'true positives':<35}{counts['true_positives']:>8}")
    lines += _type_table("ΔAP50-95 per class", breakdown["per_class"])
    lines += _type_table(
        "ΔAP50-95 per size (COCO: small < 32², medium < 96²)", breakdown["per_size"]
    )
    lines += _worst_table(breakdown["worst_images"], breakdown["conf"])
    return "\n".join(lines)


def _cell(value: float, width: int = 9) -> str:
    return f"{'-':>{width}}" if value is None or math.isnan(value) else f"{value:>{width}.4f}"


def _type_table(title: str, rows: Mapping[str, Mapping]) -> list[str]:
    width = max([16, *(len(str(name)) + 2 for name in rows)])
    lines = ["", title, f"{'':<{width}}" + "".join(f"{SHORT_NAMES[k]:>9}" for k in TYPES)]
    for name, values in rows.items():
        cells = "".join(_cell(values[kind]["ap50_95"]) for kind in TYPES)
        lines.append(f"{str(name):<{width}}{cells}")
    return lines


def _worst_table(rows: list[dict], conf: float) -> list[str]:
    if not rows:
        return ["", f"no false positive or false negative at conf {conf:g}"]
    header = "".join(f"{SHORT_NAMES[k]:>6}" for k in FALSE_POSITIVE_TYPES)
    lines = ["", f"Images that cost the most (false positives + false negatives at conf {conf:g})"]
    lines.append(f"{'index':>6}{'cost':>6}{header}{'FN':>6}  file")
    for row in rows:
        cells = "".join(f"{row[k]:>6}" for k in FALSE_POSITIVE_TYPES)
        lines.append(
            f"{row['index']:>6}{row['cost']:>6}{cells}{row['false_negatives']:>6}  {row['file']}"
        )
    return lines


def write_error_breakdown(breakdown: dict, run_dir: Path) -> list[Path]:
    """``errors.json`` (NaN written as null) and ``errors.txt`` in ``run_dir``, atomically."""
    run_dir = Path(run_dir)
    text = json.dumps(_json_ready(breakdown), indent=2, allow_nan=False)
    return [
        atomic_write_text(run_dir / "errors.json", text + "\n"),
        atomic_write_text(run_dir / "errors.txt", format_error_breakdown(breakdown) + "\n"),
    ]


def _json_ready(value):
    """Plain JSON values: numpy to Python, NaN and infinities to None (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_json_ready(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
