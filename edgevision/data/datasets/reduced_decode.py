"""Decode JPEGs at 1/2, 1/4 or 1/8 scale when the training size is that much smaller.

A photo of 800 px trained at 320 px is shrunk 2.5x right after decoding, so most of a full
decode is thrown away. libjpeg can decode at 1/2, 1/4 and 1/8 scale directly (it skips most of
the inverse DCT and the colour conversion of pixels that would be discarded); OpenCV exposes that
as ``cv2.IMREAD_REDUCED_COLOR_{2,4,8}``. The reduced image is then resized to exactly the size
the full path gives, with the same geometry, so boxes scale by the same ratio as before.

Rules:

- the reduction is the largest ``n`` in 8, 4, 2 with ``imgsz / max(h, w) <= 1 / n``: the
  decoded image is never smaller than the target, so nothing is upsampled;
- JPEG only, decided by content; other formats (and incomplete JPEGs, whose errors
  ``read_image`` words) go through the full decode;
- EXIF orientation is ignored, as by :func:`~edgevision.core.image.read_image`;
- the original size comes from the caller (the dataset's header-probed record size) or from the
  file header, never from a full decode; a decoded size that disagrees with it falls back to the
  full decode, which measures the real size.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from edgevision.core.errors import DataError
from edgevision.core.image import image_kind, read_image_size, resize_image

# IGNORE_ORIENTATION: pixels as stored, like read_image (annotations describe the stored grid).
REDUCED_DECODE_FLAGS = {
    2: cv2.IMREAD_REDUCED_COLOR_2 | cv2.IMREAD_IGNORE_ORIENTATION,
    4: cv2.IMREAD_REDUCED_COLOR_4 | cv2.IMREAD_IGNORE_ORIENTATION,
    8: cv2.IMREAD_REDUCED_COLOR_8 | cv2.IMREAD_IGNORE_ORIENTATION,
}


def reduction_for(orig_hw: tuple[int, int], imgsz: int) -> int:
    """The JPEG decode reduction (1, 2, 4 or 8) for an image of ``orig_hw`` (h, w) resized so its
    long side is ``imgsz``: the largest ``n`` with ``imgsz / max(h, w) <= 1 / n``, else 1."""
    long_side = max(orig_hw)
    return next((n for n in (8, 4, 2) if n * imgsz <= long_side), 1)


def reduced_size(orig_hw: tuple[int, int], reduction: int) -> tuple[int, int]:
    """(h, w) libjpeg returns at ``1 / reduction`` scale: ``ceil(side / reduction)`` (a partial
    8x8 block still gives a pixel). OpenCV's other decoders round down instead."""
    return math.ceil(orig_hw[0] / reduction), math.ceil(orig_hw[1] / reduction)


def target_size(orig_hw: tuple[int, int], imgsz: int) -> tuple[int, int]:
    """(w, h) of an image of ``orig_hw`` resized so its long side is ``imgsz`` (>= 1 px a side),
    the size the dataset has always used."""
    height, width = orig_hw
    ratio = imgsz / max(height, width)
    return max(1, round(width * ratio)), max(1, round(height * ratio))


def decode_reduced_jpeg(path: str | Path, reduction: int) -> np.ndarray | None:
    """(ceil(h / n), ceil(w / n), 3) uint8 RGB of a JPEG decoded at ``1 / reduction`` scale.

    Returns None when the fast path does not apply: the content is not a JPEG, the file lacks
    its end-of-image marker (``read_image`` tells a truncated file from trailing zeros and words
    the error) or it does not decode. The caller then decodes fully, which raises the error.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None  # read_image names the reason
    if image_kind(data[:16].tobytes()) != "JPEG" or data[-2:].tobytes() != b"\xff\xd9":
        return None
    image = cv2.imdecode(data, REDUCED_DECODE_FLAGS[reduction])
    if image is None:
        return None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)


def resize_reduced(
    image: np.ndarray, reduction: int, orig_hw: tuple[int, int], size_wh: tuple[int, int]
) -> np.ndarray:
    """A reduced decode resized to ``size_wh`` with the geometry of resizing the full image.

    The full path maps original x to ``x * size_w / w``. Reduced pixel ``j`` covers original
    ``[n j, n j + n)``, so when ``w`` is not a multiple of ``n`` the last pixel reaches past the
    image and a plain resize would shrink the content by up to ``(n - 1) / n`` px at the far
    edge. A warp with the exact scale ``n * size_w / w`` keeps the mapping. When at least 2x
    shrink remains (n = 8 on very large images) area averaging is kept instead (bilinear would
    alias); there the edge error is below ``(n - 1) / (2 n)`` < 0.5 px.
    """
    height, width = orig_hw
    decoded_h, decoded_w = image.shape[:2]
    scale_x, scale_y = reduction * size_wh[0] / width, reduction * size_wh[1] / height
    exact_grid = decoded_w * reduction == width and decoded_h * reduction == height
    if exact_grid or min(scale_x, scale_y) <= 0.5:
        return resize_image(image, size_wh)
    # Inverse map, pixel centres as cv2.resize: src = (dst + 0.5) / scale - 0.5.
    inverse = np.array(
        [[1 / scale_x, 0, 0.5 / scale_x - 0.5], [0, 1 / scale_y, 0.5 / scale_y - 0.5]]
    )
    return cv2.warpAffine(
        image,
        inverse,
        tuple(size_wh),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def load_reduced(
    path: str | Path, imgsz: int, orig_hw: tuple[int, int] | None = None
) -> tuple[np.ndarray, tuple[int, int]] | None:
    """``(image resized so its long side is imgsz, (orig_h, orig_w))`` through a reduced JPEG
    decode, or None when the full decode should be used (small image, not a JPEG, incomplete
    file, or a decoded size that disagrees with ``orig_hw``).

    Args:
        orig_hw: the stored size (h, w) when known, e.g. the header-probed record size; else the
            file header is read (no pixels decoded).
    """
    if orig_hw is None or min(orig_hw) <= 0:
        try:
            width, height = read_image_size(path)
        except DataError:
            return None  # read_image words the error
        orig_hw = (height, width)
    reduction = reduction_for(orig_hw, imgsz)
    if reduction == 1:
        return None
    image = decode_reduced_jpeg(path, reduction)
    if image is None or image.shape[:2] != reduced_size(orig_hw, reduction):
        return None  # a stale or wrong size: the full decode measures the real one
    size_wh = target_size(orig_hw, imgsz)
    return resize_reduced(image, reduction, orig_hw, size_wh), (int(orig_hw[0]), int(orig_hw[1]))
