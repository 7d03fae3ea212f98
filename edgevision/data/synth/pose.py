"""The pose demo dataset: articulated figures whose K limb ends are the keypoints, generated.

Why these choices:

- a figure is a body with K limbs whose capped ends are the keypoints, mirror-symmetric so
  ``flip_idx`` is exact, articulated and turned at random (:mod:`.figures`);
- the limb length is log-uniform from 7 px to 28% of the shorter image side: many figures are
  small (about 40% of the boxes are COCO-small, < 32^2);
- occlusion: later figures and unlabelled blobs (one on a limb end of a third of the figures,
  a few anywhere) hide points, which are labelled v = 1 (labelled, hidden); about 8% of figures
  cross the image edge and their points outside it are written ``0, 0, 0`` (not labelled), as
  COCO does;
- clutter: lines and filled shapes that are not figures, and carry no labels;
- every image has its own generator (seed, split, index): same seed, byte-identical files;
- ``pose=FigureSampling(max_turn, min_limb)`` narrows the turn and the smallest limb; the pose
  demo uses :data:`DEMO_FIGURES` (within 20 degrees of upright, limbs from 20 px).

Sigmas (:data:`SIGMA` = 0.05 for every point, written to the JSON): the labels are exact (the drawn
cap centres), so the sigma is not an annotation-noise estimate but how precisely a model is asked
to localise: between COCO's eyes (0.025) and wrists (0.062). With ``area`` the box area, a point
scores OKS 0.5 at 0.12 * sqrt(area) from its label (5 px for a 40 x 40 px figure).

Layout written: ``images/{train,val}/pose_NNNNNN.jpg`` and
``annotations/instances_{train,val}.json`` (COCO keypoints: one category "figure" with the
keypoint names and 1-based skeleton, ``num_keypoints`` per annotation, and ``flip_idx`` and
``kpt_oks_sigmas`` in the JSON's ``"edgevision"`` dict).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgevision.core.errors import ConfigError
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.formats.coco import write_coco
from edgevision.data.formats.keypoint_schema import flip_index
from edgevision.data.synth.common import (
    clear_earlier_synth,
    image_rng,
    random_colour,
    regular_polygon,
    write_jpeg,
)
from edgevision.data.synth.figures import (
    SHIFT,
    Figure,
    FigureLayout,
    draw_figure,
    figure_layout,
    fixed_point,
    random_figure,
    turn_matrix,
)

CLASS_NAME = "figure"
SIGMA = 0.05  # OKS sigma of every point (see the module docstring)
MAX_KEYPOINTS = 33  # 16 pairs: beyond that neighbouring limb ends of a small figure merge
ASPECT_RANGE = (0.75, 4 / 3)  # image height / width
MIN_LIMB = 7.0  # shortest limb, pixels
MAX_LIMB_SHARE = 0.28  # longest limb, share of the shorter image side
TRUNCATED_SHARE = 0.3  # figures placed anywhere, so that some cross the image edge
MAX_BOX_IOU = 0.3  # a figure overlapping another's box more is placed elsewhere


@dataclass(frozen=True)
class FigureSampling:
    """How figures are sized and turned. The defaults are the full task: any angle, limbs from
    :data:`MIN_LIMB` px (many COCO-small figures). ``DEMO_FIGURES`` is the pose demo's easier
    set, chosen by measurement (benchmarks/RESULTS.md, pose): with any angle and 7 px limbs
    nano-s-pose (and YOLO11n-pose) localise no keypoint at sigma 0.05 in 7 CPU minutes; nearly
    upright figures with limbs of 20 px or more reach OKS mAP50 0.52 in the same minutes."""

    max_turn: float = 180.0  # degrees either way from upright; 180: any angle
    min_limb: float = MIN_LIMB  # shortest limb, pixels


DEMO_FIGURES = FigureSampling(max_turn=20.0, min_limb=20.0)
_FILE_PATTERN = re.compile(r"pose_\d{6}\.jpg|instances_(train|val)\.json")
_OCCLUDER = 255  # owner value of unlabelled shapes drawn over figures


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8: a smooth two-colour gradient with blotches, then unlabelled clutter."""
    cell = int(rng.integers(16, 48))
    grid = (height // cell + 2, width // cell + 2)
    grey = rng.uniform(50, 205)
    start, end = grey + rng.uniform(-45, 45, 3), grey + rng.uniform(-45, 45, 3)
    ramp = np.linspace(0, 1, grid[1])[None, :, None] * np.ones((grid[0], 1, 1))
    coarse = start + ramp * (end - start) + rng.normal(0, rng.uniform(8, 28), (*grid, 3))
    image = cv2.resize(coarse.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    image = np.clip(image, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(0, 6))):
        ends = rng.uniform(0, [width, height, width, height]).round().astype(int).tolist()
        cv2.line(image, ends[:2], ends[2:], _colour(rng), int(rng.integers(1, 3)), cv2.LINE_AA)
    for _ in range(int(rng.integers(0, 4))):
        centre = rng.uniform(0, [width, height])
        _blob(rng, image, None, centre, rng.uniform(4, 0.12 * min(width, height)))
    return image


def _colour(rng: np.random.Generator) -> tuple[float, ...]:
    return tuple(float(c) for c in random_colour(rng, 0.25))


def _blob(rng, image: np.ndarray, owner: np.ndarray | None, centre, radius: float) -> None:
    """An unlabelled filled shape (3 to 8 corners, or a disc); marks ``owner`` when given."""
    corners = int(rng.integers(3, 10))
    unit = regular_polygon(24 if corners == 9 else corners) * rng.uniform(0.6, 1.0, 2)
    polygon = [fixed_point(centre + unit @ turn_matrix(rng.uniform(0, 2 * np.pi)) * radius)]
    cv2.fillPoly(image, polygon, _colour(rng), cv2.LINE_AA, SHIFT)
    if owner is not None:
        cv2.fillPoly(owner, polygon, _OCCLUDER, cv2.LINE_8, SHIFT)


def _contrasting(rng: np.random.Generator, behind: np.ndarray) -> np.ndarray:
    """A random colour far (RGB distance) from the mean colour behind the figure."""
    best, best_distance = behind, -1.0
    for _ in range(8):
        colour = random_colour(rng, 0.25)
        distance = float(np.linalg.norm(colour - behind))
        if distance >= 110:
            return colour
        if distance > best_distance:
            best, best_distance = colour, distance
    return best


def _box_iou(box: np.ndarray, boxes: list[np.ndarray]) -> float:
    if not boxes:
        return 0.0
    others = np.array(boxes)
    low, high = np.maximum(box[:2], others[:, :2]), np.minimum(box[2:], others[:, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=1)
    areas = np.prod(others[:, 2:] - others[:, :2], axis=1) + np.prod(box[2:] - box[:2])
    return float((inter / (areas - inter)).max())


def _place(
    rng, layout: FigureLayout, size: tuple[int, int], boxes: list, pose: FigureSampling
) -> tuple | None:
    """(figure, clipped box) somewhere free in the image, or None when this try does not fit."""
    width, height = size
    longest = max(MAX_LIMB_SHARE * min(width, height), pose.min_limb)
    limb = np.exp(rng.uniform(np.log(pose.min_limb), np.log(longest)))
    figure = random_figure(rng, layout, limb, pose.max_turn)
    low, high = figure.extent()
    if rng.uniform() < TRUNCATED_SHARE:
        centre = rng.uniform(0, [width, height])
    else:
        room = np.array([width, height]) - (high - low) - 2
        if (room < 0).any():
            return None
        centre = 1 - low + rng.uniform(0, 1, 2) * room
    figure = figure.moved(centre)
    box = np.clip(np.concatenate([low, high]) + np.tile(centre, 2), 0, [width, height] * 2)
    inside = _inside(figure.tips, size).sum()
    if (box[2:] - box[:2]).min() < 4 or inside < max(1, len(layout.names) // 2):
        return None
    return (figure, box) if _box_iou(box, boxes) <= MAX_BOX_IOU else None


def _inside(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return (points >= 0).all(axis=1) & (points[:, 0] < size[0]) & (points[:, 1] < size[1])


def render_pose_image(
    rng: np.random.Generator,
    width: int,
    height: int,
    layout: FigureLayout,
    max_figures: int = 6,
    pose: FigureSampling = FigureSampling(),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw one scene of 1..``max_figures`` figures (sized and turned as ``pose`` says), then
    occluding blobs.

    Returns:
        image: (H, W, 3) uint8 RGB.
        boxes: (N, 4) float32 xyxy around each whole figure (hidden parts too), clipped.
        keypoints: (N, K, 3) float32 ``x, y, v``: v = 2 seen, 1 hidden by something drawn later,
            0 (at 0, 0) outside the image.
    """
    image = _background(rng, width, height)
    owner = np.zeros((height, width), dtype=np.uint8)
    placed: list[tuple[Figure, np.ndarray]] = []
    for _ in range(int(rng.integers(1, max_figures + 1))):
        boxes = [box for _, box in placed]
        for _attempt in range(10):  # a crowded image may refuse a placement; try elsewhere
            found = _place(rng, layout, (width, height), boxes, pose)
            if found is not None:
                break
        else:
            continue
        figure, box = found
        x0, y0, x1, y1 = box.astype(int)
        behind = image[y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)].reshape(-1, 3).mean(0)
        colour = _contrasting(rng, behind)
        caps = np.where(colour.mean() > 128, colour * 0.45, colour + (255 - colour) * 0.6)
        draw_figure(image, figure, tuple(colour.tolist()), tuple(caps.tolist()), cv2.LINE_AA)
        draw_figure(owner, figure, len(placed) + 1, len(placed) + 1, cv2.LINE_8)
        placed.append((figure, box))
    _occlude(rng, image, owner, [figure for figure, _ in placed])
    keypoints = [_visibility(figure, owner, index + 1) for index, (figure, _) in enumerate(placed)]
    count = len(layout.names)
    boxes = np.array([box for _, box in placed], dtype=np.float64).reshape(-1, 4)
    return (
        image,
        np.round(boxes, 2).astype(np.float32),
        np.array(keypoints, np.float32).reshape(-1, count, 3),
    )


def _occlude(rng, image: np.ndarray, owner: np.ndarray, figures: list[Figure]) -> None:
    """Blobs over the figures: on a random limb end of a third of them, and anywhere."""
    height, width = owner.shape
    for figure in figures:
        if rng.uniform() < 1 / 3:
            tip = figure.tips[int(rng.integers(0, len(figure.tips)))]
            limb = float(np.linalg.norm(figure.tips - figure.centre, axis=1).max())
            _blob(
                rng, image, owner, tip + rng.normal(0, 0.1 * limb, 2), rng.uniform(0.2, 0.35) * limb
            )
    for _ in range(int(rng.integers(0, 3))):
        _blob(
            rng,
            image,
            owner,
            rng.uniform(0, [width, height]),
            rng.uniform(4, 0.1 * min(width, height)),
        )


def _visibility(figure: Figure, owner: np.ndarray, index: int) -> np.ndarray:
    """(K, 3) ``x, y, v`` of one figure from who owns each limb end's pixel."""
    height, width = owner.shape
    tips = np.round(figure.tips, 2)
    inside = _inside(tips, (width, height))
    columns, rows = np.floor(tips[inside]).astype(int).T
    points = np.zeros((len(tips), 3))
    points[inside, :2] = tips[inside]
    points[inside, 2] = np.where(owner[rows, columns] == index, 2, 1)
    return points


def _image_size(rng: np.random.Generator, width_range: tuple[int, int]) -> tuple[int, int]:
    width = int(rng.integers(width_range[0], width_range[1] + 1))
    aspect = np.exp(rng.uniform(np.log(ASPECT_RANGE[0]), np.log(ASPECT_RANGE[1])))
    return width, int(round(width * aspect))


def _draw_split(root: Path, split: str, count: int, first: int, options: dict) -> RecordSet:
    layout, folder = options["layout"], root / "images" / split
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for offset in range(count):
        rng = image_rng(options["seed"], split, offset)
        width, height = _image_size(rng, options["width_range"])
        image, boxes, keypoints = render_pose_image(
            rng, width, height, layout, options["max_figures"], options["pose"]
        )
        path = folder / f"pose_{first + offset:06d}.jpg"
        write_jpeg(path, image)
        points = keypoints if len(boxes) else None
        labels = np.zeros(len(boxes), dtype=np.int64)
        records.append(
            ImageRecord(
                path, width, height, boxes, labels, keypoints=points, image_id=first + offset + 1
            )
        )
    names = list(layout.names)
    return RecordSet(
        records,
        [CLASS_NAME],
        folder,
        "coco",
        split,
        names,
        list(layout.skeleton),
        flip_index(names),
        kpt_sigmas=[SIGMA] * len(names),
    )


def _check_options(
    n_train: int, n_val: int, num_keypoints: int, width_range, max_figures: int
) -> None:
    if n_train < 0 or n_val < 0 or n_train + n_val == 0:
        raise ConfigError(f"n_train={n_train}, n_val={n_val}: need >= 0 each and > 0 in total")
    if not 1 <= num_keypoints <= MAX_KEYPOINTS:
        raise ConfigError(f"num_keypoints={num_keypoints}: choose 1..{MAX_KEYPOINTS}")
    if not 64 <= width_range[0] <= width_range[1]:
        raise ConfigError(f"width_range={width_range}: need 64 <= low <= high")
    if not 1 <= max_figures < _OCCLUDER:
        raise ConfigError(f"max_figures={max_figures}: choose 1..{_OCCLUDER - 1}")


def _prepare_folder(root: Path, force: bool) -> None:
    """Refuse to mix into an existing dataset; with ``force`` remove earlier synth files only."""
    folders = [root / "images" / "train", root / "images" / "val", root / "annotations"]
    existing = [path for folder in folders if folder.is_dir() for path in sorted(folder.iterdir())]
    clear_earlier_synth(root, existing, _FILE_PATTERN, force, "in images/ or annotations/")


def synthesize_pose_records(
    out_dir: str | Path,
    n_train: int = 600,
    n_val: int = 150,
    num_keypoints: int = 5,
    width_range: tuple[int, int] = (256, 400),
    max_figures: int = 6,
    seed: int = 0,
    force: bool = False,
    pose: FigureSampling = FigureSampling(),
) -> dict[str, RecordSet]:
    """Draw the images into ``out_dir/images/{train,val}`` and return their records (no JSON).

    Returns:
        ``{"train": RecordSet, "val": RecordSet}`` with keypoint names, skeleton, ``flip_idx``
        and sigmas; image ids count from 1 across both splits.

    Raises:
        ConfigError: negative counts, K outside 1..:data:`MAX_KEYPOINTS`, a bad width range.
        DataError: ``out_dir`` already holds images or annotations and ``force`` is False.
    """
    _check_options(n_train, n_val, num_keypoints, width_range, max_figures)
    root = Path(out_dir).resolve()
    _prepare_folder(root, force)
    options = {"layout": figure_layout(num_keypoints), "seed": seed}
    options |= {"width_range": width_range, "max_figures": max_figures, "pose": pose}
    return {
        "train": _draw_split(root, "train", n_train, 0, options),
        "val": _draw_split(root, "val", n_val, n_train, options),
    }


def synthesize_pose(
    out_dir: str | Path,
    n_train: int = 600,
    n_val: int = 150,
    num_keypoints: int = 5,
    width_range: tuple[int, int] = (256, 400),
    max_figures: int = 6,
    seed: int = 0,
    force: bool = False,
    pose: FigureSampling = FigureSampling(),
) -> Path:
    """Write the demo pose dataset as COCO keypoints (see the module docstring).

    Args:
        out_dir: the dataset root to create.
        n_train, n_val: images per split.
        num_keypoints: K, keypoints per figure (1..:data:`MAX_KEYPOINTS`).
        width_range: inclusive range of image widths; heights follow from an aspect in
            :data:`ASPECT_RANGE`.
        max_figures: most figures per image (at least one is tried in every image).
        seed: same seed, byte-identical files.
        force: replace an earlier synthetic dataset in ``out_dir`` (other files are kept).
        pose: how figures are sized and turned (:class:`FigureSampling`; the demo's is
            :data:`DEMO_FIGURES`).

    Returns:
        ``out_dir`` as a resolved Path (``data check``, ``train --data`` read it as COCO).
    """
    splits = synthesize_pose_records(
        out_dir, n_train, n_val, num_keypoints, width_range, max_figures, seed, force, pose
    )
    root = splits["train"].root.parent.parent
    for split, record_set in splits.items():
        out_json = root / "annotations" / f"instances_{split}.json"
        write_coco(record_set, out_json, f"images/{split}", copy_images=False, out_root=root)
    return root
