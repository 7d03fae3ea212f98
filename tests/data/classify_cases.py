"""Classification test sets written on disk, shared by the classification data tests."""

from __future__ import annotations

import cv2
import numpy as np


def write_image(path, value: int = 128, size=(40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((size[1], size[0], 3), value, np.uint8)
    image[: size[1] // 2, : size[0] // 2] = 255 - value  # not flat: JPEG and resizes stay honest
    path.write_bytes(cv2.imencode(path.suffix, image)[1].tobytes())


def folder_set(root, counts: dict[str, int]):
    for name, count in counts.items():
        for i in range(count):
            write_image(root / name / f"{name}_{i:03d}.png", value=10 * i % 250)
    return root
