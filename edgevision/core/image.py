"""Images in and out of a model, numpy + OpenCV only: the one image loader, the letterbox and
its inverse for every result field, and the centre crop classifiers see.

Everything here is torch-free: training, validation, prediction, export and the device runtime
all call these, so the device sees exactly the pixels the model was trained on.

Policy on EXIF orientation: pixels are used as stored (orientation ignored), because annotation
files describe the stored pixel grid (their ``<size>`` matches it). The data doctor reports every
image whose EXIF tag would rotate it, so a user whose tool annotated the rotated view finds out.

Letterbox: scale so the image fits ``new_shape`` keeping its aspect ratio, round the resized size
to whole pixels (at least one), centre-pad with grey 114 using integer pads. Points map forward
with ``x' = x * ratio + pad_left`` and back with ``x = (x' - pad_left) / ratio``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edgevision.core.errors import DataError
from edgevision.core.records import has_size

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
GREY = 114  # YOLO padding value: mid-grey keeps padded pixels near the data mean.
RESIZE_RATIO = 256 / 224  # centre crop: shorter side resized to imgsz * this first (ImageNet rule)
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
    if image_kind(data[:16].tobytes()) == "JPEG" and data[-2:].tobytes() != b"\xff\xd9":
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


# Leading bytes of each format OpenCV decodes: the content decides, never the file name
# (PNG exports renamed to .jpg are common, and their bytes end without a JPEG end marker).
_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"GIF8", "GIF"),
)
_SUFFIX_KIND = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".bmp": "BMP",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


def image_kind(head: bytes) -> str | None:
    """The image format of a file from its first 12+ bytes ("JPEG", "PNG", ...), None if unknown."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)


def file_kind(path: str | Path) -> str | None:
    """:func:`image_kind` of a file's first bytes; None when unknown or unreadable."""
    try:
        with open(path, "rb") as file:
            return image_kind(file.read(16))
    except OSError:
        return None  # unreadable files are reported by the readers, not as a format question


def suffix_mismatch(path: str | Path) -> str | None:
    """The real format of an image whose content disagrees with its suffix (PNG bytes in a
    ``.jpg``), else None. Reads 16 bytes."""
    expected = _SUFFIX_KIND.get(Path(path).suffix.lower())
    kind = file_kind(path)
    return kind if kind is not None and expected is not None and kind != expected else None


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


# -- letterbox: the model's input view of an image of any size


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


# -- the way back: every field of a result, from letterboxed input pixels to the original image


def _clip_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """(..., 4) xyxy clipped to ``[0, width] x [0, height]``, in place. ``ops.boxes.clip_boxes``
    is the library's; ``core`` sits below ``ops`` and the device runtime imports only ``core``."""
    boxes[..., 0::2] = boxes[..., 0::2].clip(0, width)
    boxes[..., 1::2] = boxes[..., 1::2].clip(0, height)
    return boxes


def unletterbox_boxes(
    boxes: np.ndarray, ratio: float, pad: tuple[float, float], orig_hw: tuple[int, int]
) -> np.ndarray:
    """(..., 4) xyxy in letterboxed input pixels -> original image pixels, clipped to the image."""
    out = np.asarray(boxes, dtype=np.float32).copy()
    out[..., 0::2] = (out[..., 0::2] - pad[0]) / ratio
    out[..., 1::2] = (out[..., 1::2] - pad[1]) / ratio
    return _clip_boxes(out, orig_hw[1], orig_hw[0])


def detections_to_original(
    found: dict[str, np.ndarray],
    ratio: float,
    pad: tuple[float, float],
    orig_hw: tuple[int, int],
) -> dict[str, np.ndarray]:
    """One image's detections from letterboxed input pixels to the original image.

    ``boxes`` are mapped and clipped (``keypoints`` too, when present); a box clipping leaves at
    most :data:`~edgevision.core.records.MIN_BOX_SIDE` wide or high is dropped with every per-box
    array, so no prediction is degenerate (COCO tools drop or choke on zero-area boxes).
    """
    boxes = unletterbox_boxes(found["boxes"], ratio, pad, orig_hw)
    keep = has_size(boxes)
    out = {key: np.asarray(value)[keep] for key, value in found.items() if key != "boxes"}
    out["boxes"] = boxes[keep]
    if "keypoints" in out:
        out["keypoints"] = unletterbox_keypoints(out["keypoints"], ratio, pad, orig_hw)
    return out


def unletterbox_keypoints(
    keypoints: np.ndarray, ratio: float, pad: tuple[float, float], orig_hw: tuple[int, int]
) -> np.ndarray:
    """(..., K, 2 or 3) ``x, y[, visibility]`` in input pixels -> original pixels.

    Coordinates are mapped and clipped to the image like boxes; the third channel (visibility or
    score) is carried over unchanged.
    """
    out = np.asarray(keypoints, dtype=np.float32).copy()
    out[..., 0] = ((out[..., 0] - pad[0]) / ratio).clip(0, orig_hw[1])
    out[..., 1] = ((out[..., 1] - pad[1]) / ratio).clip(0, orig_hw[0])
    return out


def unletterbox_masks(
    masks: np.ndarray, ratio: float, pad: tuple[float, float], orig_hw: tuple[int, int]
) -> np.ndarray:
    """(N, H_in, W_in) masks or class maps in input pixels -> (N, H, W) at the original size.

    The padding is cut away, then the rest is resized to the original image: nearest-neighbour,
    so a mask stays binary and a class map keeps whole class ids.
    """
    masks = np.asarray(masks)
    height, width = orig_hw
    resized_w = max(1, round(width * ratio))
    resized_h = max(1, round(height * ratio))
    left, top = int(pad[0]), int(pad[1])
    inner = masks[:, top : top + resized_h, left : left + resized_w]
    out = np.empty((len(masks), height, width), dtype=masks.dtype)
    for index, mask in enumerate(inner):
        out[index] = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    return out


# -- classifiers' view: resize the shorter side, crop the centre (torchvision's val recipe)


def resize_shorter(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) -> shorter side ``size``, aspect kept (rounded to whole pixels)."""
    height, width = image.shape[:2]
    ratio = size / min(height, width)
    return resize_image(image, (max(round(width * ratio), 1), max(round(height * ratio), 1)))


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central ``size x size`` window (as torchvision: offsets rounded); an image smaller
    than ``size`` on a side is first resized up so its shorter side is ``size``."""
    if min(image.shape[:2]) < size:
        image = resize_shorter(image, size)
    height, width = image.shape[:2]
    top, left = round((height - size) / 2), round((width - size) / 2)
    return image[top : top + size, left : left + size]


def center_crop_view(image: np.ndarray, imgsz: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (imgsz, imgsz, 3): shorter side to ``imgsz * 256/224``, centre crop."""
    return center_crop(resize_shorter(image, round(imgsz * RESIZE_RATIO)), imgsz)


def to_input(images: Sequence[np.ndarray]) -> np.ndarray:
    """(H, W, 3) uint8 RGB images of one size -> (B, 3, H, W) float32 in [0, 1], the model input."""
    batch = np.stack(images).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch, dtype=np.float32) / np.float32(255)
