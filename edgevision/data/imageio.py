"""The one image loader: decode to RGB uint8, read sizes from headers, report EXIF orientation.

Policy on EXIF orientation: pixels are used as stored (orientation ignored), because annotation
files describe the stored pixel grid (their ``<size>`` matches it). The data doctor reports every
image whose EXIF tag would rotate it, so a user whose tool annotated the rotated view finds out.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np

from edgevision.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
_EXIF_ORIENTATION = 0x0112
_DECODE_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB.

    Grayscale, RGBA (alpha dropped), 16-bit (scaled to 8-bit) and CMYK JPEG all come out as RGB.
    Reads bytes first so non-ASCII paths work.

    Raises:
        DataError: the file is missing, empty, truncated or not an image.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise DataError(path, f"cannot read image ({e.strerror or e})", "check the path") from e
    if data.size == 0:
        raise DataError(path, "image file is empty (0 bytes)", "replace or remove the image")
    if path.suffix.lower() in (".jpg", ".jpeg") and data[-2:].tobytes() != b"\xff\xd9":
        # OpenCV 4.x decodes a truncated JPEG into a grey-bottomed image with only a warning.
        trimmed = np.trim_zeros(data, "b")
        if trimmed[-2:].tobytes() != b"\xff\xd9":
            raise DataError(
                path, "JPEG is truncated (no end-of-image marker)", "replace or remove the image"
            )
    image = cv2.imdecode(data, _DECODE_FLAGS)
    if image is None:
        raise DataError(path, "image cannot be decoded", "replace or remove the image")
    return cv2.cvtColor(
        image, cv2.COLOR_BGR2RGB, dst=image
    )  # in place: one copy of an 8000x6000 image, not two


def read_image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of the stored pixel grid, from the file header (no full decode).

    Raises:
        DataError: the file is missing or its header is not an image header.
    """
    from PIL import Image, UnidentifiedImageError  # header reads only; the runtime needs no Pillow

    path = Path(path)
    try:
        with warnings.catch_warnings():
            # Only the header is read here; Pillow's size warning is meant for decoding.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.size
    except Image.DecompressionBombError as e:
        raise DataError(
            path, f"image too large to decode safely ({e})", "downscale the image"
        ) from e
    except FileNotFoundError as e:
        raise DataError(path, "image file not found", "check the file name") from e
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataError(
            path, f"image header unreadable ({e})", "replace or remove the image"
        ) from e


def exif_orientation(path: str | Path) -> int:
    """EXIF orientation tag (1 = as stored; 5-8 swap width and height); 1 when absent."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except (UnidentifiedImageError, OSError, ValueError):
        return 1
