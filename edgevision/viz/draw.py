"""Drawing results on images: boxes with labels on filled tags, top-k class lists, image grids."""

from __future__ import annotations

import cv2
import numpy as np

# 20 colours that stay distinguishable on photos (a tab20-like palette, RGB).
PALETTE = np.array(
    [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
        (174, 199, 232),
        (255, 187, 120),
        (152, 223, 138),
        (255, 152, 150),
        (197, 176, 213),
        (196, 156, 148),
        (247, 182, 210),
        (199, 199, 199),
        (219, 219, 141),
        (158, 218, 229),
    ],
    dtype=np.uint8,
)


def color_for(class_index: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in PALETTE[class_index % len(PALETTE)])


def draw_detections(
    image: np.ndarray,
    boxes: np.ndarray,
    classes: np.ndarray,
    scores: np.ndarray | None,
    class_names: list[str],
) -> np.ndarray:
    """A copy of an RGB image with boxes and ``name score`` tags; line width scales with image size."""
    canvas = np.ascontiguousarray(image.copy())
    thickness = max(1, round(sum(canvas.shape[:2]) / 600))
    font_scale = max(0.35, thickness / 3)
    for i, (box, cls) in enumerate(zip(boxes, classes, strict=True)):
        color = color_for(int(cls))
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), color, thickness, cv2.LINE_AA)
        name = class_names[int(cls)] if int(cls) < len(class_names) else str(int(cls))
        text = name if scores is None else f"{name} {float(scores[i]):.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        top = y0 - th - base - 2 if y0 - th - base - 2 >= 0 else y0
        cv2.rectangle(canvas, (x0, top), (x0 + tw + 2, top + th + base + 2), color, -1)
        luminance = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
        ink = (0, 0, 0) if luminance > 150 else (255, 255, 255)
        cv2.putText(
            canvas,
            text,
            (x0 + 1, top + th + 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            ink,
            1,
            cv2.LINE_AA,
        )
    return canvas


def draw_classifications(
    image: np.ndarray, labels: list[str], probabilities: list[float]
) -> np.ndarray:
    """A copy of an RGB image with ``label probability`` lines (best first) on a tag, top left."""
    canvas = np.ascontiguousarray(image.copy())
    font_scale = max(0.35, sum(canvas.shape[:2]) / 1800)
    lines = [f"{label} {p:.2f}" for label, p in zip(labels, probabilities, strict=True)]
    sizes = [cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1) for t in lines]
    step = max((h + base for (_, h), base in sizes), default=0) + 2
    width = max((w for (w, _), _ in sizes), default=0) + 4
    cv2.rectangle(canvas, (0, 0), (width, step * len(lines) + 2), (255, 255, 255), -1)
    for row, text in enumerate(lines):
        origin = (2, step * (row + 1) - 2)
        cv2.putText(
            canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 1, cv2.LINE_AA
        )
    return canvas


def image_grid(images: list[np.ndarray], columns: int = 4, cell: int = 320) -> np.ndarray:
    """Tile RGB images (each fitted into a ``cell`` square, aspect kept) into one grid image."""
    rows = (len(images) + columns - 1) // columns
    grid = np.full((rows * cell, columns * cell, 3), 255, dtype=np.uint8)
    for i, image in enumerate(images):
        scale = cell / max(image.shape[:2])
        h, w = round(image.shape[0] * scale), round(image.shape[1] * scale)
        resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        r, c = divmod(i, columns)
        grid[r * cell : r * cell + h, c * cell : c * cell + w] = resized
    return grid


def draw_keypoints(
    image: np.ndarray,
    keypoints: np.ndarray,
    skeleton: list[tuple[int, int]] | None = None,
    min_score: float = 0.5,
) -> np.ndarray:
    """Points and skeleton edges drawn in place on an RGB image (returned for chaining).

    Args:
        keypoints: (N, K, 3) ``x, y, score`` (a visibility score, or COCO's v for ground truth);
            a point is drawn when its score is at least ``min_score``.
        skeleton: 0-based index pairs; an edge is drawn when both its ends are.
    """
    canvas = image
    points = np.asarray(keypoints, dtype=np.float64).reshape(len(keypoints), -1, 3)
    radius = max(2, round(sum(canvas.shape[:2]) / 400))
    for person in points:
        shown = person[:, 2] >= min_score
        for edge, (a, b) in enumerate(skeleton or []):
            if a < len(person) and b < len(person) and shown[a] and shown[b]:
                start = tuple(int(round(v)) for v in person[a, :2])
                end = tuple(int(round(v)) for v in person[b, :2])
                cv2.line(canvas, start, end, color_for(edge), max(1, radius // 2), cv2.LINE_AA)
        for index in np.flatnonzero(shown):
            center = tuple(int(round(v)) for v in person[index, :2])
            cv2.circle(canvas, center, radius, color_for(index), -1, cv2.LINE_AA)
            cv2.circle(canvas, center, radius, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas
