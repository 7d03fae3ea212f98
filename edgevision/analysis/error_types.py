"""TIDE's error types of each detection and object, and the oracle that fixes one type.

TIDE (Bolya et al., ECCV 2020, the ``tidecv`` package) sorts every false positive and missed
object into one type. At a foreground IoU threshold ``t_f`` (the AP's own threshold) and a
background threshold ``t_b`` = 0.1, after COCO's matching, a detection that is not a true
positive is, in this order:

- ``localisation``: right class, best IoU with an object of its class in ``[t_b, t_f)``.
  Fix: move the box onto that object (dropped if the object is already detected).
- ``classification``: IoU >= ``t_f`` with an object of another class.
  Fix: relabel it with that object's class (dropped if the object is already detected).
- ``duplicate``: right class, IoU >= ``t_f`` with an object a higher-scoring detection matched.
  Fix: drop it.
- ``background``: IoU < ``t_b`` with every object (or the image has none). Fix: drop it.
- ``both``: the rest: wrong class and best IoU in ``[t_b, t_f)``. Fix: drop it.

An object is ``missed`` when no detection matches it and no classification or localisation
error points at it. Fix: take it out of the ground truth, which is tidecv's "reduce the number
of objects": no detection matched it, so removing it changes no match, only the recall's
denominator. When several errors of the fixed types point at one object, the highest-scoring one
is repaired and the others are dropped (two repaired boxes would make a duplicate).

Matching follows COCOeval, not tidecv's own loop, so that the true positives here are those of
``val``'s AP: per image and class, detections in decreasing score (the first 100, as COCO
counts) each take the unmatched object of their class with the highest IoU >= ``t_f``; one that
finds none but covers a crowd or VOC difficult object (COCO's intersection over the detection's
area >= ``t_f``) is ignored, neither right nor wrong. Those objects are never missed or repaired.
Where tidecv differs, on purpose: it picks the best candidate of an object over both repairable
types even when fixing one (a classification error then stays wrong when a localisation error
scores higher); and its background test is IoU <= ``t_b`` and its localisation test
IoU <= ``t_f`` (the same except at exact ties).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from edgevision.core.errors import ConfigError
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.eval.detections import (
    ImageDetections,
    check_detections,
    ground_truth_boxes,
    ignored_ground_truth,
)
from edgevision.ops.boxes import box_area, box_iou_numpy

TYPES = ("classification", "localisation", "both", "duplicate", "background", "missed")
FALSE_POSITIVE_TYPES = TYPES[:-1]
BACKGROUND_IOU = 0.1  # TIDE's t_b
MAX_DETECTIONS = 100  # COCOeval counts the 100 highest-scoring detections per image and class
DEFINITIONS = {
    "classification": "IoU >= t_f with an object of another class; fix: take that class",
    "localisation": "right class, t_b <= IoU < t_f; fix: the object's box",
    "both": "wrong class and t_b <= IoU < t_f; fix: drop",
    "duplicate": "right class, IoU >= t_f, object already matched by a higher score; fix: drop",
    "background": "IoU < t_b (0.1) with every object; fix: drop",
    "missed": "object no detection matches or points at; fix: remove it from the ground truth",
}
REPAIRED_TYPES = ("classification", "localisation")
_DROPPED = ("both", "duplicate", "background")


@dataclass(frozen=True)
class ImageErrors:
    """What each detection and object of one image is, at one IoU threshold.

    Attributes:
        detection_type: (K,) str per detection: "tp", one of the five false-positive
            :data:`TYPES`, "ignored" (on a crowd or difficult object) or "uncounted" (beyond
            the 100 highest-scoring detections of its class in the image).
        gt_index: (K,) int64 index into ``record.boxes`` of the object a detection matched
            (tp, ignored) or its error points at; -1 for background and uncounted.
        iou: (K,) IoU with that object (intersection over the detection's area for an ignored
            one); for background, the highest IoU with any object; 0 for uncounted.
        matched: (N,) bool, objects a true positive matched.
        missed: (N,) bool, TIDE's missed objects.
        ignored: (N,) bool, crowd or difficult objects (neither matched nor missed).
    """

    detection_type: np.ndarray
    gt_index: np.ndarray
    iou: np.ndarray
    matched: np.ndarray
    missed: np.ndarray
    ignored: np.ndarray


def classify_errors(
    record_set: RecordSet,
    detections: Sequence[Mapping],
    iou_threshold: float = 0.5,
    background_threshold: float = BACKGROUND_IOU,
) -> list[ImageErrors]:
    """TIDE's type of every detection and object, per image, with COCO's matching.

    Args:
        record_set: ground truth; crowd and difficult objects are ignored, as COCO AP does.
        detections: one ``{"boxes", "scores", "classes"}`` mapping per record (original pixels).
        iou_threshold: ``t_f``, the IoU at which a detection matches an object.
        background_threshold: ``t_b``, below which a detection overlaps nothing.
    """
    if not 0.0 < background_threshold <= iou_threshold <= 1.0:
        raise ConfigError(
            f"background_threshold={background_threshold}, iou_threshold={iou_threshold}: "
            "need 0 < background_threshold <= iou_threshold <= 1 (TIDE uses 0.1 and 0.5)"
        )
    checked = check_detections(detections, len(record_set), record_set.num_classes)
    return [
        _classify_image(record, image_detections, iou_threshold, background_threshold)
        for record, image_detections in zip(record_set.records, checked, strict=True)
    ]


def _classify_image(
    record: ImageRecord, detections: ImageDetections, threshold: float, background: float
) -> ImageErrors:
    gt_boxes, ignored = ground_truth_boxes(record), ignored_ground_truth(record)
    ious = box_iou_numpy(detections.boxes, gt_boxes)  # (K, N)
    same_class = detections.classes[:, None] == record.labels[None, :]
    order = _counted_order(detections.scores, detections.classes)
    det_gt, matched = _coco_match(ious, same_class & ~ignored, order, threshold)
    kinds, refs, overlap = _error_types(ious, same_class, ~ignored, matched, threshold, background)
    crowd_gt, crowd_overlap = _crowd_match(detections.boxes, gt_boxes, same_class & ignored)
    on_crowd = (det_gt < 0) & (crowd_overlap >= threshold)
    crowd = np.flatnonzero(on_crowd)
    kinds[crowd], refs[crowd], overlap[crowd] = "ignored", crowd_gt[crowd], crowd_overlap[crowd]
    true = np.flatnonzero(det_gt >= 0)
    kinds[true], refs[true], overlap[true] = "tp", det_gt[true], ious[true, det_gt[true]]
    counted = np.zeros(len(kinds), dtype=bool)
    counted[order] = True
    kinds[~counted], refs[~counted], overlap[~counted] = "uncounted", -1, 0.0
    pointed = refs[np.isin(kinds, REPAIRED_TYPES)]
    missed = ~ignored & ~matched & ~np.isin(np.arange(len(gt_boxes)), pointed)
    return ImageErrors(kinds, refs, overlap, matched, missed, ignored)


def _counted_order(scores: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Detection indices in COCO's order (score down, stable), at most 100 per class."""
    order = np.argsort(-scores, kind="stable")  # COCOeval sorts with mergesort, also stable
    ordered_classes = classes[order]
    counted = np.zeros(len(order), dtype=bool)
    for cls in np.unique(ordered_classes):
        counted[np.flatnonzero(ordered_classes == cls)[:MAX_DETECTIONS]] = True
    return order[counted]


def _coco_match(
    ious: np.ndarray, candidates: np.ndarray, order: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval's greedy matching: (K,) matched object per detection (-1 none), (N,) matched.

    ``candidates[k, n]`` says object ``n`` may match detection ``k`` (same class, not ignored).
    Detections in ``order`` take the unmatched candidate with the highest IoU >= threshold; of
    equal IoUs COCOeval keeps the last object, and so does this.
    """
    reachable = candidates & (ious >= threshold)
    det_gt = np.full(len(ious), -1, dtype=np.int64)
    matched = np.zeros(ious.shape[1], dtype=bool)
    for det in order[reachable[order].any(axis=1)].tolist():  # skip detections that reach none
        options = np.flatnonzero(reachable[det] & ~matched)
        if options.size:
            values = ious[det, options]
            det_gt[det] = options[np.flatnonzero(values == values.max())[-1]]
            matched[det_gt[det]] = True
    return det_gt, matched


def _crowd_match(
    det_boxes: np.ndarray, gt_boxes: np.ndarray, candidates: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per detection, the candidate ignored object it covers most, and COCO's crowd overlap.

    COCO measures a crowd region by intersection over the detection's area; the intersection
    comes back from the IoU as ``iou * (a + b) / (1 + iou)``, since ``union = a + b - inter``.
    """
    ious = box_iou_numpy(det_boxes, gt_boxes)
    det_area, gt_area = box_area(det_boxes)[:, None], box_area(gt_boxes)[None, :]
    intersection = ious * (det_area + gt_area) / (1.0 + ious)
    overlap = np.where(candidates, intersection / np.maximum(det_area, 1e-12), 0.0)
    return _last_argmax(overlap)


def _last_argmax(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K,) column of each row's maximum (the last of ties, as COCOeval) and that maximum."""
    if values.shape[1] == 0:
        return np.full(len(values), -1, dtype=np.int64), np.zeros(len(values))
    last = values.shape[1] - 1 - values[:, ::-1].argmax(axis=1)
    return last.astype(np.int64), values[np.arange(len(values)), last]


def _error_types(
    ious: np.ndarray,
    same_class: np.ndarray,
    regular: np.ndarray,
    matched: np.ndarray,
    threshold: float,
    background: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TIDE's type, object and IoU of every detection, as if each were a false positive."""
    size = len(ious)
    kinds = np.full(size, "both", dtype="<U14")
    if not regular.any():  # no object to be near: everything is background (tidecv's first test)
        kinds[:] = "background"
        return kinds, np.full(size, -1, dtype=np.int64), np.zeros(size)
    same = _best(ious, same_class & regular)
    other = _best(ious, ~same_class & regular)
    used = _best(ious, same_class & regular & matched)
    overall = _best(ious, np.broadcast_to(regular, ious.shape))
    refs, overlap = overall[0].copy(), overall[1].copy()
    rules = (  # TIDE's order, applied backwards so that the earliest rule that holds wins
        ("background", overall[1] < background, (np.full(size, -1), overall[1])),
        ("duplicate", used[1] >= threshold, used),
        ("classification", other[1] >= threshold, other),
        ("localisation", (same[1] >= background) & (same[1] < threshold), same),
    )
    for name, hit, (gt, value) in rules:
        kinds[hit], refs[hit], overlap[hit] = name, gt[hit], value[hit]
    return kinds, refs, overlap


def _best(ious: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K,) object with the highest IoU among ``mask`` per detection (first of ties) and IoU."""
    values = np.where(mask, ious, 0.0)
    best = values.argmax(axis=1)
    return best.astype(np.int64), values[np.arange(len(values)), best]


def fix_errors(
    record_set: RecordSet,
    detections: Sequence[Mapping],
    errors: Sequence[ImageErrors],
    types: Iterable[str],
) -> tuple[RecordSet, list[dict]]:
    """TIDE's oracle: the ground truth and detections as if the ``types`` errors were not made.

    Args:
        record_set, detections: what ``errors`` was classified from.
        errors: :func:`classify_errors` output at the threshold being fixed.
        types: names from :data:`TYPES`.

    Returns:
        the records (missed objects removed when "missed" is fixed) and detections (uncounted
        ones dropped too, so that no new detection enters COCO's 100 per class).
    """
    chosen = set(types)
    if not chosen <= set(TYPES):
        raise ConfigError(f"unknown error types {sorted(chosen - set(TYPES))}; use {TYPES}")
    checked = check_detections(detections, len(record_set), record_set.num_classes)
    fixed = [
        _fix_image(record, image_detections, image_errors, chosen)
        for record, image_detections, image_errors in zip(
            record_set.records, checked, errors, strict=True
        )
    ]
    records = record_set.records
    if "missed" in chosen:
        records = [record.select(~e.missed) for record, e in zip(records, errors, strict=True)]
    return record_set.with_records(records), fixed


def _fix_image(
    record: ImageRecord, detections: ImageDetections, errors: ImageErrors, chosen: set[str]
) -> dict:
    kinds = errors.detection_type
    repaired = chosen & set(REPAIRED_TYPES)
    keep = ~np.isin(kinds, ["uncounted", *(chosen & set(_DROPPED)), *repaired])
    boxes, classes = detections.boxes.copy(), detections.classes.copy()
    gt_boxes, taken = ground_truth_boxes(record), errors.matched.copy()
    order = np.argsort(-detections.scores, kind="stable")  # the best score is repaired first
    for det in order[np.isin(kinds[order], list(repaired))].tolist():
        gt = int(errors.gt_index[det])
        if taken[gt]:
            continue  # a second repair of one object would be a duplicate: it stays dropped
        taken[gt], keep[det] = True, True
        if kinds[det] == "classification":
            classes[det] = record.labels[gt]
        else:
            boxes[det] = gt_boxes[gt]
    return {"boxes": boxes[keep], "scores": detections.scores[keep], "classes": classes[keep]}
