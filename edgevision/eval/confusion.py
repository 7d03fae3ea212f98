"""Detection confusion matrix with a background row and column (Ultralytics' layout).

Axes: ``matrix[predicted, true]`` — rows are predicted classes, columns true classes, and index
``C`` (the last) is background. So ``matrix[C, t]`` counts objects of class ``t`` that nothing
detected (false negatives) and ``matrix[p, C]`` counts detections of class ``p`` that match no
object (false positives). Columns are what to normalise: column ``t`` says where objects of
class ``t`` went.

Matching is class-agnostic, so that a car detected as a truck lands in ``matrix[truck, car]``
instead of as one FP plus one FN: detections with ``score >= conf`` and ground truths pair up
greedily in order of decreasing IoU (each used once) while ``IoU >= iou``. Difficult and crowd
objects are left out; a leftover detection on one of them is not counted at all, as VOC AP does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from edgevision.core.errors import ConfigError
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.eval.detections import (
    ImageDetections,
    check_detections,
    ground_truth_boxes,
    ignored_ground_truth,
)
from edgevision.ops.boxes import box_iou_numpy


def confusion_matrix(
    record_set: RecordSet,
    detections: Sequence[Mapping],
    num_classes: int,
    conf: float = 0.25,
    iou: float = 0.5,
) -> np.ndarray:
    """(C + 1, C + 1) int64 counts, ``[predicted, true]``, background last.

    Args:
        record_set: ground truth.
        detections: one ``{"boxes", "scores", "classes"}`` mapping per record (original pixels).
        num_classes: C; labels and detection classes must lie in ``[0, C)``.
        conf: detections scoring below this are dropped first.
        iou: minimum IoU for a detection and an object to pair up.
    """
    if not 0.0 < iou <= 1.0:
        raise ConfigError(f"iou={iou}; it must lie in (0, 1]")
    checked = check_detections(detections, len(record_set), num_classes)
    matrix = np.zeros((num_classes + 1, num_classes + 1), dtype=np.int64)
    for record, image_detections in zip(record_set.records, checked, strict=True):
        if record.labels.size and record.labels.max() >= num_classes:
            raise ConfigError(
                f"{record.annotation_path or record.image_path}: label "
                f"{int(record.labels.max())} >= num_classes={num_classes}"
            )
        _add_image(matrix, record, image_detections, conf, iou)
    return matrix


def _add_image(
    matrix: np.ndarray, record: ImageRecord, detections: ImageDetections, conf: float, iou: float
) -> None:
    background = matrix.shape[0] - 1
    keep = detections.scores >= conf
    det_boxes, det_classes = detections.boxes[keep], detections.classes[keep]
    gt_boxes, ignored = ground_truth_boxes(record), ignored_ground_truth(record)
    labels = record.labels[~ignored]
    pairs = greedy_match(box_iou_numpy(det_boxes, gt_boxes[~ignored]), iou)
    for det_index, gt_index in pairs:
        matrix[det_classes[det_index], labels[gt_index]] += 1
    matched_gt = np.zeros(len(labels), dtype=bool)
    matched_det = np.zeros(len(det_boxes), dtype=bool)
    for det_index, gt_index in pairs:
        matched_det[det_index], matched_gt[gt_index] = True, True
    np.add.at(matrix, (background, labels[~matched_gt]), 1)
    on_ignored = (box_iou_numpy(det_boxes, gt_boxes[ignored]) >= iou).any(axis=1)
    np.add.at(matrix, (det_classes[~matched_det & ~on_ignored], background), 1)


def greedy_match(ious: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """One-to-one (row, column) pairs taken in decreasing IoU while IoU >= threshold.

    Args:
        ious: (N, M) overlaps of detections (rows) and objects (columns).

    Returns:
        pairs, highest IoU first; ties keep row-major order (a stable sort).
    """
    rows, cols = np.nonzero(ious >= threshold)
    order = np.argsort(-ious[rows, cols], kind="stable")
    used_rows, used_cols, pairs = set(), set(), []
    for row, col in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
        if row not in used_rows and col not in used_cols:
            used_rows.add(row)
            used_cols.add(col)
            pairs.append((row, col))
    return pairs
