"""Pascal VOC average precision (VOC2007 11-point and VOC2010+ area), as the devkit computes it.

Matching follows the official devkit (``VOCevaldet.m``) and py-faster-rcnn's ``voc_eval``:
detections of a class are taken in descending score order (a stable sort, as MATLAB's ``sort``);
each is compared with *every* ground truth of its class in its image and takes the one of highest
IoU. If that IoU reaches the threshold and the object is difficult, the detection is ignored
(neither TP nor FP); if the object is already taken, it is a duplicate (FP); otherwise a TP. Below
the threshold it is an FP. Ties: IoU ``>=`` threshold counts, as in the devkit and mmdetection
(py-faster-rcnn uses ``>``; the two differ only at an IoU exactly equal to the threshold).

Coordinates: the devkit measures 1-based inclusive pixels with ``+1`` in every width. Our boxes are
continuous and 0-based (``x0 = xmin - 1``, ``x1 = xmax``), so ``x1 - x0 = xmax - xmin + 1`` and the
plain continuous IoU of :func:`edgevision.ops.boxes.box_iou_numpy` equals the devkit's ``+1`` IoU.
IoU is computed in float64 so integer boxes give bit-identical overlaps.

Objects flagged ``iscrowd`` (COCO-sourced records) are ignored like difficult ones. A class with no
non-ignored ground truth has AP NaN and is left out of the mean: its AP is undefined, and counting it
as 0 or 1 would move mAP by a class the split simply does not contain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from edgevision.core.errors import ConfigError
from edgevision.core.records import RecordSet
from edgevision.eval.detections import (
    ImageDetections,
    check_detections,
    ground_truth_boxes,
    ignored_ground_truth,
)
from edgevision.ops.boxes import box_iou_numpy


def voc_ap(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool = False) -> float:
    """Area under a precision/recall curve, VOC style.

    Args:
        recall: (D,) cumulative recall, non-decreasing, in detection order.
        precision: (D,) cumulative precision in the same order.
        use_07_metric: VOC2007's mean of the max precision at recall >= t for 11 values of t;
            otherwise VOC2010+'s exact area under the right-monotone precision envelope.

    The 11 thresholds are ``np.arange(0.0, 1.1, 0.1)`` exactly as py-faster-rcnn and mmdetection
    write them, so 0.3, 0.6 and 0.7 are the floats just above (``0.1 * 3 = 0.30000000000000004``)
    and a recall of exactly 3/10 does not reach "0.3" — kept for parity with published numbers.
    """
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    if use_07_metric:
        ap = 0.0
        for threshold in np.arange(0.0, 1.1, 0.1):
            reached = recall >= threshold
            ap += (precision[reached].max() if reached.any() else 0.0) / 11.0
        return float(ap)
    # Sentinels: recall runs from 0 to 1, precision falls to 0 after the last detection.
    recall_ext = np.concatenate(([0.0], recall, [1.0]))
    envelope = np.concatenate(([0.0], precision, [0.0]))
    envelope = np.maximum.accumulate(envelope[::-1])[::-1]  # best precision at any higher recall
    steps = np.flatnonzero(recall_ext[1:] != recall_ext[:-1])
    return float(np.sum((recall_ext[steps + 1] - recall_ext[steps]) * envelope[steps + 1]))


def voc_evaluate(
    record_set: RecordSet,
    detections: Sequence[Mapping],
    iou_threshold: float = 0.5,
    use_07_metric: bool = False,
) -> dict:
    """Per-class VOC AP and its mean.

    Args:
        record_set: ground truth; ``difficult`` and ``iscrowd`` objects are ignored.
        detections: one ``{"boxes", "scores", "classes"}`` mapping per record (original pixels).
        iou_threshold: minimum IoU of a true positive, in (0, 1].
        use_07_metric: 11-point (VOC2007) instead of area (VOC2010+) AP.

    Returns:
        dict with ``mAP`` (mean over classes with ground truth, NaN if none), ``ap`` (C,) list,
        ``num_gt`` (C,) non-ignored objects, ``num_detections`` (C,), ``precision`` and
        ``recall``: lists of C arrays (D_c,) in descending score order (ignored detections keep
        their place with no TP/FP increment; empty for a class without ground truth),
        ``iou_threshold``, ``use_07_metric`` and ``class_names``.
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ConfigError(f"iou_threshold={iou_threshold}; it must lie in (0, 1]")
    checked = check_detections(detections, len(record_set), record_set.num_classes)
    per_class = [
        _evaluate_class(record_set, checked, k, iou_threshold, use_07_metric)
        for k in range(record_set.num_classes)
    ]
    ap = [result[0] for result in per_class]
    valid = [value for value in ap if not np.isnan(value)]
    return {
        "mAP": float(np.mean(valid)) if valid else float("nan"),
        "ap": ap,
        "num_gt": [result[1] for result in per_class],
        "num_detections": [result[2] for result in per_class],
        "precision": [result[3] for result in per_class],
        "recall": [result[4] for result in per_class],
        "iou_threshold": float(iou_threshold),
        "use_07_metric": bool(use_07_metric),
        "class_names": list(record_set.class_names),
    }


def _evaluate_class(
    record_set: RecordSet,
    detections: list[ImageDetections],
    class_index: int,
    iou_threshold: float,
    use_07_metric: bool,
) -> tuple[float, int, int, np.ndarray, np.ndarray]:
    """(AP, num_gt, num_detections, precision, recall) of one class."""
    gt_boxes, gt_ignored = [], []
    for record in record_set.records:
        of_class = record.labels == class_index
        gt_boxes.append(ground_truth_boxes(record)[of_class])
        gt_ignored.append(ignored_ground_truth(record)[of_class])
    num_gt = int(sum((~ignored).sum() for ignored in gt_ignored))
    image_index, scores, best_iou, best_gt = _best_overlaps(detections, class_index, gt_boxes)
    order = np.argsort(-scores, kind="stable")
    true_positive, false_positive = _assign(
        image_index[order], best_iou[order], best_gt[order], gt_ignored, iou_threshold
    )
    if num_gt == 0:
        return float("nan"), 0, len(scores), np.zeros(0), np.zeros(0)
    tp, fp = np.cumsum(true_positive), np.cumsum(false_positive)
    recall = tp / float(num_gt)
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return voc_ap(recall, precision, use_07_metric), num_gt, len(scores), precision, recall


def _best_overlaps(
    detections: list[ImageDetections], class_index: int, gt_boxes: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each detection's image, score, highest IoU with a ground truth of its class, and that gt.

    The best gt does not depend on the processing order, so it is found per image, vectorised;
    only the "already taken" bookkeeping in :func:`_assign` must run in score order. A detection
    in an image without such ground truth gets IoU -inf (always a false positive).
    """
    # Each list starts with an empty part so a dataset without detections concatenates cleanly.
    image_index, best_gt = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    scores, best_iou = [np.zeros(0)], [np.zeros(0)]
    for index, image_detections in enumerate(detections):
        of_class = image_detections.classes == class_index
        boxes = image_detections.boxes[of_class]
        image_index.append(np.full(len(boxes), index, dtype=np.int64))
        scores.append(image_detections.scores[of_class])
        if len(boxes) and len(gt_boxes[index]):
            ious = box_iou_numpy(boxes, gt_boxes[index])  # (D_i, G_i)
            best_iou.append(ious.max(axis=1))
            best_gt.append(ious.argmax(axis=1))  # first of equal maxima, as the devkit
        else:
            best_iou.append(np.full(len(boxes), -np.inf))
            best_gt.append(np.zeros(len(boxes), dtype=np.int64))
    return tuple(np.concatenate(parts) for parts in (image_index, scores, best_iou, best_gt))


def _assign(
    image_index: np.ndarray,
    best_iou: np.ndarray,
    best_gt: np.ndarray,
    gt_ignored: list[np.ndarray],
    iou_threshold: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(D,) TP and FP indicators for detections already sorted by descending score."""
    true_positive = np.zeros(len(best_iou))
    false_positive = np.zeros(len(best_iou))
    taken = [np.zeros(len(ignored), dtype=bool) for ignored in gt_ignored]
    for rank, (image, iou, gt) in enumerate(zip(image_index, best_iou, best_gt, strict=True)):
        if iou < iou_threshold:
            false_positive[rank] = 1
        elif gt_ignored[image][gt]:
            continue  # on a difficult object: neither rewarded nor penalised
        elif taken[image][gt]:
            false_positive[rank] = 1  # duplicate detection of an object already found
        else:
            true_positive[rank] = 1
            taken[image][gt] = True
    return true_positive, false_positive
