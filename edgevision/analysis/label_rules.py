"""The label-noise finder's rules, one function each; the rules and thresholds are described in
:mod:`edgevision.analysis.label_noise`, which calls :func:`image_issues` once per image.

Every rule reads the same per-image matrices (:class:`ImageContext`): IoU and same-class masks
between the N annotations and K detections, computed once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgevision.analysis.review_item import ReviewItem, item_file
from edgevision.core.records import RecordSet
from edgevision.eval.detections import ImageDetections, ground_truth_boxes, ignored_ground_truth
from edgevision.ops.boxes import box_area, box_iou_numpy

_COVERED = 0.5  # share of a detection's area inside an ignored annotation that silences it


@dataclass(frozen=True)
class Rules:
    """The thresholds of ``find_label_issues`` (its arguments, described in its module)."""

    conf: float
    match_iou: float
    wrong_class_iou: float
    comparable: float
    loose_iou: tuple[float, float]
    duplicate_iou: float
    unsupported_iou: float
    unsupported_conf: float
    unsupported_weight: float


@dataclass
class ImageContext:
    """One image's annotations and detections with the matrices every rule reads.

    ``iou`` and ``same`` are (N annotations, K detections); ``judged`` marks annotations that are
    neither difficult nor crowd.
    """

    index: int
    file: str
    boxes: np.ndarray
    labels: np.ndarray
    judged: np.ndarray
    crowd: np.ndarray
    detections: ImageDetections
    iou: np.ndarray
    same: np.ndarray
    confident: np.ndarray
    class_names: list[str]

    def item(self, kind, obj, score, suggested_class, suggested_box, note) -> ReviewItem:
        box = None if obj is None else tuple(float(v) for v in self.boxes[obj])
        return ReviewItem(
            file=self.file,
            image_index=self.index,
            object_index=None if obj is None else int(obj),
            kind=kind,
            score=float(np.clip(score, 0.0, 1.0)),
            class_name="" if obj is None else self.class_names[int(self.labels[obj])],
            box=box,
            suggested_class="" if suggested_class is None else self.class_names[suggested_class],
            suggested_box=None if suggested_box is None else tuple(float(v) for v in suggested_box),
            note=note,
        )


def prepare_image(
    record_set: RecordSet, index: int, found: ImageDetections, rules: Rules
) -> ImageContext:
    """The context of record ``index`` with its checked detections ``found``."""
    record = record_set.records[index]
    boxes = ground_truth_boxes(record)
    return ImageContext(
        index=index,
        file=item_file(record_set.root, record.image_path),
        boxes=boxes,
        labels=record.labels,
        judged=~ignored_ground_truth(record),
        crowd=record.iscrowd,
        detections=found,
        iou=box_iou_numpy(boxes, found.boxes),
        same=record.labels[:, None] == found.classes[None, :],
        confident=found.scores >= rules.conf,
        class_names=record_set.class_names,
    )


def image_issues(image: ImageContext, rules: Rules, kinds: set[str]) -> list[ReviewItem]:
    """The items of one image for the rules named in ``kinds`` (loose runs first: its
    suggestions are not reported as missing)."""
    loose, partners = _loose(image, rules)
    items = loose if "loose" in kinds else []
    if "missing" in kinds:
        items += _missing(image, rules, partners)
    if "wrong_class" in kinds:
        items += _wrong_class(image, rules)
    if "duplicate" in kinds:
        items += _duplicates(image, rules)
    if "unsupported" in kinds:
        items += _unsupported(image, rules)
    return items


# ---------------------------------------------------------------------------------------------
# The rules, one function each (module docstring)


def _loose(image: ImageContext, rules: Rules) -> tuple[list[ReviewItem], set[int]]:
    """Loose items and the detections they suggest (which are then not ``missing``)."""
    scores, low, high = image.detections.scores, *rules.loose_iou
    items, partners = [], set()
    for obj in np.flatnonzero(image.judged):
        ious = np.where(image.same[obj] & image.confident, image.iou[obj], -1.0)
        best = int(np.argmax(ious)) if ious.size else -1
        if best < 0 or not low <= ious[best] < high:
            continue
        agreeing = image.same[obj] & (image.iou[obj] >= high)
        if (scores[agreeing] >= rules.comparable * scores[best]).any():
            continue  # a comparably sure detection agrees with the annotated box
        rivals = image.same[:, best] & (image.iou[:, best] > ious[best])
        if rivals.any():
            continue  # the detection belongs to another annotation of the class
        partners.add(best)
        score = scores[best] * (1.0 - ious[best]) / (1.0 - low)
        note = f"best {image.class_names[image.labels[obj]]} detection {scores[best]:.2f} "
        note += f"overlaps at IoU {ious[best]:.2f}"
        items.append(image.item("loose", obj, score, None, image.detections.boxes[best], note))
    return items, partners


def _missing(image: ImageContext, rules: Rules, partners: set[int]) -> list[ReviewItem]:
    found = image.detections
    candidates = image.confident & ~_near_annotation(image, rules)
    candidates[list(partners)] = False
    candidates &= ~_looser_duplicates(image, rules)
    kept: list[int] = []
    for k in sorted(np.flatnonzero(candidates), key=lambda k: (-found.scores[k], k)):
        if all(_pair_iou(found.boxes[k], found.boxes[j]) < rules.match_iou for j in kept):
            kept.append(int(k))
    items = []
    for k in kept:
        nearest = float(image.iou[:, k].max(initial=0.0))
        name = image.class_names[found.classes[k]]
        note = f"{name} detected at {found.scores[k]:.2f}; best annotation IoU {nearest:.2f}"
        items.append(
            image.item("missing", None, found.scores[k], found.classes[k], found.boxes[k], note)
        )
    return items


def _near_annotation(image: ImageContext, rules: Rules) -> np.ndarray:
    """(K,) detections matching any annotation, or mostly inside an ignored one."""
    matched = (image.iou >= rules.match_iou).any(axis=0)
    ignored = ~image.judged
    if not ignored.any():
        return matched
    # Intersection over the detection's area, from IoU: inter = IoU (a + b) / (1 + IoU).
    iou = image.iou[ignored]
    area_annotations = box_area(image.boxes[ignored])[:, None]
    area_detections = np.maximum(box_area(image.detections.boxes), 1e-12)[None, :]
    inside = iou * (area_annotations + area_detections) / ((1.0 + iou) * area_detections)
    return matched | (inside >= _COVERED).any(axis=0)


def _looser_duplicates(image: ImageContext, rules: Rules) -> np.ndarray:
    """(K,) weaker echoes: detections overlapping a same-class annotation that a higher-scoring
    confident detection matches (NMS leaves such echoes of one object below its IoU threshold)."""
    scores = image.detections.scores
    good = image.same & (image.iou >= rules.match_iou) & image.confident[None, :]
    near = image.same & (image.iou >= rules.loose_iou[0]) & ~good
    matched_by = np.where(good, scores[None, :], -1.0).max(axis=1, initial=-1.0)
    return (near & (matched_by[:, None] > scores[None, :])).any(axis=0)


def _wrong_class(image: ImageContext, rules: Rules) -> list[ReviewItem]:
    found = image.detections
    own_match = (image.same & (image.iou >= rules.match_iou)).any(axis=0)
    other = ~image.same & (image.iou >= rules.wrong_class_iou) & image.confident & ~own_match
    support = np.where(image.same & (image.iou >= rules.match_iou), found.scores, 0.0)
    items = []
    for obj in np.flatnonzero(image.judged & other.any(axis=1)):
        candidates = np.flatnonzero(other[obj])
        best = int(min(candidates, key=lambda k: (-found.scores[k], k)))
        same_score, other_score = support[obj].max(initial=0.0), found.scores[best]
        if same_score >= rules.comparable * other_score:
            continue
        name = image.class_names[found.classes[best]]
        note = f"{name} detected at {other_score:.2f} (IoU {image.iou[obj, best]:.2f}); "
        note += f"best {image.class_names[image.labels[obj]]} detection {same_score:.2f}"
        score = other_score - same_score
        items.append(image.item("wrong_class", obj, score, found.classes[best], None, note))
    return items


def _duplicates(image: ImageContext, rules: Rules) -> list[ReviewItem]:
    candidates = np.flatnonzero(~image.crowd)
    if len(candidates) < 2:
        return []
    ious = box_iou_numpy(image.boxes[candidates], image.boxes[candidates])
    pairs = [
        (float(ious[a, b]), int(candidates[a]), int(candidates[b]))
        for a in range(len(candidates))
        for b in range(a + 1, len(candidates))
        if ious[a, b] >= rules.duplicate_iou
        and image.labels[candidates[a]] == image.labels[candidates[b]]
    ]
    items, removed = [], set()
    for iou, first, second in sorted(pairs, key=lambda p: (-p[0], p[1], p[2])):
        if first in removed or second in removed or _two_objects(image, first, second, rules):
            continue
        support = _support(image, first), _support(image, second)
        drop, keep = (first, second) if support[0] < support[1] else (second, first)
        removed.add(drop)
        note = f"same class as object {keep} at IoU {iou:.2f}; remove this one"
        items.append(image.item("duplicate", drop, iou, None, None, note))
    return items


def _support(image: ImageContext, obj: int) -> float:
    """How well the detections support one annotation: best same-class IoU x score."""
    values = np.where(image.same[obj], image.iou[obj] * image.detections.scores, 0.0)
    return float(values.max(initial=0.0))


def _two_objects(image: ImageContext, first: int, second: int, rules: Rules) -> bool:
    """Whether distinct confident same-class detections match each of two annotations."""
    good = image.same & (image.iou >= rules.match_iou) & image.confident[None, :]
    prefers_first = good[first] & (image.iou[first] >= image.iou[second])
    prefers_second = good[second] & (image.iou[second] > image.iou[first])
    return bool(prefers_first.any() and prefers_second.any())


def _unsupported(image: ImageContext, rules: Rules) -> list[ReviewItem]:
    scores = image.detections.scores
    overlapping = image.iou >= rules.unsupported_iou
    supported = (overlapping & (scores >= rules.unsupported_conf)).any(axis=1)
    items = []
    for obj in np.flatnonzero(image.judged & ~supported):
        best = float(np.where(overlapping[obj], scores, 0.0).max(initial=0.0))
        note = f"no detection at IoU >= {rules.unsupported_iou:g} (best score {best:.2f})"
        score = rules.unsupported_weight * (1.0 - best)
        items.append(image.item("unsupported", obj, score, None, None, note))
    return items


def _pair_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(box_iou_numpy(a[None], b[None])[0, 0])
