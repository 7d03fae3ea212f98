"""The anchor-based codec in numpy: the runtime twin of ``models/codecs/anchor_based.py``.

Raw output (B, N, 5 + C), ordered level (finest first) -> cell (row-major) -> anchor; channels
``tx, ty, tw, th``, objectness logit, C class logits. Decoding, as the torch codec::

    cx = (sigmoid(tx) * 2 - 0.5 + gx) * stride      w = (sigmoid(tw) * 2) ** 2 * anchor_w
    score[c] = sigmoid(objectness) * sigmoid(class c)

The anchors come from the file's codec metadata (``params["anchors"]``, (L, na, 2) input
pixels), so an ONNX model trained with re-clustered anchors decodes with them.
:func:`detect` decodes only the candidates that pass ``conf`` and returns what ``decode`` +
``nms.postprocess`` return. ``tests/models/test_anchor_based.py`` pins this to the torch codec.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgevision.runtime.codecs.anchor_free import sigmoid
from edgevision.runtime.nms import nms_image, top_passing

FAMILY = "anchor"


def make_grid(
    feature_sizes: Sequence[tuple[int, int]], strides: Sequence[int], anchors
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per prediction, in raw-output order: (N, 2) cell ``gx, gy``, (N, 1) stride and (N, 2)
    anchor ``w, h`` in input pixels; ``anchors`` is (L, na, 2)."""
    anchors = np.asarray(anchors, dtype=np.float32)
    cells, point_strides, anchor_wh = [], [], []
    for (height, width), stride, level_anchors in zip(feature_sizes, strides, anchors, strict=True):
        grid_y, grid_x = np.meshgrid(
            np.arange(height, dtype=np.float32), np.arange(width, dtype=np.float32), indexing="ij"
        )
        level_cells = np.stack([grid_x, grid_y], axis=-1)[:, :, None, :]  # (h, w, 1, 2)
        level_cells, level_wh = np.broadcast_arrays(level_cells, level_anchors[None, None])
        cells.append(level_cells.reshape(-1, 2))
        anchor_wh.append(level_wh.reshape(-1, 2))
        point_strides.append(np.full((len(cells[-1]), 1), stride, dtype=np.float32))
    return np.concatenate(cells), np.concatenate(point_strides), np.concatenate(anchor_wh)


def _grid_for(raw: np.ndarray, strides: Sequence[int], anchors, input_hw: tuple[int, int]):
    height, width = int(input_hw[0]), int(input_hw[1])
    anchors = np.asarray(anchors, dtype=np.float32)
    if anchors.ndim != 3 or anchors.shape[0] != len(strides) or anchors.shape[2] != 2:
        raise ValueError(
            f"anchors of shape {anchors.shape} do not fit strides {tuple(strides)}: expected "
            f"({len(strides)}, anchors per level, 2)"
        )
    grid = make_grid([(height // s, width // s) for s in strides], strides, anchors)
    if raw.ndim != 3 or raw.shape[1] != len(grid[0]) or raw.shape[2] < 6:
        raise ValueError(
            f"raw output of shape {raw.shape} does not fit input {height}x{width} with strides "
            f"{tuple(strides)} and {anchors.shape[1]} anchors per cell: expected "
            f"(B, {len(grid[0])}, 5 + classes); the input size must be divisible by "
            f"{max(strides)}"
        )
    return grid


def decode_boxes(raw_box: np.ndarray, cells: np.ndarray, strides: np.ndarray, anchor_wh):
    """Raw ``tx, ty, tw, th`` (..., 4) at cells (..., 2) with strides (..., 1) and anchors
    (..., 2) -> (..., 4) xyxy in input pixels."""
    centres = (sigmoid(raw_box[..., :2]) * np.float32(2) - np.float32(0.5) + cells) * strides
    half = (sigmoid(raw_box[..., 2:4]) * np.float32(2)) ** 2 * anchor_wh / np.float32(2)
    return np.concatenate([centres - half, centres + half], axis=-1).astype(np.float32)


def decode(
    raw: np.ndarray, strides: Sequence[int], anchors, input_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (B, N, 4) xyxy in input pixels and scores (B, N, C) in [0, 1] from raw (B, N, 5 + C).

    Raises:
        ValueError: N does not match the grid of ``input_hw`` and the anchors.
    """
    raw = np.asarray(raw, dtype=np.float32)
    cells, point_strides, anchor_wh = _grid_for(raw, strides, anchors, input_hw)
    boxes = decode_boxes(raw[..., :4], cells, point_strides, anchor_wh)
    return boxes, sigmoid(raw[..., 4:5]) * sigmoid(raw[..., 5:])


def detect(
    raw: np.ndarray,
    strides: Sequence[int],
    anchors,
    input_hw: tuple[int, int],
    conf: float = 0.25,
    iou: float = 0.45,
    max_det: int = 300,
    class_agnostic: bool = False,
    max_candidates: int = 1000,
) -> list[dict[str, np.ndarray]]:
    """``postprocess(*decode(raw, ...))`` decoding only the candidates' boxes.

    Returns:
        B dicts of ``boxes`` (K, 4) in input pixels, ``scores``, ``classes`` and ``index`` (the
        predictions kept), by decreasing score.
    """
    raw = np.asarray(raw, dtype=np.float32)
    cells, point_strides, anchor_wh = _grid_for(raw, strides, anchors, input_hw)
    results = []
    for image_raw in raw:
        logits = image_raw[:, 5:]
        # The best class has the largest logit: sigmoid is monotonic and the objectness factor
        # is shared by the classes of one prediction.
        best_classes = logits.argmax(axis=-1)
        best_logits = np.take_along_axis(logits, best_classes[:, None], axis=-1)[:, 0]
        best_scores = sigmoid(image_raw[:, 4]) * sigmoid(best_logits)
        index = top_passing(best_scores, best_scores, conf, max_candidates)
        boxes = decode_boxes(
            image_raw[index, :4], cells[index], point_strides[index], anchor_wh[index]
        )
        results.append(
            nms_image(
                boxes, best_scores[index], best_classes[index], index, iou, max_det, class_agnostic
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
    file carries it (``strides`` and ``anchors``).

    Raises:
        ValueError: the metadata has no ``anchors`` (a file not written by this codec).
    """
    if "anchors" not in params:
        raise ValueError(
            "the model's codec metadata has no 'anchors'; re-export it with this edgevision"
        )
    return detect(raw, params["strides"], params["anchors"], input_hw, conf, iou, max_det)
