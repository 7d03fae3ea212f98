"""The detections format every evaluator reads, checked once at the door.

A detections list is aligned with ``record_set.records``: entry ``i`` is a mapping with ``boxes``
(K, 4) xyxy in the record's original pixels (the same continuous 0-based frame as the records),
``scores`` (K,) and ``classes`` (K,) integer indices into ``class_names``. Numpy arrays, lists and
CPU tensors are accepted; everything is converted to float64 / int64 numpy here so that the
evaluators compute IoU in double precision (float32 IoU can flip a match at exactly 0.5).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from edgevision.core.errors import ConfigError
from edgevision.core.records import ImageRecord
from edgevision.ops.boxes import order_corners


@dataclass(frozen=True)
class ImageDetections:
    """One image's detections after checking.

    Attributes:
        boxes: (K, 4) float64 xyxy original-image pixels.
        scores: (K,) float64.
        classes: (K,) int64 in ``[0, num_classes)``.
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray


def check_detections(
    detections: Sequence[Mapping], num_images: int, num_classes: int
) -> list[ImageDetections]:
    """Validate and convert a detections list; raise ConfigError naming the bad entry.

    Args:
        detections: one mapping per image (see the module docstring).
        num_images: how many records the detections must align with.
        num_classes: class indices must lie in ``[0, num_classes)``.
    """
    if len(detections) != num_images:
        raise ConfigError(
            f"got detections for {len(detections)} images but the dataset has {num_images}; "
            "pass one entry (possibly empty) per record, in record order"
        )
    return [_check_one(index, entry, num_classes) for index, entry in enumerate(detections)]


def _check_one(index: int, entry: Mapping, num_classes: int) -> ImageDetections:
    missing = [key for key in ("boxes", "scores", "classes") if key not in entry]
    if missing:
        raise ConfigError(f"detections[{index}] lacks {missing}; expected boxes, scores, classes")
    boxes = np.asarray(entry["boxes"], dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(entry["scores"], dtype=np.float64).reshape(-1)
    classes = np.asarray(entry["classes"]).reshape(-1)
    if not (len(boxes) == len(scores) == len(classes)):
        raise ConfigError(
            f"detections[{index}]: {len(boxes)} boxes, {len(scores)} scores and "
            f"{len(classes)} classes; the three must have the same length"
        )
    if classes.size and not np.array_equal(classes, np.round(classes)):
        raise ConfigError(f"detections[{index}]: classes must be integer indices")
    classes = classes.astype(np.int64)
    if classes.size and (classes.min() < 0 or classes.max() >= num_classes):
        raise ConfigError(
            f"detections[{index}]: class index {int(classes.max())} or {int(classes.min())} is "
            f"outside [0, {num_classes}); classes index the dataset's class_names"
        )
    return ImageDetections(boxes=boxes, scores=scores, classes=classes)


def ground_truth_boxes(record: ImageRecord) -> np.ndarray:
    """(N, 4) float64 xyxy of a record with swapped corners put back in order.

    Records keep boxes as written so the data doctor can report them; an evaluator must not turn
    a swapped box into a negative area, so corners are ordered (not clipped) here.
    """
    return order_corners(record.boxes.astype(np.float64))


def ignored_ground_truth(record: ImageRecord) -> np.ndarray:
    """(N,) bool: objects that neither reward nor penalise a detector (VOC difficult, COCO crowd)."""
    return record.difficult | record.iscrowd
