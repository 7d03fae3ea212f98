"""The doctor's box checks: swapped, outside, zero-area, degenerate (1 px wide or high) and
duplicate boxes, judged in one pass.

Boxes are judged in the records' 0-based continuous frame (VOC ``x0 = xmin - 1``): swapped means
``x0 > x1`` (or y), zero area means nothing left after ordering and clipping. So a VOC box written
``xmin=29 xmax=4`` is repaired to ``xmin=5 xmax=28`` and ``xmin=10 xmax=9`` has zero area.
``xmin=10 xmax=10`` is a one-pixel-wide box under VOC's inclusive pixels: a click without a drag,
reported as degenerate and dropped like a zero-area box (:data:`core.records.MIN_BOX_SIDE`).
:func:`judge_boxes` is shared with the fixer, so check and fix never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgevision.core import issues as kinds
from edgevision.core.issues import Issue
from edgevision.core.records import ImageRecord, has_size
from edgevision.data.doctor.read_all import object_indices
from edgevision.ops.boxes import box_area, box_iou_numpy, clip_boxes, order_corners

DUPLICATE_IOU = 0.99  # same class and at least this IoU with an earlier box: a double click


def describe_box(box: np.ndarray, format: str) -> str:
    """A box as the user wrote it: VOC 1-based ``xmin..ymax``, else 0-based xyxy pixels."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if format == "voc":
        x0, y0 = x0 + 1, y0 + 1
        return f"xmin={x0:g} ymin={y0:g} xmax={x1:g} ymax={y1:g}"
    return f"xyxy=({x0:g}, {y0:g}, {x1:g}, {y1:g})"


@dataclass(frozen=True)
class BoxVerdict:
    """Per-object findings: (N,) bool masks, the repaired (N, 4) xyxy boxes, (N, 2) sizes used."""

    finite: np.ndarray
    swapped: np.ndarray
    outside: np.ndarray
    zero_area: np.ndarray
    degenerate: np.ndarray
    duplicate: np.ndarray
    repaired: np.ndarray
    sizes: np.ndarray


def judge_boxes(
    boxes: np.ndarray,
    labels: np.ndarray,
    sizes: tuple[int, int] | np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> BoxVerdict:
    """Classify every box the way ``--fix`` will treat it, so check and fix never disagree.

    Order of repairs: put swapped corners in order, clip to the image, then a box with no area
    left is dropped, then a box of the same class with IoU >= 0.99 to an earlier kept box of the
    same image is dropped. Works on a whole dataset at once (one numpy pass, not one per image).

    Args:
        boxes: (N, 4) xyxy pixels as written.
        labels: (N,) class indices.
        sizes: (width, height) of the image, or (N, 2) one per box; None (or inf) when unknown:
            then only negative coordinates are clipped.
        groups: (N,) image of each box, for duplicates; None when all boxes share one image.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    sizes = np.broadcast_to(
        np.asarray(np.inf if sizes is None else sizes, dtype=np.float64), (len(boxes), 2)
    )
    finite = np.isfinite(boxes).all(axis=1)
    safe = np.where(finite[:, None], boxes, 0.0)
    swapped = (safe[:, 0] > safe[:, 2]) | (safe[:, 1] > safe[:, 3])
    ordered = order_corners(safe)
    repaired = clip_boxes(ordered, sizes[:, :1], sizes[:, 1:])
    outside = (repaired != ordered).any(axis=1)
    zero_area = ~finite | (box_area(repaired) <= 0)
    degenerate = ~zero_area & ~has_size(repaired)
    groups = np.zeros(len(boxes), dtype=np.int64) if groups is None else np.asarray(groups)
    usable = ~zero_area & ~degenerate
    duplicate = _duplicates(repaired, np.asarray(labels), usable, groups)
    return BoxVerdict(finite, swapped, outside, zero_area, degenerate, duplicate, repaired, sizes)


def _duplicates(
    boxes: np.ndarray, labels: np.ndarray, usable: np.ndarray, groups: np.ndarray
) -> np.ndarray:
    """Greedy in file order, within each (image, class) that holds more than one usable box."""
    duplicate = np.zeros(len(boxes), dtype=bool)
    candidates = np.flatnonzero(usable)
    keys = groups[candidates] * (int(labels.max(initial=0)) + 1) + labels[candidates]
    order = np.argsort(keys, kind="stable")  # file order kept inside each (image, class)
    starts = np.flatnonzero(np.diff(keys[order], prepend=-1, append=-1))
    for start, end in zip(starts[:-1], starts[1:], strict=True):
        if end - start < 2:
            continue
        members = candidates[order[start:end]]
        iou = box_iou_numpy(boxes[members], boxes[members])
        kept: list[int] = []
        for i in range(len(members)):
            if any(iou[i, j] >= DUPLICATE_IOU for j in kept):
                duplicate[members[i]] = True
            else:
                kept.append(i)
    return duplicate


def box_issues(records: list[ImageRecord], sizes: list, format: str) -> list[Issue]:
    """Swapped, outside, zero-area and duplicate boxes of every record, judged in one pass."""
    counts = np.array([record.num_objects for record in records], dtype=np.int64)
    if counts.sum() == 0:
        return []
    owner = np.repeat(np.arange(len(records)), counts)
    known = [(np.inf, np.inf) if size is None else size for size in sizes]
    verdict = judge_boxes(
        np.concatenate([record.boxes for record in records]),
        np.concatenate([record.labels for record in records]),
        np.asarray(known, dtype=np.float64)[owner],
        owner,
    )
    flagged = (
        verdict.swapped
        | verdict.outside
        | verdict.zero_area
        | verdict.degenerate
        | verdict.duplicate
    )
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    found = []
    for n in np.flatnonzero(flagged):
        record = records[owner[n]]
        k = int(n - first[owner[n]])
        index = object_indices(record)[k]
        box = describe_box(record.boxes[k], format)
        line = index + 1 if format == "yolo" else None  # YOLO objects are lines
        where = record.annotation_path or record.image_path
        found += [
            Issue(kind, where, f"{reason}: {box}", hint, object_index=index, line=line)
            for kind, reason, hint in _box_findings(verdict, int(n))
        ]
    return found


def _box_findings(verdict: BoxVerdict, k: int) -> list[tuple]:
    if not verdict.finite[k]:
        return [(kinds.ZERO_AREA, "coordinate is not a finite number", "--fix drops the box")]
    found = []
    if verdict.swapped[k]:
        found.append((kinds.SWAPPED_COORDS, "corners swapped (min > max)", "--fix swaps them"))
    if verdict.outside[k]:
        width, height = verdict.sizes[k]
        image = f"{width:g}x{height:g} image" if np.isfinite(width) else "image (size unknown)"
        reason = f"box outside the {image}"
        found.append((kinds.BOX_OUTSIDE, reason, "--fix clips it to the image"))
    if verdict.zero_area[k]:
        reason = "zero area" + (" after swap/clip" if found else "")
        found.append((kinds.ZERO_AREA, reason, "--fix drops the box (nothing to learn from)"))
    elif verdict.degenerate[k]:
        width, height = verdict.repaired[k, 2:] - verdict.repaired[k, :2]
        reason = f"degenerate box, {width:g} x {height:g} px (a click without a drag?)"
        found.append((kinds.DEGENERATE_BOX, reason, "--fix drops the box; training ignores it"))
    elif verdict.duplicate[k]:
        reason = f"duplicate of an earlier box of the same class (IoU >= {DUPLICATE_IOU})"
        found.append((kinds.DUPLICATE_BOX, reason, "--fix drops the later copy"))
    return found
