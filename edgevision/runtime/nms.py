"""Greedy and class-aware NMS and the per-image selection of detections, in numpy: the runtime
twin of ``ops/nms.py``.

Same rules as the torch version, so an ONNX model gives the detections its checkpoint gives:
boxes are visited by decreasing score (ties: lower index first), a box is dropped when its IoU
with a kept box is *above* the threshold, and IoU is ``inter / (union + 1e-7)`` in float32.
``tests/runtime/test_nms.py`` pins the two together on random boxes.
"""

from __future__ import annotations

import numpy as np

_EPS = np.float32(1e-7)  # the eps of ops.box_iou


def _iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (4,) xyxy box with (N, 4) boxes -> (N,), float32 like the torch twin."""
    left_top = np.maximum(box[:2], boxes[:, :2])
    right_bottom = np.minimum(box[2:], boxes[:, 2:])
    size = np.clip(right_bottom - left_top, 0, None)
    inter = size[:, 0] * size[:, 1]
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (area + areas - inter + _EPS)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS.

    Args:
        boxes: (N, 4) xyxy.
        scores: (N,).
        iou_threshold: drop a box whose IoU with a kept, better box is above this.

    Returns:
        (K,) int64 indices of kept boxes by decreasing score.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float32), kind="stable")
    keep = []
    # Each step removes the best remaining box and everything it suppresses, so the loop runs once
    # per kept box, not once per box.
    while order.size:
        best, order = order[0], order[1:]
        keep.append(best)
        order = order[_iou_one_to_many(boxes[best], boxes[order]) <= iou_threshold]
    return np.array(keep, dtype=np.int64)


def batched_nms(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """Class-aware NMS: boxes of different classes never suppress each other.

    Shifts each class's boxes by ``class * (max - min + 1)`` so classes cannot overlap and runs one
    NMS, exactly as ``ops.batched_nms`` does (the same float32 arithmetic, so the same IoUs).

    Args:
        boxes: (N, 4) xyxy; scores: (N,); classes: (N,) int.

    Returns:
        (K,) int64 indices of kept boxes by decreasing score.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if boxes.size == 0:
        return np.zeros(0, dtype=np.int64)
    low = boxes.min()
    offsets = np.asarray(classes).astype(np.float32) * (boxes.max() - low + np.float32(1))
    return nms(boxes + offsets[:, None] - low, scores, iou_threshold)


def postprocess(
    boxes: np.ndarray,
    scores: np.ndarray,
    conf: float = 0.25,
    iou: float = 0.45,
    max_det: int = 300,
    class_agnostic: bool = False,
    max_candidates: int = 1000,
) -> list[dict[str, np.ndarray]]:
    """Best class per point, top ``max_candidates``, score > ``conf``, NMS, ``max_det`` per image.

    Args:
        boxes: (B, A, 4) xyxy; scores: (B, A, C).

    Returns:
        B dicts with ``boxes`` (K, 4) float32, ``scores`` (K,) float32, ``classes`` (K,) int64 and
        ``index`` (K,) int64 (points kept), by decreasing score.
    """
    results = []
    for image_boxes, image_scores in zip(boxes, scores, strict=True):
        best_classes = image_scores.argmax(axis=-1)
        best_scores = np.take_along_axis(image_scores, best_classes[:, None], axis=-1)[:, 0]
        index = top_passing(best_scores, best_scores, conf, max_candidates)
        results.append(
            nms_image(
                image_boxes[index],
                best_scores[index],
                best_classes[index],
                index,
                iou,
                max_det,
                class_agnostic,
            )
        )
    return results


def top_passing(
    ranking: np.ndarray, scores: np.ndarray | None, conf: float, max_candidates: int
) -> np.ndarray:
    """Indices of the ``max_candidates`` best points (by ``ranking``), best first, then those whose
    ``scores`` pass ``conf`` (all of them when ``scores`` is None: the caller tests later)."""
    count = min(max_candidates, len(ranking))
    if count < len(ranking):
        top = np.argpartition(-ranking, count - 1)[:count]
    else:
        top = np.arange(len(ranking))
    top = top[np.argsort(-ranking[top], kind="stable")]
    return top if scores is None else top[scores[top] > conf]


def nms_image(
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    points: np.ndarray,
    iou: float,
    max_det: int,
    class_agnostic: bool,
) -> dict[str, np.ndarray]:
    """NMS over one image's candidates; ``points`` are their indices in the raw output, returned
    as ``index`` for the kept ones (as ``ops.nms.postprocess`` does)."""
    groups = np.zeros_like(classes) if class_agnostic else classes
    keep = batched_nms(boxes, scores, groups, iou)[:max_det]
    return {
        "boxes": boxes[keep].astype(np.float32).reshape(-1, 4),
        "scores": scores[keep].astype(np.float32),
        "classes": classes[keep].astype(np.int64),
        "index": np.asarray(points)[keep].astype(np.int64),
    }
