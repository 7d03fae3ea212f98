"""The embedded classification demo set: one drawn shape per image, generated, never downloaded.

Why these choices:

- the *shape* is the class (circle, cross, square, star, triangle); colour, texture, tilt
  (+/- 30 degrees: upright-ish, as objects in photos are, so a square never becomes a diamond),
  stretch, size (40-80% of the shorter side) and position are random, and the background has
  gradients, blotches and line clutter, so a model must learn shape, not colour or place;
- classes are balanced (image ``i`` has class ``i mod 5``) so top-1 is a fair score;
- image sizes vary (144-224 px wide, aspect 0.8-1.25) so the resize / crop transforms work;
- every image has its own generator seeded by ``(seed, split, index)``: the same seed gives
  byte-identical files, and the train images do not change when ``n_val`` does.

Layout written (torchvision ImageFolder): ``OUT/train/CLASS/synth_NNNNNN.jpg`` and
``OUT/val/CLASS/synth_NNNNNN.jpg``.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from edgevision.core.errors import ConfigError
from edgevision.data.synth.common import (
    SPLIT_CODES,
    clear_earlier_synth,
    image_rng,
    random_colour,
    regular_polygon,
    write_jpeg,
)

CLASS_NAMES = ("circle", "cross", "square", "star", "triangle")
WIDTH_RANGE = (144, 224)
ASPECT_RANGE = (0.8, 1.25)  # height / width
SIZE_RANGE = (0.4, 0.8)  # longest side of the shape, share of the image's shorter side
MAX_TILT = 30.0  # degrees either way: objects are mostly upright, as in photos people label
_FILE_PATTERN = re.compile(r"synth_\d{6}\.jpg")
_SHIFT = 4  # cv2 drawing: vertices at 1/16 pixel


def unit_shape(class_index: int) -> np.ndarray:
    """(V, 2) polygon of class ``class_index`` (index into :data:`CLASS_NAMES`) around the origin."""
    name = CLASS_NAMES[class_index]
    if name == "circle":
        return regular_polygon(48)
    if name == "cross":
        arm = 0.34
        corner = np.array([(arm, -1), (arm, -arm), (1, -arm)])
        quarter_turn = np.array([[0, 1], [-1, 0]])  # (x, y) -> (-y, x)
        return np.concatenate([corner @ np.linalg.matrix_power(quarter_turn, k) for k in range(4)])
    if name == "square":
        return np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)
    if name == "star":
        outer, inner = regular_polygon(5), regular_polygon(10, 0.42)[1::2]
        return np.stack([outer, inner], axis=1).reshape(-1, 2)
    return regular_polygon(3) + np.array([0, 0.25])  # triangle, box centred on the origin


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8: a two-colour gradient with blotches, plus lines and open arcs as clutter."""
    cell = int(rng.integers(10, 40))
    grid_w, grid_h = width // cell + 2, height // cell + 2
    start, end = random_colour(rng, 0.3) * 0.6 + 50, random_colour(rng, 0.3) * 0.6 + 50
    ramp = np.linspace(0, 1, grid_w)[None, :, None] * np.ones((grid_h, 1, 1))
    coarse = start + ramp * (end - start) + rng.normal(0, rng.uniform(5, 25), (grid_h, grid_w, 3))
    image = cv2.resize(coarse.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    image = np.clip(image, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        image = np.ascontiguousarray(image[:, ::-1])
    for _ in range(int(rng.integers(0, 5))):
        points = rng.integers(0, [width, height, width, height])
        colour = tuple(float(c) for c in random_colour(rng, 0.3))
        cv2.line(
            image, tuple(map(int, points[:2])), tuple(map(int, points[2:])), colour, 1, cv2.LINE_AA
        )
    for _ in range(int(rng.integers(0, 3))):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(6, 40)), int(rng.integers(6, 40)))
        begin = float(rng.uniform(0, 360))
        colour = tuple(float(c) for c in random_colour(rng, 0.3))
        cv2.ellipse(
            image, centre, axes, 0, begin, begin + rng.uniform(40, 200), colour, 1, cv2.LINE_AA
        )
    return image


def _placed_polygon(
    rng: np.random.Generator, class_index: int, width: int, height: int
) -> np.ndarray:
    """The class's polygon rotated, stretched, sized and moved fully inside the image: (V, 2)."""
    angle = np.radians(rng.uniform(-MAX_TILT, MAX_TILT))
    rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    stretch = np.exp(rng.uniform(np.log(0.8), np.log(1.25)))
    points = (unit_shape(class_index) * [np.sqrt(stretch), 1 / np.sqrt(stretch)]) @ rotation
    size = rng.uniform(*SIZE_RANGE) * min(width, height)
    points *= size / (points.max(0) - points.min(0)).max()
    room = np.array([width, height]) - (points.max(0) - points.min(0)) - 2
    return points - points.min(0) + 1 + rng.uniform(0, 1, 2) * np.maximum(room, 0)


def render_classification_image(
    rng: np.random.Generator, class_index: int, width: int, height: int
) -> np.ndarray:
    """One (H, W, 3) uint8 RGB image showing a single shape of class ``class_index``."""
    image = _background(rng, width, height)
    polygon = _placed_polygon(rng, class_index, width, height)
    mask = np.zeros((height, width), np.uint8)
    fixed = np.round(polygon * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(mask, [fixed], 255, lineType=cv2.LINE_AA, shift=_SHIFT)
    behind = image[mask > 127].mean(0) if (mask > 127).any() else image.mean((0, 1))
    colour = max(
        (random_colour(rng, 0.3) for _ in range(6)), key=lambda c: float(np.linalg.norm(c - behind))
    )
    texture = np.broadcast_to(colour, image.shape).astype(np.float32)
    if rng.random() < 0.5:  # stripes: texture must not decide the class either
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 9)
        phase = (xs * np.cos(angle) + ys * np.sin(angle)) * 2 * np.pi / period
        texture = np.clip(texture * (1 + 0.25 * np.sin(phase))[..., None], 0, 255)
    alpha = (mask.astype(np.float32) / 255)[..., None]
    return np.round(image * (1 - alpha) + texture * alpha).astype(np.uint8)


def _prepare_folder(root: Path, force: bool) -> None:
    """Refuse to mix into existing images; with ``force`` remove earlier synth files only."""
    existing = [
        p for split in SPLIT_CODES for p in sorted((root / split).rglob("*")) if p.is_file()
    ]
    clear_earlier_synth(root, existing, _FILE_PATTERN, force, "under train/ or val/")


def _write_split(root: Path, split: str, count: int, first_index: int, seed: int) -> None:
    for offset in range(count):
        rng = image_rng(seed, split, offset)
        class_index = offset % len(CLASS_NAMES)
        width = int(rng.integers(WIDTH_RANGE[0], WIDTH_RANGE[1] + 1))
        height = int(round(width * np.exp(rng.uniform(*np.log(ASPECT_RANGE)))))
        image = render_classification_image(rng, class_index, width, height)
        folder = root / split / CLASS_NAMES[class_index]
        folder.mkdir(parents=True, exist_ok=True)
        write_jpeg(folder / f"synth_{first_index + offset:06d}.jpg", image)


def synthesize_classification(
    out_dir: str | Path, n_train: int = 600, n_val: int = 150, seed: int = 0, force: bool = False
) -> Path:
    """Write the demo classification set (see the module docstring) into ``out_dir``.

    Args:
        out_dir: the dataset folder to create (``train/`` and ``val/`` inside).
        n_train, n_val: images per split, spread evenly over the classes.
        seed: same seed, byte-identical files.
        force: replace an earlier synthetic set in ``out_dir`` (other files are kept).

    Returns:
        ``out_dir`` as a resolved Path.

    Raises:
        ConfigError: negative counts, or none at all.
        DataError: ``out_dir`` already holds files under train/ or val/ and ``force`` is False.
    """
    if n_train < 0 or n_val < 0 or n_train + n_val == 0:
        raise ConfigError(f"n_train={n_train}, n_val={n_val}: need >= 0 each and > 0 in total")
    root = Path(out_dir).resolve()
    _prepare_folder(root, force)
    _write_split(root, "train", n_train, 0, seed)
    _write_split(root, "val", n_val, n_train, seed)
    return root
