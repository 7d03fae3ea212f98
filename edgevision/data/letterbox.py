"""Letterbox geometry and pixels, numpy + OpenCV only: the one copy used by training, validation,
prediction and the torch-free runtime (``runtime/preprocess.py`` imports it, so it must never
import torch, directly or through another edgevision module).

Scale so the image fits ``new_shape`` keeping its aspect ratio, round the resized size to whole
pixels (at least one), centre-pad with grey 114 using integer pads. Boxes map forward with
``x' = x * ratio + pad_left`` and back with ``x = (x' - pad_left) / ratio``.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

GREY = 114  # YOLO padding value: mid-grey keeps padded pixels near the data mean.


def as_hw(shape: int | Sequence[int]) -> tuple[int, int]:
    """A square side or an ``(h, w)`` pair as ``(h, w)`` ints."""
    if isinstance(shape, int | np.integer):
        return int(shape), int(shape)
    return int(shape[0]), int(shape[1])


def letterbox_params(
    image_hw: tuple[int, int], new_shape: int | tuple[int, int], scaleup: bool = True
) -> tuple[float, tuple[int, int], tuple[int, int]]:
    """Letterbox geometry: ``(ratio, (resized_w, resized_h), (pad_left, pad_top))``.

    The ratio fits the whole image inside ``new_shape`` (h, w); ``scaleup=False`` never enlarges.
    Pads are integers so the resized image is pasted without resampling.
    """
    (height, width), (new_h, new_w) = image_hw, as_hw(new_shape)
    ratio = min(new_h / height, new_w / width)
    if not scaleup:
        ratio = min(ratio, 1.0)
    # At least one pixel: a 4000x20 strip letterboxed to 64 would otherwise round to 0 rows.
    resized = (max(1, round(width * ratio)), max(1, round(height * ratio)))
    pad = ((new_w - resized[0]) // 2, (new_h - resized[1]) // 2)
    return ratio, resized, pad


def resize_image(image: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """Resize (H, W, 3); area averaging only for >= 2x shrinks where bilinear would alias."""
    height, width = image.shape[:2]
    if (width, height) == tuple(size_wh):
        return image
    shrink = max(width / size_wh[0], height / size_wh[1])
    interpolation = cv2.INTER_AREA if shrink >= 2 else cv2.INTER_LINEAR
    return cv2.resize(image, tuple(size_wh), interpolation=interpolation)


def letterbox(
    image: np.ndarray, new_shape: int | tuple[int, int], color: int = GREY, scaleup: bool = True
) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize to fit ``new_shape`` keeping the aspect ratio, then centre-pad to exactly that shape.

    The pixel grid matches the geometry of :func:`letterbox_params` up to the rounding of the
    resized size to whole pixels (<= 0.5 px on an axis).

    Args:
        image: (H, W, 3) uint8.
        new_shape: target size, an int for a square or (h, w).

    Returns:
        (new_h, new_w, 3) image, ratio, (pad_left, pad_top).
    """
    ratio, resized_wh, pad = letterbox_params(image.shape[:2], new_shape, scaleup)
    new_h, new_w = as_hw(new_shape)
    resized = resize_image(image, resized_wh)
    right, bottom = new_w - resized_wh[0] - pad[0], new_h - resized_wh[1] - pad[1]
    out = cv2.copyMakeBorder(
        resized, pad[1], bottom, pad[0], right, cv2.BORDER_CONSTANT, value=(color, color, color)
    )
    return out, ratio, pad
