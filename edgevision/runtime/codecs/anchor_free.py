"""The anchor-free distance codec in numpy: the runtime twin of ``models/codecs/anchor_free.py``.

The exported graph without ``--nms`` returns the detector's raw tensor (B, A, 4 + C): channels
0:4 raw ``l, t, r, b`` distances, 4: class logits. Decoding is ``softplus(raw[..., :4]) * stride``
around each cell centre and ``sigmoid`` for the scores, the same as the torch codec;
``tests/runtime/test_codecs.py`` pins the two together.

:func:`detect` is the fast path the runtime uses: it picks candidates on the best class *logit*
(sigmoid is monotonic, so the order is the same) and decodes only those, instead of running
sigmoid over all A x C logits; it returns what ``decode`` + ``nms.postprocess`` return.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgevision.runtime.nms import nms_image, top_passing

FAMILY = "anchor_free"


def make_anchor_points(
    feature_sizes: Sequence[tuple[int, int]], strides: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres of every level, level by level, row-major: (A, 2) ``x, y`` and (A,) strides."""
    points, point_strides = [], []
    for (height, width), stride in zip(feature_sizes, strides, strict=True):
        ys = (np.arange(height, dtype=np.float32) + np.float32(0.5)) * np.float32(stride)
        xs = (np.arange(width, dtype=np.float32) + np.float32(0.5)) * np.float32(stride)
        grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
        points.append(np.stack([grid_x, grid_y], axis=-1).reshape(-1, 2))
        point_strides.append(np.full(height * width, stride, dtype=np.float32))
    return np.concatenate(points), np.concatenate(point_strides)


def _anchors_for(raw: np.ndarray, strides: Sequence[int], input_hw: tuple[int, int]):
    height, width = int(input_hw[0]), int(input_hw[1])
    points, point_strides = make_anchor_points(
        [(height // s, width // s) for s in strides], strides
    )
    if raw.ndim != 3 or raw.shape[1] != len(points) or raw.shape[2] < 5:
        raise ValueError(
            f"raw output of shape {raw.shape} does not fit input {height}x{width} with strides "
            f"{tuple(strides)}: expected (B, {len(points)}, 4 + classes); the input size must be "
            f"divisible by {max(strides)}"
        )
    return points, point_strides


def softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(x))`` without overflow (torch's threshold shortcut differs by < 3e-9)."""
    return np.logaddexp(np.float32(0), x).astype(np.float32)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, float32, without overflow warnings for large negative logits."""
    return (np.float32(0.5) * (np.tanh(np.float32(0.5) * x) + np.float32(1))).astype(np.float32)


def distance_to_xyxy(points: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """(..., 2) points and (..., 4) ``l, t, r, b`` distances -> (..., 4) xyxy."""
    return np.concatenate([points - distances[..., :2], points + distances[..., 2:]], axis=-1)


def decode(
    raw: np.ndarray, strides: Sequence[int], input_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (B, A, 4) xyxy in input pixels and scores (B, A, C) in [0, 1] from raw (B, A, 4 + C).

    Raises:
        ValueError: A does not match the feature grid of ``input_hw``.
    """
    raw = np.asarray(raw, dtype=np.float32)
    points, point_strides = _anchors_for(raw, strides, input_hw)
    distances = softplus(raw[..., :4]) * point_strides[:, None]
    return distance_to_xyxy(points, distances), sigmoid(raw[..., 4:])


def detect(
    raw: np.ndarray,
    strides: Sequence[int],
    input_hw: tuple[int, int],
    conf: float = 0.25,
    iou: float = 0.45,
    max_det: int = 300,
    class_agnostic: bool = False,
    max_candidates: int = 1000,
) -> list[dict[str, np.ndarray]]:
    """``postprocess(*decode(raw, ...))`` computed on the candidates only (see the module docstring).

    Args:
        raw: (B, A, 4 + C) raw detector output for an input of size ``input_hw``.

    Returns:
        As :func:`postprocess`: B dicts of ``boxes`` (K, 4) in input pixels, ``scores``, ``classes``.
    """
    raw = np.asarray(raw, dtype=np.float32)
    points, point_strides = _anchors_for(raw, strides, input_hw)
    results = []
    for image_raw in raw:
        logits = image_raw[:, 4:]
        best_classes = logits.argmax(axis=-1)
        best_logits = np.take_along_axis(logits, best_classes[:, None], axis=-1)[:, 0]
        # Candidates by logit; the score threshold is tested on the sigmoid of those few only.
        index = top_passing(best_logits, None, conf, max_candidates)
        candidate_scores = sigmoid(best_logits[index])
        passing = candidate_scores > conf
        index, candidate_scores = index[passing], candidate_scores[passing]
        distances = softplus(image_raw[index, :4]) * point_strides[index, None]
        boxes = distance_to_xyxy(points[index], distances)
        results.append(
            nms_image(
                boxes, candidate_scores, best_classes[index], index, iou, max_det, class_agnostic
            )
        )
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
    file carries it (``strides`` here; another family adds what it needs, such as anchors)."""
    return detect(raw, params["strides"], input_hw, conf, iou, max_det)
