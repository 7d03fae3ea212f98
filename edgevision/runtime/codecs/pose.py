"""The pose codec in numpy: the runtime twin of ``models/codecs/pose.py``.

Raw output (B, A, 4 + C + 3K): the anchor-free box and class channels, then per keypoint
``dx, dy, visibility logit``; a keypoint is ``cell centre + 2 * d * stride`` and its visibility
score ``sigmoid(logit)``. Boxes, scores and classes come from the anchor-free twin's fast path
(:func:`edgevision.runtime.codecs.anchor_free.detect`) on the box channels; the keypoints are
decoded only for the points that survive NMS (its ``index``). ``tests/runtime/test_pose_codec.py``
pins this against the torch codec + ``ops.nms.postprocess``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgevision.runtime.codecs.anchor_free import detect as detect_boxes
from edgevision.runtime.codecs.anchor_free import make_anchor_points, sigmoid

FAMILY = "pose"
OFFSET_SCALE = np.float32(2.0)  # ops.keypoints.OFFSET_SCALE


def split(raw: np.ndarray, num_keypoints: int) -> tuple[np.ndarray, np.ndarray]:
    """(B, A, 4 + C + 3K) -> box channels (B, A, 4 + C) and keypoint channels (B, A, K, 3).

    Raises:
        ValueError: fewer channels than 4 + 1 class + 3K.
    """
    raw = np.asarray(raw, dtype=np.float32)
    channels = 3 * num_keypoints
    if raw.ndim != 3 or raw.shape[2] < 5 + channels:
        raise ValueError(
            f"raw output of shape {raw.shape} is not a pose output with {num_keypoints} "
            f"keypoints: expected (B, A, 4 + classes + {channels})"
        )
    keypoints = raw[..., -channels:].reshape(raw.shape[0], raw.shape[1], num_keypoints, 3)
    return raw[..., :-channels], keypoints


def keypoints_at(
    keypoint_raw: np.ndarray, points: np.ndarray, point_strides: np.ndarray
) -> np.ndarray:
    """(..., K, 3) raw ``dx, dy, logit`` at points (..., 2) with strides (...) -> (..., K, 3)
    ``x, y`` in input pixels and the visibility score."""
    xy = (
        points[..., None, :] + OFFSET_SCALE * keypoint_raw[..., :2] * point_strides[..., None, None]
    )
    return np.concatenate([xy, sigmoid(keypoint_raw[..., 2:])], axis=-1).astype(np.float32)


def _grid(strides: Sequence[int], input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    height, width = int(input_hw[0]), int(input_hw[1])
    return make_anchor_points([(height // s, width // s) for s in strides], strides)


def decode_keypoints(
    raw: np.ndarray, strides: Sequence[int], num_keypoints: int, input_hw: tuple[int, int]
) -> np.ndarray:
    """(B, A, K, 3) keypoints of every point (``x, y`` input pixels, visibility score).

    Raises:
        ValueError: the channels or A do not fit ``num_keypoints`` and ``input_hw``.
    """
    _, keypoint_raw = split(raw, num_keypoints)
    points, point_strides = _grid(strides, input_hw)
    if keypoint_raw.shape[1] != len(points):
        raise ValueError(
            f"raw output with {keypoint_raw.shape[1]} points does not fit input "
            f"{input_hw[0]}x{input_hw[1]} with strides {tuple(strides)} ({len(points)} points); "
            f"the input size must be divisible by {max(strides)}"
        )
    return keypoints_at(keypoint_raw, points, point_strides)


def detect(
    raw: np.ndarray,
    strides: Sequence[int],
    num_keypoints: int,
    input_hw: tuple[int, int],
    conf: float = 0.25,
    iou: float = 0.45,
    max_det: int = 300,
    class_agnostic: bool = False,
    max_candidates: int = 1000,
) -> list[dict[str, np.ndarray]]:
    """Detections with keypoints: what ``postprocess(*decode(...))`` keeps, plus its keypoints.

    Args:
        raw: (B, A, 4 + C + 3K) raw pose output for an input of size ``input_hw``.

    Returns:
        B dicts: ``boxes`` (N, 4) xyxy input pixels, ``scores`` (N,), ``classes`` (N,) int64,
        ``index`` (N,) points kept and ``keypoints`` (N, K, 3) float32 (``x, y`` input pixels,
        visibility score), best first.
    """
    box_raw, keypoint_raw = split(raw, num_keypoints)
    results = detect_boxes(
        box_raw, strides, input_hw, conf, iou, max_det, class_agnostic, max_candidates
    )
    points, point_strides = _grid(strides, input_hw)
    for found, image_keypoints in zip(results, keypoint_raw, strict=True):
        index = found["index"]
        found["keypoints"] = keypoints_at(
            image_keypoints[index], points[index], point_strides[index]
        ).reshape(-1, num_keypoints, 3)
    return results


def detections(
    raw: np.ndarray,
    params: dict,
    input_hw: tuple[int, int],
    conf: float = 0.25,
    iou: float = 0.45,
    max_det: int = 300,
) -> list[dict[str, np.ndarray]]:
    """What a runtime session calls for this family: ``params`` is the codec's metadata as the
    file carries it (``strides`` and ``num_keypoints``)."""
    return detect(
        raw, params["strides"], int(params["num_keypoints"]), input_hw, conf, iou, max_det
    )
