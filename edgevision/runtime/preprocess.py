"""Letterbox in and out, in numpy + OpenCV only: the runtime twin of ``data/transforms.py``.

The torch-side letterbox lives in ``data/transforms.py``, which imports ``ops`` and so torch; an
edge device without PyTorch needs the same pixels, so this module repeats the few lines that make
them. ``tests/runtime/test_preprocess.py`` pins both to identical output, pixel for pixel.

Geometry (same as the training/validation path): scale so the image fits ``new_shape`` keeping
its aspect ratio, round the resized size to whole pixels, centre-pad with grey 114 using integer
pads. Boxes map back with ``x_orig = (x - pad_left) / ratio`` and are clipped to the image.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

GREY = 114  # YOLO padding value, the one the model was trained with


def _as_hw(shape: int | Sequence[int]) -> tuple[int, int]:
    return (int(shape), int(shape)) if isinstance(shape, int | np.integer) else tuple(shape)


def letterbox_params(
    image_hw: tuple[int, int], new_shape: int | tuple[int, int], scaleup: bool = True
) -> tuple[float, tuple[int, int], tuple[int, int]]:
    """``(ratio, (resized_w, resized_h), (pad_left, pad_top))`` that fit ``image_hw`` in ``new_shape``."""
    (height, width), (new_h, new_w) = image_hw, _as_hw(new_shape)
    ratio = min(new_h / height, new_w / width)
    if not scaleup:
        ratio = min(ratio, 1.0)
    resized = (round(width * ratio), round(height * ratio))
    return ratio, resized, ((new_w - resized[0]) // 2, (new_h - resized[1]) // 2)


def resize_image(image: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """Resize (H, W, 3); area averaging for >= 2x shrinks, where bilinear would alias."""
    height, width = image.shape[:2]
    if (width, height) == tuple(size_wh):
        return image
    shrink = max(width / size_wh[0], height / size_wh[1])
    interpolation = cv2.INTER_AREA if shrink >= 2 else cv2.INTER_LINEAR
    return cv2.resize(image, tuple(size_wh), interpolation=interpolation)


def letterbox(
    image: np.ndarray, new_shape: int | tuple[int, int], color: int = GREY, scaleup: bool = True
) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Fit (H, W, 3) uint8 into ``new_shape`` and centre-pad it.

    Returns:
        (new_h, new_w, 3) uint8 image, ratio, (pad_left, pad_top).
    """
    ratio, resized_wh, pad = letterbox_params(image.shape[:2], new_shape, scaleup)
    new_h, new_w = _as_hw(new_shape)
    resized = resize_image(image, resized_wh)
    right, bottom = new_w - resized_wh[0] - pad[0], new_h - resized_wh[1] - pad[1]
    out = cv2.copyMakeBorder(
        resized, pad[1], bottom, pad[0], right, cv2.BORDER_CONSTANT, value=(color, color, color)
    )
    return out, ratio, pad


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
