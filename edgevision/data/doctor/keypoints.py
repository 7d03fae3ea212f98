"""The doctor's keypoint checks: points, objects and files of a pose dataset.

Per object (one Issue per kind, naming the points; labelled means ``v > 0``):

- a visibility other than 0 (not labelled), 1 (labelled, hidden) or 2 (labelled, visible);
- ``v = 0`` with ``x, y`` not ``(0, 0)`` (a warning: training ignores the point, but a visible
  point may have lost its flag);
- a labelled point outside the image ``[0, W] x [0, H]``;
- a labelled point beyond its box by more than :data:`FAR_FROM_BOX` of the box width
  (horizontally) or height (vertically): a warning, as the point or the box usually belongs to
  another object;
- COCO ``num_keypoints`` other than the count of labelled points (a warning: edgevision recounts,
  other COCO tools trust it).

Per file: objects with another number of keypoints K than the dataset (the keypoint names, else
the most common K). YOLO lines whose K differs from ``kpt_shape`` are already skipped and reported
by the reader, and the schema (names, skeleton, ``flip_idx``, sigmas) is judged by the readers
(:mod:`edgevision.data.formats.keypoint_schema`): their Issues reach the report with the others.
"""

from __future__ import annotations

import numpy as np

from edgevision.core import issues as kinds
from edgevision.core.issues import Issue
from edgevision.core.records import ImageRecord, RecordSet, has_size
from edgevision.data.doctor.read_all import object_indices
from edgevision.data.formats.coco import NUM_KEYPOINTS_KEY

FAR_FROM_BOX = 0.5  # share of the box side a labelled point may lie beyond the box
_SHOWN = 6  # points named in one reason before "..."


def keypoint_issues(
    record_set: RecordSet, sizes: list[tuple[int, int] | None] | None = None
) -> list[Issue]:
    """Every keypoint defect of ``record_set`` (see the module docstring); [] without keypoints.

    Args:
        record_set: records read by ``read_whole_dataset`` (objects carry their file positions).
        sizes: (width, height) per record the points live in, None when unknown; default the
            annotated sizes.
    """
    num_keypoints = record_set.num_keypoints
    if not num_keypoints:
        return []
    if sizes is None:
        sizes = [
            (r.width, r.height) if min(r.width, r.height) > 0 else None for r in record_set.records
        ]
    found = _count_issues(record_set, num_keypoints)
    names = record_set.kpt_names
    for record, size in zip(record_set.records, sizes, strict=True):
        keypoints = record.keypoints
        if keypoints is not None and keypoints.shape[1] == num_keypoints and len(keypoints):
            found += _record_issues(record, size, names, record_set.format)
    return found


def _count_issues(record_set: RecordSet, num_keypoints: int) -> list[Issue]:
    """One KEYPOINT_COUNT per file whose objects have another K (or none) than the dataset."""
    source = "its keypoint names" if record_set.kpt_names else "most images"
    found, reported = [], set()
    for record in record_set.records:
        if record.num_objects == 0:
            continue
        count = 0 if record.keypoints is None else record.keypoints.shape[1]
        where = record.annotation_path or record.image_path
        if count == num_keypoints or where in reported:
            continue
        reported.add(where)
        reason = f"objects here have {count} keypoints; the dataset has {num_keypoints} ({source})"
        hint = f"give every object {num_keypoints} keypoints (unlabelled ones as 0 0 0)"
        found.append(Issue(kinds.KEYPOINT_COUNT, where, reason, hint))
    return found


def _point_masks(
    keypoints: np.ndarray, boxes: np.ndarray, size: tuple[int, int] | None
) -> dict[str, np.ndarray]:
    """(N, K) bool per point defect kind, for one record's (N, K, 3) points and (N, 4) boxes."""
    x, y, visibility = keypoints[..., 0], keypoints[..., 1], keypoints[..., 2]
    labelled = visibility > 0
    masks = {
        kinds.KEYPOINT_VISIBILITY: ~np.isin(visibility, (0, 1, 2)),
        kinds.KEYPOINT_UNLABELLED_XY: (visibility == 0) & ((x != 0) | (y != 0)),
    }
    if size is not None:
        width, height = size
        outside = (x < 0) | (y < 0) | (x > width) | (y > height)
        masks[kinds.KEYPOINT_OUTSIDE] = labelled & outside
    low = np.minimum(boxes[:, :2], boxes[:, 2:])[:, None, :]  # (N, 1, 2): swapped corners too
    high = np.maximum(boxes[:, :2], boxes[:, 2:])[:, None, :]
    points = keypoints[..., :2]
    beyond = np.maximum(np.maximum(low - points, points - high), 0)  # (N, K, 2) px past the box
    far = (beyond > FAR_FROM_BOX * (high - low)).any(axis=-1)
    masks[kinds.KEYPOINT_FAR_FROM_BOX] = labelled & far & has_size(boxes)[:, None]
    return masks


_POINT_TEXT = {
    kinds.KEYPOINT_VISIBILITY: (
        "visibility {values} is not 0, 1 or 2",
        "set v to 0 (not labelled), 1 (labelled, hidden) or 2 (labelled, visible)",
    ),
    kinds.KEYPOINT_UNLABELLED_XY: (
        "not labelled (v = 0) but placed at x, y = {values}",
        "write an unlabelled point as 0 0 0, or set v to 1 or 2 if it was meant to count",
    ),
    kinds.KEYPOINT_OUTSIDE: (
        "labelled but outside the {size} image at x, y = {values}",
        "move the point into the image or mark it unlabelled (0 0 0); training ignores it",
    ),
    kinds.KEYPOINT_FAR_FROM_BOX: (
        "labelled more than 50% of the box size outside its box {box} at x, y = {values}",
        "check the point and the box belong to the same object",
    ),
}


def _record_issues(
    record: ImageRecord, size: tuple[int, int] | None, names: list[str] | None, format: str
) -> list[Issue]:
    keypoints = record.keypoints.astype(np.float64)
    masks = _point_masks(keypoints, record.boxes.astype(np.float64), size)
    stated = _stated_counts(record)
    labelled = (keypoints[..., 2] > 0).sum(axis=1)
    positions = object_indices(record)
    where = record.annotation_path or record.image_path
    found = []
    for k in range(record.num_objects):
        position = positions[k]
        line = position + 1 if format == "yolo" else None  # YOLO objects are lines
        for kind, mask in masks.items():
            if mask[k].any():
                reason = _point_reason(kind, keypoints[k], mask[k], names, record, size, k)
                hint = _POINT_TEXT[kind][1]
                found.append(Issue(kind, where, reason, hint, position, line))
        if stated[k] is not None and stated[k] != labelled[k]:
            reason = f"num_keypoints is {stated[k]!r} but {labelled[k]} points are labelled (v > 0)"
            hint = f"set num_keypoints to {labelled[k]}; edgevision recounts, other tools trust it"
            found.append(Issue(kinds.NUM_KEYPOINTS_MISMATCH, where, reason, hint, position, line))
    return found


def _stated_counts(record: ImageRecord) -> list:
    """Each object's stated COCO ``num_keypoints`` (None when absent, or when the reader's object
    list no longer lines up with the stated counts)."""
    stated = record.extra.get(NUM_KEYPOINTS_KEY)
    if stated is None or len(stated) != record.num_objects:
        return [None] * record.num_objects
    return list(stated)


def _point_reason(
    kind: str,
    points: np.ndarray,
    mask: np.ndarray,
    names: list[str] | None,
    record: ImageRecord,
    size: tuple[int, int] | None,
    k: int,
) -> str:
    """``keypoint 3 (left_ear): <what>`` with the values of the flagged points."""
    chosen = np.flatnonzero(mask)
    shown = chosen[:_SHOWN]
    labels = ", ".join(f"{i} ({names[i]})" if names else str(i) for i in shown)
    if kind == kinds.KEYPOINT_VISIBILITY:
        values = ", ".join(f"{points[i, 2]:g}" for i in shown)
    else:
        values = ", ".join(f"({points[i, 0]:g}, {points[i, 1]:g})" for i in shown)
    more = f" and {len(chosen) - _SHOWN} more" if len(chosen) > _SHOWN else ""
    x0, y0, x1, y1 = (float(v) for v in record.boxes[k])
    template = _POINT_TEXT[kind][0]
    text = template.format(
        values=values,
        size="x".join(str(v) for v in size) if size else "",
        box=f"({x0:g}, {y0:g}, {x1:g}, {y1:g})",
    )
    word = "keypoint" if len(chosen) == 1 else "keypoints"
    return f"{word} {labels}{more}: {text}"
