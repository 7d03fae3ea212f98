"""Letterbox in and out, in numpy + OpenCV only.

The letterbox itself is ``data/letterbox.py``, the one torch-free copy that training and
validation use too, so the device sees the pixels the model was trained on. Here: the model
input conversion and the way back, ``x_orig = (x - pad_left) / ratio`` clipped to the image (the
numpy twin of ``ops.unletterbox_boxes``, which needs torch).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def to_input(images: Sequence[np.ndarray]) -> np.ndarray:
    """Letterboxed (H, W, 3) uint8 RGB images -> (B, 3, H, W) float32 in [0, 1], the model input."""
    batch = np.stack(images).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch, dtype=np.float32) / np.float32(255)


def clip_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """(..., 4) xyxy clipped to ``[0, width] x [0, height]`` (a copy)."""
    out = boxes.copy()
    out[..., 0::2] = out[..., 0::2].clip(0, width)
    out[..., 1::2] = out[..., 1::2].clip(0, height)
    return out


def unletterbox_boxes(
    boxes: np.ndarray, ratio: float, pad: tuple[float, float], orig_hw: tuple[int, int]
) -> np.ndarray:
    """(..., 4) xyxy in letterboxed input pixels -> original image pixels, clipped to the image."""
    out = boxes.copy()
    out[..., 0::2] = (out[..., 0::2] - pad[0]) / ratio
    out[..., 1::2] = (out[..., 1::2] - pad[1]) / ratio
    return clip_boxes(out, orig_hw[1], orig_hw[0])
