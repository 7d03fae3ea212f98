"""Known label noise, to measure the label-noise finder: corrupt a clean set, then score the finder.

:func:`inject_label_noise` picks disjoint sets of objects (never difficult or crowd ones) and
removes, relabels, loosens or duplicates them, recording each change; :func:`score_finder`
counts how many of the finder's top items point at a recorded change. A benchmark does
``noisy, truth = inject_label_noise(clean)``, runs the model on the images, calls
``find_label_issues(noisy, detections)`` and reports ``score_finder(items, truth)``.

A loosened box has IoU between 0.35 and 0.65 with the original (shifted in a random direction,
grown or shrunk about its centre, then clipped to the image); a duplicate is a copy jittered by
a few percent of its size (IoU >= 0.8 with the original), appended after the image's objects.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgevision.analysis.review_item import KINDS, ReviewItem
from edgevision.core.errors import ConfigError
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.ops.boxes import box_iou_numpy, clip_boxes, xyxy_to_cxcywh

LOOSE_IOU = (0.35, 0.65)  # IoU of a loosened box with its original
DUPLICATE_IOU = 0.8  # a duplicate overlaps its original at least this much
INJECTED_KINDS = ("missing", "wrong_class", "loose", "duplicate")
_TRIES = 20  # attempts to place a loosened box before leaving the object clean


def inject_label_noise(
    record_set: RecordSet,
    remove: float = 0.05,
    relabel: float = 0.05,
    shift: float = 0.05,
    duplicate: float = 0.02,
    seed: int = 0,
) -> tuple[RecordSet, list[dict]]:
    """A noisy copy of ``record_set`` and the list of what was changed (the input is not touched).

    Args:
        record_set: clean labels.
        remove, relabel, shift, duplicate: fraction of the eligible objects (not difficult,
            not crowd) to remove, give another class, loosen, or duplicate; disjoint sets.
        seed: the same seed gives the same noise.

    Returns:
        (noisy record set, truth): one dict per change with ``image_index``, ``object_index``
        (in the noisy record; None for a removed object), ``kind`` ("missing", "wrong_class",
        "loose" or "duplicate"), ``box`` (xyxy as now annotated; the removed box for missing)
        and ``class`` (the class now annotated); wrong_class and loose also hold
        ``true_class`` / ``true_box``. A box that cannot be loosened inside its image is left
        clean and not listed.

    Raises:
        ConfigError: a fraction outside [0, 1], fractions summing above 1, or relabelling a
            set with fewer than two classes.
    """
    fractions = {"missing": remove, "wrong_class": relabel, "loose": shift, "duplicate": duplicate}
    _check_fractions(fractions, record_set)
    rng = np.random.default_rng(seed)
    chosen = _choose_objects(record_set, fractions, rng)
    records, truth = [], []
    for index, record in enumerate(record_set.records):
        noisy, changes = _corrupt(record, index, chosen, record_set, rng)
        records.append(noisy)
        truth += changes
    return record_set.with_records(records), truth


def _check_fractions(fractions: dict[str, float], record_set: RecordSet) -> None:
    wrong = [f"{kind}={value}" for kind, value in fractions.items() if not 0.0 <= value <= 1.0]
    if wrong or sum(fractions.values()) > 1.0:
        raise ConfigError(
            f"noise fractions {fractions} must each lie in [0, 1] and sum to at most 1"
        )
    if fractions["wrong_class"] > 0 and record_set.num_classes < 2:
        raise ConfigError("relabel needs at least two classes; pass relabel=0")


def _choose_objects(record_set: RecordSet, fractions: dict, rng) -> dict[tuple[int, int], str]:
    """(image, object) -> the change it gets, for disjoint random subsets of eligible objects."""
    eligible = [
        (index, obj)
        for index, record in enumerate(record_set.records)
        for obj in range(record.num_objects)
        if not (record.difficult[obj] or record.iscrowd[obj])
    ]
    order = rng.permutation(len(eligible))
    chosen, start = {}, 0
    for kind, fraction in fractions.items():
        count = int(round(fraction * len(eligible)))
        for position in order[start : start + count]:
            chosen[eligible[position]] = kind
        start += count
    return chosen


def _corrupt(record: ImageRecord, index: int, chosen: dict, record_set: RecordSet, rng):
    """One record's noisy copy and its truth entries."""
    boxes, labels = record.boxes.astype(np.float64), record.labels.copy()
    keep, truth, copies = np.ones(record.num_objects, bool), [], []
    names = record_set.class_names
    for obj in range(record.num_objects):
        kind = chosen.get((index, obj))
        if kind == "missing":
            keep[obj] = False
            truth.append(_entry(index, None, kind, boxes[obj], names[labels[obj]]))
        elif kind == "wrong_class":
            true_class = names[labels[obj]]
            labels[obj] = (labels[obj] + rng.integers(1, len(names))) % len(names)
            truth.append(_entry(index, obj, kind, boxes[obj], names[labels[obj]], true_class))
        elif kind == "loose":
            loosened = _loosen(boxes[obj], record.width, record.height, rng)
            if loosened is not None:
                truth.append(
                    _entry(index, obj, kind, loosened, names[labels[obj]], None, boxes[obj])
                )
                boxes[obj] = loosened
        elif kind == "duplicate":
            copies.append(obj)
    new_index = np.cumsum(keep) - 1  # old object index -> index after removals
    truth = [
        t if t["object_index"] is None else {**t, "object_index": int(new_index[t["object_index"]])}
        for t in truth
    ]
    noisy = record.select(keep)
    noisy.boxes, noisy.labels = boxes[keep].astype(np.float32), labels[keep]
    noisy.extra.pop("object_indices", None)  # file positions no longer describe these objects
    for obj in copies:
        copy = _jitter(boxes[obj], record.width, record.height, rng)
        truth.append(_entry(index, noisy.num_objects, "duplicate", copy, names[labels[obj]]))
        noisy = _append(noisy, copy, labels[obj])
    return noisy, truth


def _entry(index, obj, kind, box, name, true_class=None, true_box=None) -> dict:
    entry = {
        "image_index": index,
        "object_index": obj,
        "kind": kind,
        "box": tuple(float(v) for v in box),
        "class": name,
    }
    if true_class is not None:
        entry["true_class"] = true_class
    if true_box is not None:
        entry["true_box"] = tuple(float(v) for v in true_box)
    return entry


def _append(record: ImageRecord, box: np.ndarray, label: int) -> ImageRecord:
    return ImageRecord(
        record.image_path,
        record.width,
        record.height,
        np.concatenate([record.boxes, np.asarray(box, np.float32)[None]]),
        np.concatenate([record.labels, [label]]),
        np.concatenate([record.difficult, [False]]),
        np.concatenate([record.iscrowd, [False]]),
        None,  # keypoints: a duplicate of a pose object has none to copy meaningfully
        record.annotation_path,
        record.image_id,
        dict(record.extra),
    )


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(box_iou_numpy(a[None], b[None])[0, 0])


def _loosen(box: np.ndarray, width: int, height: int, rng) -> np.ndarray | None:
    """A box with IoU in :data:`LOOSE_IOU` to ``box`` inside the image, or None."""
    for _ in range(_TRIES):
        target = rng.uniform(*LOOSE_IOU)
        mode = rng.integers(3)
        if mode == 0:
            candidate = _shifted(box, target, rng.uniform(0, 2 * np.pi))
        else:
            area_ratio = 1 / target if mode == 1 else target  # grow, or shrink, about the centre
            share = rng.uniform(0.25, 0.75)
            scale = np.array([area_ratio**share, area_ratio ** (1 - share)])
            centre, size = xyxy_to_cxcywh(box)[:2], xyxy_to_cxcywh(box)[2:] * scale
            candidate = np.concatenate([centre - size / 2, centre + size / 2])
        candidate = clip_boxes(candidate, width, height)
        if (candidate[2:] > candidate[:2]).all() and LOOSE_IOU[0] <= _iou(
            box, candidate
        ) <= LOOSE_IOU[1]:
            return candidate
    return None


def _shifted(box: np.ndarray, target: float, angle: float) -> np.ndarray:
    """``box`` moved along ``angle`` (in units of its size) until it overlaps itself at ``target``."""
    step = np.array([np.cos(angle), np.sin(angle)]) * (box[2:] - box[:2])
    low, high = 0.0, 2.0  # IoU falls from 1 to 0 as the offset grows: bisect
    for _ in range(40):
        middle = (low + high) / 2
        moved = box + np.tile(step * middle, 2)
        low, high = (middle, high) if _iou(box, moved) > target else (low, middle)
    return box + np.tile(step * low, 2)


def _jitter(box: np.ndarray, width: int, height: int, rng) -> np.ndarray:
    """A near copy of ``box`` (IoU >= :data:`DUPLICATE_IOU`); the exact copy when none fits."""
    size = np.tile(box[2:] - box[:2], 2)
    for _ in range(_TRIES):
        candidate = clip_boxes(box + rng.normal(0, 0.03, 4) * size, width, height)
        if (candidate[2:] > candidate[:2]).all() and _iou(box, candidate) >= DUPLICATE_IOU:
            return candidate
    return box.copy()


def score_finder(
    items: Sequence[ReviewItem], truth: Sequence[dict], top: int = 100, iou: float = 0.5
) -> dict:
    """Precision and recall per kind among the first ``top`` items.

    An item is a hit when an unused truth entry has its kind, its image and a box (``box``,
    or ``true_box``) at IoU >= ``iou`` with the item's box or suggested box; each truth entry
    counts once.

    Returns:
        ``{kind: {"flagged", "hits", "injected", "precision", "recall"}}`` for every kind in
        :data:`~edgevision.analysis.review_item.KINDS` plus "all"; precision is None when
        nothing of the kind was flagged, recall None when nothing was injected.
    """
    counts = {kind: {"flagged": 0, "hits": 0, "injected": 0} for kind in (*KINDS, "all")}
    for entry in truth:
        counts[entry["kind"]]["injected"] += 1
        counts["all"]["injected"] += 1
    used: set[int] = set()
    for item in list(items)[:top]:
        hit = _match(item, truth, used, iou)
        for kind in (item.kind, "all"):
            counts[kind]["flagged"] += 1
            counts[kind]["hits"] += hit is not None
        if hit is not None:
            used.add(hit)
    for values in counts.values():
        values["precision"] = values["hits"] / values["flagged"] if values["flagged"] else None
        values["recall"] = values["hits"] / values["injected"] if values["injected"] else None
    return counts


def _match(item: ReviewItem, truth: Sequence[dict], used: set[int], iou: float) -> int | None:
    """Index of the best unused truth entry the item points at, or None."""
    mine = [np.asarray(b, np.float64) for b in (item.box, item.suggested_box) if b is not None]
    best, best_iou = None, iou
    for position, entry in enumerate(truth):
        if position in used or entry["kind"] != item.kind:
            continue
        if entry["image_index"] != item.image_index:
            continue
        theirs = [entry["box"]] + ([entry["true_box"]] if "true_box" in entry else [])
        overlap = max(_iou(a, np.asarray(b, np.float64)) for a in mine for b in theirs)
        if overlap >= best_iou:
            best, best_iou = position, overlap
    return best
