"""The SSD prior-box codec in numpy: the runtime twin of ``models/codecs/ssd.py``.

The exported graph without ``--nms`` returns the detector's raw tensor (B, N, 4 + C + 1):
channels 0:4 SSD offsets of each prior, then C + 1 class logits, background first. The file's
``codec`` metadata carries what rebuilds the priors: ``strides`` (level sizes are
``ceil(H / stride)``), ``levels`` (per level ``scale``, ``zooms``, ``shapes``: prior
``w = min(scale * zoom * shape_w, 1)``), ``variances`` and ``scores`` ("softmax" or
"sigmoid"). The formulas and the order of operations follow the torch codec exactly, so the two
agree to float32 rounding (``tests/models/test_ssd.py`` pins them together).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from edgevision.runtime.codecs.anchor_free import sigmoid
from edgevision.runtime.nms import postprocess

FAMILY = "ssd"
MAX_LOG_SCALE = math.log(1000.0 / 16)  # as the torch codec (torchvision's bbox_xform_clip)


def level_sizes(level: dict) -> np.ndarray:
    """(A, 2) relative prior (w, h) of one level's cells, zoom-major, clipped to 1."""
    sizes = [
        (min(level["scale"] * zoom * w, 1.0), min(level["scale"] * zoom * h, 1.0))
        for zoom in level["zooms"]
        for w, h in level["shapes"]
    ]
    return np.array(sizes, dtype=np.float32).reshape(-1, 2)


def feature_sizes(strides: Sequence[int], input_hw: tuple[int, int]) -> list[tuple[int, int]]:
    """(f_h, f_w) per level: ``ceil(H / stride)``, the sizes the convs produce."""
    height, width = int(input_hw[0]), int(input_hw[1])
    return [(-(-height // s), -(-width // s)) for s in strides]


def priors(params: dict, input_hw: tuple[int, int]) -> np.ndarray:
    """(N, 4) relative ``cx, cy, w, h`` priors in raw-output order (cell-major, row-major)."""
    parts = []
    for level, (height, width) in zip(
        params["levels"], feature_sizes(params["strides"], input_hw), strict=True
    ):
        sizes = level_sizes(level)
        ys = (np.arange(height, dtype=np.float32) + np.float32(0.5)) / np.float32(height)
        xs = (np.arange(width, dtype=np.float32) + np.float32(0.5)) / np.float32(width)
        grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
        centres = np.stack([grid_x, grid_y], axis=-1).reshape(-1, 1, 2)
        centres = np.repeat(centres, len(sizes), axis=1)
        wh = np.broadcast_to(sizes[None], centres.shape)
        parts.append(np.concatenate([centres, wh], axis=-1).reshape(-1, 4))
    return np.concatenate(parts).astype(np.float32)


def decode_offsets(offsets: np.ndarray, prior_boxes: np.ndarray, variances) -> np.ndarray:
    """(..., 4) SSD offsets against (..., 4) ``cx, cy, w, h`` priors -> (..., 4) xyxy."""
    centre_var, size_var = np.float32(variances[0]), np.float32(variances[1])
    centre = prior_boxes[..., :2] + offsets[..., :2] * centre_var * prior_boxes[..., 2:]
    log_scale = np.minimum(offsets[..., 2:] * size_var, np.float32(MAX_LOG_SCALE))
    size = prior_boxes[..., 2:] * np.exp(log_scale)
    half = size / np.float32(2)
    return np.concatenate([centre - half, centre + half], axis=-1)


def class_scores(logits: np.ndarray, kind: str) -> np.ndarray:
    """(..., C + 1) logits -> (..., C) scores: softmax without background, or sigmoid."""
    if kind == "sigmoid":
        return sigmoid(logits[..., 1:])
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exps = np.exp(shifted)
    return (exps[..., 1:] / exps.sum(axis=-1, keepdims=True)).astype(np.float32)


def decode(
    raw: np.ndarray, params: dict, input_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (B, N, 4) xyxy in input pixels and scores (B, N, C) from raw (B, N, 4 + C + 1).

    Raises:
        ValueError: N does not match the priors of ``input_hw``.
    """
    raw = np.asarray(raw, dtype=np.float32)
    height, width = int(input_hw[0]), int(input_hw[1])
    prior_boxes = priors(params, (height, width))
    if raw.ndim != 3 or raw.shape[1] != len(prior_boxes) or raw.shape[2] < 6:
        raise ValueError(
            f"raw output of shape {raw.shape} does not fit input {height}x{width}: expected "
            f"(B, {len(prior_boxes)}, 4 + classes + 1); the input sides must be multiples of "
            f"{params.get('size_divisor', max(params['strides']))}"
        )
    relative = decode_offsets(raw[..., :4], prior_boxes, params["variances"])
    scale = np.array([width, height, width, height], dtype=np.float32)
    return relative * scale, class_scores(raw[..., 4:], params["scores"])


def detections(
    raw: np.ndarray,
    params: dict,
    input_hw: tuple[int, int],
    conf: float = 0.25,
    iou: float = 0.45,
    max_det: int = 300,
) -> list[dict[str, np.ndarray]]:
    """What a runtime session calls for this family: per image ``boxes`` (K, 4) input pixels,
    ``scores``, ``classes`` and ``index`` (the prior of each detection), best first.

    The best class per prior, the top 1000 candidates above ``conf``, class-aware NMS, as the
    torch ``ops.nms.postprocess`` on the torch decode.
    """
    return postprocess(*decode(raw, params, input_hw), conf=conf, iou=iou, max_det=max_det)
