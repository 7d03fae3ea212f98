"""The embedded demo dataset: drawn shapes on textured backgrounds, generated, never downloaded.

Why these choices:

- the *shape* decides the class (circle, cross, ring, square, star, triangle); colour, texture,
  rotation and a mild stretch are random per object, so a model cannot shortcut on colour;
- sizes are log-uniform from 12 px (also after a 320 px letterbox) to 45% of the shorter
  image side, so about 40% of the boxes are COCO-small (< 32^2) yet none is too tiny to learn;
- later objects may hide up to ``max_occlusion`` of an earlier one; the box stays the full drawn
  (amodal) object, tight around its pixels (>= 50% anti-aliased coverage);
- image sizes vary (width 256-400, aspect 0.75-1.33) so letterboxing is exercised;
- every image has its own seeded generator (seed, split, index): the same seed gives byte-identical
  files, and an image does not change when another split's size does.

Layout written: ``JPEGImages/synth_NNNNNN.jpg``, ``Annotations/synth_NNNNNN.xml`` and
``ImageSets/Main/{train,val,trainval}.txt``: a plain VOC tree every reader accepts.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from edgevision.core.errors import ConfigError
from edgevision.core.fileio import atomic_write_text
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.formats.voc import write_voc
from edgevision.data.synth.common import (
    clear_earlier_synth,
    image_rng,
    random_colour,
    regular_polygon,
    write_jpeg,
)

CLASS_NAMES = ("circle", "cross", "ring", "square", "star", "triangle")
ASPECT_RANGE = (0.75, 4 / 3)  # image height / width
MIN_OBJECT_SIZE = 12  # longest side of the drawn object, image pixels
MIN_INPUT_SIZE = 12  # ... and at least this after letterboxing the image to DESIGN_IMGSZ
DESIGN_IMGSZ = 320  # the input size the demo trains at
_FILE_PATTERN = re.compile(r"synth_\d{6}\.(jpg|xml)")
_SUBPIXEL_BITS = 4  # cv2 drawing shift: vertices at 1/16 pixel
_SUPERSAMPLE = 4  # coverage resolution per pixel side


def _circle() -> list[np.ndarray]:
    return [regular_polygon(48)]


def _cross() -> list[np.ndarray]:
    arm = 0.34
    quarter = [(arm, -1), (arm, -arm), (1, -arm)]  # one corner of the plus, then rotate x4
    points = []
    for turn in range(4):
        for x, y in quarter:
            for _ in range(turn):
                x, y = -y, x
            points.append((x, y))
    return [np.array(points, dtype=np.float64)]


def _ring() -> list[np.ndarray]:
    # Two contours: fillPoly leaves the region inside both empty, which makes the hole.
    return [regular_polygon(48), regular_polygon(48, 0.55)[::-1]]


def _square() -> list[np.ndarray]:
    return [np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)]


def _star() -> list[np.ndarray]:
    outer, inner = regular_polygon(5), regular_polygon(5, 0.42)
    inner = inner @ np.array(
        [[np.cos(np.pi / 5), np.sin(np.pi / 5)], [-np.sin(np.pi / 5), np.cos(np.pi / 5)]]
    )
    return [np.stack([outer, inner], axis=1).reshape(-1, 2)]


def _triangle() -> list[np.ndarray]:
    triangle = regular_polygon(3)
    triangle[:, 1] += 0.25  # centre the bounding box on the origin
    return [triangle]


# Index i draws class CLASS_NAMES[i].
_SHAPES = (_circle, _cross, _ring, _square, _star, _triangle)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8: a two-colour gradient, blotchy low-frequency noise and line distractors."""
    # Both the gradient and the blotches are smooth: build them on a coarse grid, upsample once.
    cell = int(rng.integers(12, 48))  # blotch scale in pixels
    grid_height, grid_width = height // cell + 2, width // cell + 2
    grey = rng.uniform(50, 205)
    start, end = grey + rng.uniform(-45, 45, 3), grey + rng.uniform(-45, 45, 3)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (
        np.cos(angle) * np.arange(grid_width)[None, :]
        + np.sin(angle) * np.arange(grid_height)[:, None]
    )
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1.0)
    coarse = start + ramp[..., None] * (end - start)
    coarse += rng.normal(0, rng.uniform(8, 28), coarse.shape)
    image = cv2.resize(coarse.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    image = np.clip(image, 0, 255, out=image).astype(np.uint8)
    _draw_distractors(rng, image)
    return image


def _draw_distractors(rng: np.random.Generator, image: np.ndarray) -> None:
    """Straight lines and open arcs: clutter that is never one of the classes (no closed shapes)."""
    height, width = image.shape[:2]
    for _ in range(int(rng.integers(0, 7))):
        start = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        end = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        colour = tuple(float(c) for c in random_colour(rng, 0.25))
        cv2.line(image, start, end, colour, int(rng.integers(1, 3)), cv2.LINE_AA)
    for _ in range(int(rng.integers(0, 4))):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(8, 60)), int(rng.integers(8, 60)))
        start_angle = float(rng.uniform(0, 360))
        colour = tuple(float(c) for c in random_colour(rng, 0.25))
        sweep = float(rng.uniform(40, 200))  # well short of a closed ring
        cv2.ellipse(
            image, centre, axes, 0, start_angle, start_angle + sweep, colour, 1, cv2.LINE_AA
        )


def _place_shape(
    rng: np.random.Generator, class_index: int, width: int, height: int
) -> list[np.ndarray] | None:
    """The class's unit contours sized, stretched, rotated and moved fully inside the image.

    Returns:
        contours as (V, 2) float arrays of ``x, y`` image coordinates, or None when the drawn size
        does not fit the image.
    """
    smallest = max(MIN_OBJECT_SIZE, MIN_INPUT_SIZE * max(width, height) / DESIGN_IMGSZ)
    largest = 0.45 * min(width, height)
    size = float(np.exp(rng.uniform(np.log(smallest), np.log(largest))))
    stretch = float(np.exp(rng.uniform(np.log(0.7), np.log(1 / 0.7))))
    angle = rng.uniform(0, 2 * np.pi)
    rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    scale = np.array([np.sqrt(stretch), 1 / np.sqrt(stretch)])
    contours = [(unit * scale) @ rotation for unit in _SHAPES[class_index]()]
    points = np.concatenate(contours)
    extent = float((points.max(0) - points.min(0)).max())
    contours = [c * (size / extent) for c in contours]  # longest side of the drawn box = size
    points = np.concatenate(contours)
    low, high = points.min(0), points.max(0)
    room = np.array([width, height]) - (high - low) - 2  # keep a 1 px margin on each side
    if (room < 0).any():
        return None
    offset = 1 - low + rng.uniform(0, 1, 2) * room
    return [c + offset for c in contours]


def _coverage(contours: list[np.ndarray], origin: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) uint8 share (0-255) of each pixel of a window at ``origin`` inside the contours.

    Rasterised at 4x and area-averaged: cv2's own anti-aliasing widens shapes by about half a
    pixel, which would make boxes loose by that much; this keeps the drawn edge where the geometry
    says (within 1/4 px), so a 50% threshold finds the true extent.
    """
    height, width = shape
    fine = np.zeros((height * _SUPERSAMPLE, width * _SUPERSAMPLE), dtype=np.uint8)
    # cv2 puts pixel i's centre at coordinate i; in our continuous frame it is at i + 0.5.
    scale = _SUPERSAMPLE * (1 << _SUBPIXEL_BITS)
    fixed = [
        np.round((c - origin) * scale - (1 << _SUBPIXEL_BITS) / 2).astype(np.int32)
        for c in contours
    ]
    cv2.fillPoly(fine, fixed, 255, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    return cv2.resize(fine, (width, height), interpolation=cv2.INTER_AREA)


def _fill(rng: np.random.Generator, colour: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w, 3) float object texture: flat, stripes, a shading gradient or speckle."""
    kind = int(rng.integers(0, 4))
    if kind == 0:
        return np.broadcast_to(colour, (*shape, 3))
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    along = xs * np.cos(angle) + ys * np.sin(angle)
    if kind == 1:
        modulation = 1 + 0.3 * np.sin(along * 2 * np.pi / rng.uniform(3, 8))
    elif kind == 2:
        modulation = 0.7 + 0.6 * along / max(float(np.ptp(along)), 1.0)
    else:
        modulation = 1 + rng.normal(0, 0.15, shape)
    return np.clip(colour * modulation[..., None], 0, 255)


def _contrasting_colour(rng: np.random.Generator, behind: np.ndarray) -> np.ndarray:
    """A random colour far enough (RGB distance) from the mean colour behind the object."""
    best, best_distance = behind, -1.0
    for _ in range(8):
        colour = random_colour(rng, 0.25)
        distance = float(np.linalg.norm(colour - behind))
        if distance >= 110:
            return colour
        if distance > best_distance:
            best, best_distance = colour, distance
    return best


class _Scene:
    """One image being drawn: pixels, which object is on top where, and each object's box."""

    def __init__(self, image: np.ndarray, max_occlusion: float):
        self.image = image
        self.owner = np.zeros(image.shape[:2], dtype=np.uint8)  # 0 background, i + 1 object i
        self.visible: list[int] = []  # pixels of each object not yet hidden
        self.areas: list[int] = []
        self.boxes: list[list[int]] = []
        self.labels: list[int] = []
        self.max_occlusion = max_occlusion

    def try_add(self, rng: np.random.Generator, contours: list[np.ndarray], label: int) -> bool:
        """Draw the object unless it would hide too much of an earlier one."""
        points = np.concatenate(contours)
        height, width = self.owner.shape
        x0, y0 = np.maximum(np.floor(points.min(0)).astype(int) - 1, 0)
        x1, y1 = np.minimum(np.ceil(points.max(0)).astype(int) + 2, [width, height])
        window = (slice(y0, y1), slice(x0, x1))
        coverage = _coverage(contours, np.array([x0, y0]), (y1 - y0, x1 - x0))
        solid = coverage >= 128
        if not solid.any():
            return False
        hidden = np.bincount(self.owner[window][solid], minlength=len(self.areas) + 1)[1:]
        remaining = np.array(self.visible, dtype=np.int64) - hidden
        if (remaining < (1 - self.max_occlusion) * np.array(self.areas)).any():
            return False
        self._paint(rng, window, coverage)
        self.owner[window][solid] = len(self.areas) + 1
        self.visible = [*remaining.tolist(), int(solid.sum())]
        self.areas.append(int(solid.sum()))
        rows, cols = np.nonzero(solid)
        box = [x0 + cols.min(), y0 + rows.min(), x0 + cols.max() + 1, y0 + rows.max() + 1]
        self.boxes.append([int(v) for v in box])
        self.labels.append(label)
        return True

    def _paint(self, rng: np.random.Generator, window: tuple, coverage: np.ndarray) -> None:
        patch = self.image[window].astype(np.float32)
        alpha = (coverage.astype(np.float32) / 255)[..., None]
        behind = patch[coverage >= 128].mean(0)
        texture = _fill(rng, _contrasting_colour(rng, behind), coverage.shape)
        self.image[window] = np.round(patch * (1 - alpha) + texture * alpha).astype(np.uint8)


def render_detection_image(
    rng: np.random.Generator,
    width: int,
    height: int,
    max_objects: int = 8,
    max_occlusion: float = 0.6,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw one scene of 1..``max_objects`` shapes.

    Returns:
        image: (H, W, 3) uint8 RGB.
        boxes: (N, 4) float32 xyxy tight around each object's drawn pixels (full object, also
            where a later object covers part of it).
        labels: (N,) int64 indices into :data:`CLASS_NAMES`.
    """
    scene = _Scene(_background(rng, width, height), max_occlusion)
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(10):  # a crowded image may refuse a placement; try elsewhere
            label = int(rng.integers(0, len(CLASS_NAMES)))
            contours = _place_shape(rng, label, width, height)
            if contours is not None and scene.try_add(rng, contours, label):
                break
    boxes = np.array(scene.boxes, dtype=np.float32).reshape(-1, 4)
    return scene.image, boxes, np.array(scene.labels, dtype=np.int64)


def _image_size(rng: np.random.Generator, width_range: tuple[int, int]) -> tuple[int, int]:
    width = int(rng.integers(width_range[0], width_range[1] + 1))
    aspect = np.exp(rng.uniform(np.log(ASPECT_RANGE[0]), np.log(ASPECT_RANGE[1])))
    return width, int(round(width * aspect))


def _write_split(
    root: Path, split: str, count: int, first_index: int, width_range: tuple[int, int], seed: int
) -> RecordSet:
    records = []
    for offset in range(count):
        rng = image_rng(seed, split, offset)
        width, height = _image_size(rng, width_range)
        image, boxes, labels = render_detection_image(rng, width, height)
        path = root / "JPEGImages" / f"synth_{first_index + offset:06d}.jpg"
        write_jpeg(path, image)
        records.append(ImageRecord(path, width, height, boxes, labels, image_id=offset))
    return RecordSet(records, list(CLASS_NAMES), root, "voc", split)


def _prepare_folder(root: Path, force: bool) -> None:
    """Refuse to mix into an existing dataset; with ``force`` remove earlier synth files only."""
    existing = [
        path
        for folder in ("JPEGImages", "Annotations")
        if (root / folder).is_dir()
        for path in sorted((root / folder).iterdir())
    ]
    clear_earlier_synth(root, existing, _FILE_PATTERN, force, "in JPEGImages/ or Annotations/")
    for folder in ("JPEGImages", "Annotations"):
        (root / folder).mkdir(parents=True, exist_ok=True)


def synthesize_detection_records(
    out_dir: str | Path,
    n_train: int = 600,
    n_val: int = 150,
    width_range: tuple[int, int] = (256, 400),
    seed: int = 0,
    force: bool = False,
) -> dict[str, RecordSet]:
    """Draw the images into ``out_dir/JPEGImages`` and return their records (no annotations yet).

    Returns:
        ``{"train": RecordSet, "val": RecordSet}``; class names are :data:`CLASS_NAMES`.

    Raises:
        ConfigError: negative counts or an empty / inverted width range.
        DataError: ``out_dir`` already holds images or annotations and ``force`` is False.
    """
    if n_train < 0 or n_val < 0 or n_train + n_val == 0:
        raise ConfigError(f"n_train={n_train}, n_val={n_val}: need >= 0 each and > 0 in total")
    if not 64 <= width_range[0] <= width_range[1]:
        raise ConfigError(f"width_range={width_range}: need 64 <= low <= high")
    root = Path(out_dir).resolve()
    _prepare_folder(root, force)
    return {
        "train": _write_split(root, "train", n_train, 0, width_range, seed),
        "val": _write_split(root, "val", n_val, n_train, width_range, seed),
    }


def synthesize_detection(
    out_dir: str | Path,
    n_train: int = 600,
    n_val: int = 150,
    width_range: tuple[int, int] = (256, 400),
    seed: int = 0,
    force: bool = False,
) -> Path:
    """Write the demo detection dataset as a VOC tree (see the module docstring).

    Args:
        out_dir: the VOC root to create.
        n_train, n_val: images per split (``ImageSets/Main/trainval.txt`` lists both).
        width_range: inclusive range of image widths; heights follow from an aspect in
            :data:`ASPECT_RANGE`.
        seed: same seed, byte-identical files.
        force: replace an earlier synthetic dataset in ``out_dir`` (other files are kept).

    Returns:
        ``out_dir`` as a resolved Path.
    """
    splits = synthesize_detection_records(out_dir, n_train, n_val, width_range, seed, force)
    root = splits["train"].root
    stems = []
    for split, record_set in splits.items():
        write_voc(record_set, root, split=split)
        stems += [record.image_path.stem for record in record_set.records]
    atomic_write_text(root / "ImageSets" / "Main" / "trainval.txt", "\n".join(stems) + "\n")
    return root
