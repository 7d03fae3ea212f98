"""Detection transforms that move pixels, boxes and keypoints together.

Frame: every coordinate is continuous and 0-based (pixel ``i`` spans ``[i, i + 1]``), as in
``records.py``. A geometric transform is a 3x3 affine matrix in that frame; the image is warped
with the same matrix converted to OpenCV's pixel-index convention, so boxes stay on their pixels.

Training composes letterbox/centre, rotation, scale, shear, translation and flip into ONE matrix
and ONE ``cv2.warpAffine`` per sample (:func:`random_affine`). The val/predict path is
:func:`letterbox` only: resize so the long side fits, then centre-pad with grey (114) to the exact
target shape (a square ``imgsz`` for the dataset), with integer pads.

Visible-area rule (:func:`filter_boxes`), applied after every crop: boxes are clipped to the image
and a box survives only if its clipped area is at least 20% of its original area times the
transform's area factor ``|det A|``, both sides are at least 2 px and its aspect ratio is at most
20. Under rotation the axis-aligned box of the rotated corners is larger than ``|det A|`` times the
area, so rotated boxes are kept more leniently (as in YOLOv5).

All randomness comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from edgevision.core.image import GREY, as_hw, letterbox
from edgevision.ops.boxes import box_area, clip_boxes

MIN_VISIBLE_FRACTION = 0.2  # visible-area rule: keep a box if >= 20% of it stays inside
MIN_SIDE = 2.0  # px; thinner boxes carry no learnable signal after a crop
MAX_ASPECT = 20.0  # slivers cut off at an image edge are dropped


@dataclass
class Sample:
    """An image and its objects, all in the image's pixel frame.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        boxes: (N, 4) float32 xyxy.
        labels: (N,) int64 class indices.
        keypoints: (N, K, 3) float32 ``x, y, visibility`` or None.
        full_area: (N,) float32 area each box had before a crop cut it (mosaic tiles), in this
            frame; None means the boxes are uncut. Used by the visible-area rule.
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    keypoints: np.ndarray | None = None
    full_area: np.ndarray | None = None

    def select(self, keep: np.ndarray) -> Sample:
        """The sample with only the objects that ``keep`` (bool mask) selects."""
        return replace(
            self,
            boxes=self.boxes[keep],
            labels=self.labels[keep],
            keypoints=None if self.keypoints is None else self.keypoints[keep],
            full_area=None if self.full_area is None else self.full_area[keep],
        )


# ----------------------------------------------------------------------------- matrices


def translation(dx: float, dy: float) -> np.ndarray:
    """3x3 matrix moving points by ``(dx, dy)``."""
    return np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], dtype=np.float64)


def scaling(sx: float, sy: float | None = None) -> np.ndarray:
    """3x3 matrix scaling about the origin."""
    return np.diag([sx, sx if sy is None else sy, 1.0])


def hflip_matrix(width: float) -> np.ndarray:
    """3x3 matrix mirroring the continuous frame ``[0, width]``: ``x -> width - x``."""
    return np.array([[-1, 0, width], [0, 1, 0], [0, 0, 1]], dtype=np.float64)


def affine_boxes(boxes: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy -> (N, 4) axis-aligned box around the 4 transformed corners (3x3 matrix)."""
    x0, y0, x1, y1 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    corners = np.stack([x0, y0, x1, y0, x1, y1, x0, y1], axis=1).reshape(-1, 4, 2)
    moved = corners @ matrix[:2, :2].T + matrix[:2, 2]
    return np.concatenate([moved.min(axis=1), moved.max(axis=1)], axis=1).astype(np.float32)


def affine_keypoints(keypoints: np.ndarray, matrix: np.ndarray, width: float, height: float):
    """(N, K, 3) keypoints moved by a 3x3 matrix; those leaving ``[0,W]x[0,H]`` become (0, 0, 0).

    Zeroing follows COCO, where an unlabelled keypoint is written ``0, 0, 0``.
    """
    out = keypoints.astype(np.float32, copy=True)
    out[..., :2] = keypoints[..., :2] @ matrix[:2, :2].T + matrix[:2, 2]
    return hide_outside(out, 0.0, 0.0, width, height)


def hide_outside(keypoints: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Set keypoints outside ``[x0,x1]x[y0,y1]`` (and unlabelled ones) to (0, 0, 0), in place."""
    x, y = keypoints[..., 0], keypoints[..., 1]
    outside = (x < x0) | (x > x1) | (y < y0) | (y > y1) | (keypoints[..., 2] <= 0)
    keypoints[outside] = 0.0
    return keypoints


def warp_image(image: np.ndarray, matrix: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Warp (H, W, 3) with a continuous-frame 3x3 matrix into (out_h, out_w, 3), grey border.

    OpenCV maps pixel *indices*; pixel ``i`` is centred at ``i + 0.5`` in our frame, so the index
    matrix is ``T(-0.5) @ M @ T(0.5)``. With it, ``matrix = scaling(s)`` reproduces
    ``cv2.resize`` and ``hflip_matrix(W)`` reproduces ``cv2.flip`` exactly.
    """
    index_matrix = translation(-0.5, -0.5) @ matrix @ translation(0.5, 0.5)
    return cv2.warpAffine(
        image,
        index_matrix[:2],
        (int(out_hw[1]), int(out_hw[0])),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(GREY, GREY, GREY),
    )


# ----------------------------------------------------------------------------- box filtering


def filter_boxes(sample: Sample, area_factor: float = 1.0) -> Sample:
    """Clip boxes to the image and apply the visible-area rule (module docstring).

    Args:
        sample: boxes in the image frame, possibly extending past it.
        area_factor: how much the last transform scaled areas (``|det A|``); multiplies
            ``full_area`` (or the current area when ``full_area`` is None).

    Returns:
        The sample with clipped boxes, surviving objects only and ``full_area`` reset.
    """
    height, width = sample.image.shape[:2]
    reference = box_area(sample.boxes) if sample.full_area is None else sample.full_area
    clipped = clip_boxes(sample.boxes, width, height)
    w, h = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    aspect = np.maximum(w / np.maximum(h, 1e-6), h / np.maximum(w, 1e-6))
    visible = w * h >= MIN_VISIBLE_FRACTION * reference * area_factor
    keep = visible & (w >= MIN_SIDE) & (h >= MIN_SIDE) & (aspect <= MAX_ASPECT)
    kept = replace(sample, boxes=clipped.astype(np.float32), full_area=None)
    return kept.select(keep)


def apply_affine(
    sample: Sample,
    matrix: np.ndarray,
    out_hw: tuple[int, int],
    flipped: bool = False,
    flip_idx: list[int] | None = None,
) -> Sample:
    """Move image, boxes and keypoints by one 3x3 matrix into an ``out_hw`` image, then filter.

    Args:
        flipped: the matrix mirrors x; keypoints are then reordered by ``flip_idx`` so a left
            wrist stays labelled "left wrist".
    """
    image = warp_image(sample.image, matrix, out_hw)
    boxes = affine_boxes(sample.boxes, matrix)
    keypoints = sample.keypoints
    if keypoints is not None:
        keypoints = affine_keypoints(keypoints, matrix, out_hw[1], out_hw[0])
        if flipped and flip_idx is not None:
            keypoints = keypoints[:, flip_idx]
    moved = replace(sample, image=image, boxes=boxes, keypoints=keypoints)
    return filter_boxes(moved, area_factor=abs(float(np.linalg.det(matrix[:2, :2]))))


# ----------------------------------------------------------------------------- letterbox


def letterbox_matrix(ratio: float, pad: tuple[int, int]) -> np.ndarray:
    """3x3 matrix of the letterbox: ``x' = x * ratio + pad_left`` (inverse: the contract's
    ``x = (x' - pad_left) / ratio``)."""
    return translation(pad[0], pad[1]) @ scaling(ratio)


def letterbox_sample(sample: Sample, new_shape: int | tuple[int, int], scaleup: bool = True):
    """:func:`letterbox` for a whole sample: returns ``(sample, ratio, pad)``; boxes unfiltered."""
    image, ratio, pad = letterbox(sample.image, new_shape, scaleup=scaleup)
    matrix = letterbox_matrix(ratio, pad)
    keypoints = None
    if sample.keypoints is not None:
        keypoints = affine_keypoints(sample.keypoints, matrix, image.shape[1], image.shape[0])
    boxes = affine_boxes(sample.boxes, matrix)
    return replace(sample, image=image, boxes=boxes, keypoints=keypoints), ratio, pad


# ----------------------------------------------------------------------------- augmentation


def random_affine_matrix(
    rng: np.random.Generator,
    in_hw: tuple[int, int],
    out_hw: tuple[int, int],
    degrees: float = 0.0,
    translate: float = 0.1,
    scale: float = 0.5,
    shear: float = 0.0,
) -> np.ndarray:
    """YOLOv5's random geometry as one 3x3 matrix: centre the input on the origin, rotate and
    scale, shear, then move the centre to a random point near the output centre.

    Draws exactly 6 numbers from ``rng`` whatever the gains, so streams stay aligned.
    """
    angle = rng.uniform(-degrees, degrees)
    zoom = rng.uniform(1 - scale, 1 + scale)
    shear_x, shear_y = (math.tan(math.radians(v)) for v in rng.uniform(-shear, shear, 2))
    centre_x, centre_y = rng.uniform(0.5 - translate, 0.5 + translate, 2) * (out_hw[1], out_hw[0])
    rotate = np.eye(3)
    rotate[:2] = cv2.getRotationMatrix2D(angle=angle, center=(0, 0), scale=zoom)
    shear_matrix = np.array([[1, shear_x, 0], [shear_y, 1, 0], [0, 0, 1]], dtype=np.float64)
    centre = translation(-in_hw[1] / 2, -in_hw[0] / 2)
    return translation(centre_x, centre_y) @ shear_matrix @ rotate @ centre


def random_affine(
    sample: Sample,
    rng: np.random.Generator,
    out_size: int | tuple[int, int],
    degrees: float = 0.0,
    translate: float = 0.1,
    scale: float = 0.5,
    shear: float = 0.0,
    fliplr: float = 0.0,
    flip_idx: list[int] | None = None,
) -> Sample:
    """Random rotation/scale/shear/translation (+ optional horizontal flip) in one warpAffine.

    The input is centred in the ``out_size`` output, so a plain image is letterboxed and a
    2x mosaic canvas is cropped back to ``out_size`` (YOLOv5's ``border=-imgsz // 2``).

    Args:
        sample: image of any size.
        out_size: output (h, w) or a square side.
        degrees, translate, scale, shear: ranges as in YOLOv5 (translate is a fraction of the
            output, scale draws from ``[1 - scale, 1 + scale]``).
        fliplr: probability of mirroring, folded into the same matrix.
        flip_idx: keypoint order after a mirror (left/right swap).
    """
    out_hw = as_hw(out_size)
    matrix = random_affine_matrix(
        rng, sample.image.shape[:2], out_hw, degrees, translate, scale, shear
    )
    flipped = bool(rng.random() < fliplr)
    if flipped:
        matrix = hflip_matrix(out_hw[1]) @ matrix
    return apply_affine(sample, matrix, out_hw, flipped, flip_idx)


def horizontal_flip(sample: Sample, flip_idx: list[int] | None = None) -> Sample:
    """Mirror the image left-right; boxes mirror, keypoints mirror and swap by ``flip_idx``."""
    width = sample.image.shape[1]
    boxes = affine_boxes(sample.boxes, hflip_matrix(width))
    keypoints = sample.keypoints
    if keypoints is not None:
        keypoints = keypoints.copy()
        labelled = keypoints[..., 2] > 0  # unlabelled (0, 0, 0) points stay zero
        keypoints[..., 0] = np.where(labelled, width - keypoints[..., 0], 0.0)
        if flip_idx is not None:
            keypoints = keypoints[:, flip_idx]
    return replace(sample, image=cv2.flip(sample.image, 1), boxes=boxes, keypoints=keypoints)


def hsv_jitter(
    image: np.ndarray, h_gain: float, s_gain: float, v_gain: float, rng: np.random.Generator
) -> np.ndarray:
    """Random hue/saturation/value gains through three 256-entry lookup tables (YOLOv5).

    Args:
        image: (H, W, 3) uint8 RGB; not modified.

    Returns:
        A new (H, W, 3) uint8 RGB image. Draws 3 numbers from ``rng``.
    """
    gains = rng.uniform(-1, 1, 3) * (h_gain, s_gain, v_gain) + 1
    if not (h_gain or s_gain or v_gain):
        return image
    hue, sat, val = cv2.split(cv2.cvtColor(image, cv2.COLOR_RGB2HSV))
    x = np.arange(256, dtype=np.float64)
    lut_hue = ((x * gains[0]) % 180).astype(np.uint8)  # OpenCV 8-bit hue is 0..179
    lut_sat = np.clip(x * gains[1], 0, 255).astype(np.uint8)
    lut_val = np.clip(x * gains[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(hue, lut_hue), cv2.LUT(sat, lut_sat), cv2.LUT(val, lut_val)))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


# ----------------------------------------------------------------------------- multi-image


def _tile(position: int, centre: tuple[int, int], hw: tuple[int, int], canvas: int):
    """Where tile ``position`` (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) lands.

    Each image keeps the corner that touches the centre; only the canvas edge crops it.
    Returns the canvas region (x0, y0, x1, y1) and the offset image -> canvas (dx, dy).
    """
    (xc, yc), (h, w) = centre, hw
    x0 = xc if position in (1, 3) else max(xc - w, 0)
    x1 = min(xc + w, canvas) if position in (1, 3) else xc
    y0 = yc if position in (2, 3) else max(yc - h, 0)
    y1 = min(yc + h, canvas) if position in (2, 3) else yc
    dx = xc if position in (1, 3) else xc - w
    dy = yc if position in (2, 3) else yc - h
    return (x0, y0, x1, y1), (dx, dy)


def mosaic4(samples: list[Sample], imgsz: int, rng: np.random.Generator) -> Sample:
    """Four samples around a random centre of a ``2 * imgsz`` grey canvas (YOLOv5 mosaic).

    Pasting is plain slicing (no resampling); follow with :func:`random_affine` with
    ``out_size=imgsz`` to crop back. Boxes are clipped to their tile and remember their uncut
    area in ``full_area`` so the visible-area rule sees the cut. Draws 2 numbers from ``rng``.

    Args:
        samples: 4 samples, images of any size (typically long side ``imgsz``); all with
            keypoints of the same K, or all without.
    """
    canvas_size = 2 * imgsz
    canvas = np.full((canvas_size, canvas_size, 3), GREY, dtype=np.uint8)
    centre = tuple(int(v) for v in rng.uniform(imgsz / 2, 3 * imgsz / 2, 2))
    parts = []
    for position, sample in enumerate(samples):
        (x0, y0, x1, y1), (dx, dy) = _tile(position, centre, sample.image.shape[:2], canvas_size)
        canvas[y0:y1, x0:x1] = sample.image[y0 - dy : y1 - dy, x0 - dx : x1 - dx]
        boxes = sample.boxes + np.array([dx, dy, dx, dy], dtype=np.float32)
        full = box_area(boxes) if sample.full_area is None else sample.full_area
        boxes = clip_boxes(boxes - [x0, y0, x0, y0], x1 - x0, y1 - y0) + [x0, y0, x0, y0]
        keypoints = None
        if sample.keypoints is not None:
            keypoints = sample.keypoints.copy()
            keypoints[..., :2] += (dx, dy)
            keypoints = hide_outside(keypoints, x0, y0, x1, y1)
        parts.append(Sample(sample.image, boxes.astype(np.float32), sample.labels, keypoints, full))
    return _concat(canvas, parts)


def _concat(image: np.ndarray, parts: list[Sample]) -> Sample:
    """One sample on ``image`` holding the objects of every part."""
    keypoints = None
    if parts[0].keypoints is not None:
        keypoints = np.concatenate([p.keypoints for p in parts])
    full_area = None
    if any(p.full_area is not None for p in parts):
        areas = [box_area(p.boxes) if p.full_area is None else p.full_area for p in parts]
        full_area = np.concatenate(areas).astype(np.float32)
    return Sample(
        image=image,
        boxes=np.concatenate([p.boxes for p in parts]).astype(np.float32),
        labels=np.concatenate([p.labels for p in parts]),
        keypoints=keypoints,
        full_area=full_area,
    )


def mixup(sample_a: Sample, sample_b: Sample, rng: np.random.Generator) -> Sample:
    """Blend two same-size samples with a Beta(32, 32) ratio (~0.5) and keep both box sets.

    Draws 1 number from ``rng``.
    """
    ratio = float(rng.beta(32.0, 32.0))
    image = cv2.addWeighted(sample_a.image, ratio, sample_b.image, 1.0 - ratio, 0.0)
    return _concat(image, [sample_a, sample_b])
