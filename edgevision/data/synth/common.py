"""What every synthetic set shares: unit polygons, colours, JPEG writing, per-image seeds and the
guard that never mixes generated files into a user's dataset."""

from __future__ import annotations

import colorsys
import re
from pathlib import Path

import cv2
import numpy as np

from edgevision.core.errors import DataError

JPEG_QUALITY = 90
SPLIT_CODES = {"train": 0, "val": 1}  # part of each image's seed: keep the numbers fixed


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one image: an image does not change when another split's size does."""
    return np.random.default_rng([seed, SPLIT_CODES[split], index])


def regular_polygon(num_vertices: int, radius: float = 1.0) -> np.ndarray:
    """(V, 2) vertices of a regular polygon around the origin, the first one straight up."""
    angles = np.linspace(0, 2 * np.pi, num_vertices, endpoint=False) - np.pi / 2
    return np.stack([np.cos(angles), np.sin(angles)], axis=1) * radius


def random_colour(rng: np.random.Generator, min_value: float) -> np.ndarray:
    """(3,) RGB float in [0, 255], saturated enough to read as a colour, value >= ``min_value``."""
    hue, saturation, value = rng.uniform(0, 1), rng.uniform(0.35, 1.0), rng.uniform(min_value, 1.0)
    return np.array(colorsys.hsv_to_rgb(hue, saturation, value)) * 255


def write_jpeg(path: Path, image: np.ndarray) -> None:
    """Write (H, W, 3) uint8 RGB as JPEG; imencode + write_bytes works for non-ASCII paths."""
    _, encoded = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    path.write_bytes(encoded.tobytes())


def clear_earlier_synth(
    root: Path, existing: list[Path], pattern: re.Pattern, force: bool, where: str
) -> None:
    """Refuse to write into a folder that already holds files; with ``force`` delete only the
    files an earlier synthesis wrote (``pattern``), never anything else.

    Raises:
        DataError: ``existing`` is not empty and ``force`` is False.
    """
    if existing and not force:
        raise DataError(
            root,
            f"folder already holds {len(existing)} files {where}",
            "choose an empty folder, or pass --force to replace earlier synthetic files",
        )
    for path in existing:
        if pattern.fullmatch(path.name):
            path.unlink()
