"""Transforms: boxes and keypoints must land on the pixels they describe."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgevision.core.image import GREY, letterbox, letterbox_params
from edgevision.data.datasets.transforms import (
    Sample,
    apply_affine,
    filter_boxes,
    hflip_matrix,
    horizontal_flip,
    hsv_jitter,
    letterbox_matrix,
    letterbox_sample,
    mixup,
    mosaic4,
    random_affine,
    scaling,
    translation,
    warp_image,
)

COLORS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]


def rect_sample(height, width, box, color=(255, 255, 255), label=0, keypoints=None) -> Sample:
    """Black image with one filled rectangle covering integer box pixels [x0, x1) x [y0, y1)."""
    image = np.zeros((height, width, 3), np.uint8)
    x0, y0, x1, y1 = (int(v) for v in box)
    image[y0:y1, x0:x1] = color
    return Sample(image, np.array([box], np.float32), np.array([label]), keypoints)


def color_box(image: np.ndarray, color=(255, 255, 255)) -> np.ndarray | None:
    """Continuous-frame bounding box of the pixels within 60 of ``color`` on every channel."""
    mask = (np.abs(image.astype(np.int16) - np.array(color)) < 60).all(axis=2)
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def test_letterbox_inverse_mapping_returns_original_boxes():
    rng = np.random.default_rng(0)
    image = np.zeros((300, 500, 3), np.uint8)
    out, ratio, pad = letterbox(image, 320)
    assert out.shape == (320, 320, 3)
    assert pad == (0, (320 - round(300 * ratio)) // 2)
    corners = np.sort(rng.uniform(0, 300, (20, 2, 2)), axis=1)  # (x0, y0) <= (x1, y1)
    boxes = corners.reshape(20, 4).astype(np.float32)
    sample = Sample(image, boxes, np.zeros(20, np.int64))
    moved, ratio2, pad2 = letterbox_sample(sample, 320)
    back = (moved.boxes - np.array(pad2 * 2, np.float32)) / ratio2
    np.testing.assert_allclose(back, boxes, atol=1e-4)
    np.testing.assert_allclose(moved.boxes, boxes * ratio + [0, pad[1], 0, pad[1]], atol=1e-4)


def test_letterbox_rectangular_target_and_no_scaleup():
    image = np.full((100, 50, 3), 7, np.uint8)
    out, ratio, pad = letterbox(image, (320, 256), scaleup=False)
    assert out.shape == (320, 256, 3) and ratio == 1.0 and pad == (103, 110)
    assert (out[110:210, 103:153] == 7).all() and out[0, 0, 0] == GREY


def test_letterbox_pixels_follow_the_box():
    sample = rect_sample(300, 500, (100, 40, 260, 200))
    moved, _, _ = letterbox_sample(sample, 320)
    np.testing.assert_allclose(color_box(moved.image), moved.boxes[0], atol=1.0)


def test_warp_matches_opencv_resize_and_flip():
    """Pins the half-pixel convention: continuous-frame matrices reproduce OpenCV exactly."""
    rng = np.random.default_rng(1)
    image = cv2.GaussianBlur(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8), (0, 0), 2)
    flipped = warp_image(image, hflip_matrix(80), (60, 80))
    np.testing.assert_array_equal(flipped, cv2.flip(image, 1))
    resized = warp_image(image, scaling(1.5), (90, 120))
    reference = cv2.resize(image, (120, 90), interpolation=cv2.INTER_LINEAR)
    interior = (slice(1, -1), slice(1, -1))  # edges differ: resize replicates, warp pads grey
    assert np.abs(resized[interior].astype(int) - reference[interior]).max() <= 1


@pytest.mark.parametrize(
    "matrix",
    [
        translation(17, -9),
        scaling(0.6),
        scaling(1.7),
        hflip_matrix(200),
        translation(30, 5) @ scaling(0.8, 1.2),
    ],
    ids=["translate", "shrink", "grow", "flip", "anisotropic"],
)
def test_affine_moves_boxes_with_pixels(matrix):
    sample = rect_sample(160, 200, (40, 30, 120, 90))
    moved = apply_affine(sample, matrix, (160, 200))
    np.testing.assert_allclose(color_box(moved.image), moved.boxes[0], atol=1.5)


@pytest.mark.parametrize("seed", range(5))
def test_random_affine_boxes_match_pixels(seed):
    rng = np.random.default_rng(seed)
    sample = rect_sample(240, 320, (100, 60, 200, 150))
    moved = random_affine(sample, rng, 320, translate=0.1, scale=0.5, fliplr=0.5)
    assert moved.image.shape == (320, 320, 3)
    np.testing.assert_allclose(color_box(moved.image), moved.boxes[0], atol=1.5)


@pytest.mark.parametrize("seed", range(4))
def test_rotated_box_contains_every_white_pixel(seed):
    rng = np.random.default_rng(seed)
    sample = rect_sample(240, 240, (80, 90, 170, 140))
    moved = random_affine(sample, rng, 240, degrees=40, translate=0.0, scale=0.2, shear=5)
    white, box = color_box(moved.image), moved.boxes[0]
    assert (white[:2] >= box[:2] - 1).all() and (white[2:] <= box[2:] + 1).all()
    assert (box[2:] - box[:2] <= (white[2:] - white[:2]) * 1.1 + 2).all()  # not absurdly loose


def _dot_centre(image: np.ndarray) -> np.ndarray:
    weights = np.clip(image[..., 0].astype(np.float64) - GREY, 0, None)  # ignore grey border
    ys, xs = np.mgrid[: image.shape[0], : image.shape[1]]
    return np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum() + 0.5


@pytest.mark.parametrize("seed", range(3))
def test_keypoints_move_with_the_pixels(seed):
    points = np.array([[50.5, 40.5], [130.5, 100.5], [90.5, 70.5]], np.float32)
    for point in points:
        image = np.zeros((160, 200, 3), np.uint8)
        cv2.circle(image, (int(point[0]), int(point[1])), 2, (255, 255, 255), -1)
        keypoints = np.array([[[*point, 2.0]]], np.float32)
        sample = Sample(image, np.array([[20, 20, 180, 140]], np.float32), np.array([0]), keypoints)
        moved = random_affine(sample, np.random.default_rng(seed), 192, degrees=20, fliplr=0.5)
        assert moved.keypoints[0, 0, 2] == 2.0
        np.testing.assert_allclose(_dot_centre(moved.image), moved.keypoints[0, 0, :2], atol=0.6)


def test_keypoints_leaving_the_image_become_invisible():
    keypoints = np.array([[[10, 10, 2], [90, 50, 1]]], np.float32)
    sample = Sample(
        np.zeros((100, 100, 3), np.uint8),
        np.array([[0, 0, 100, 100]], np.float32),
        np.array([0]),
        keypoints,
    )
    moved = apply_affine(sample, translation(-30, 0), (100, 100))
    np.testing.assert_array_equal(moved.keypoints[0], [[0, 0, 0], [60, 50, 1]])


def test_flip_mirrors_boxes_and_swaps_left_right_keypoints():
    keypoints = np.array(
        [[[10, 20, 2], [30, 20, 1], [0, 0, 0]]], np.float32
    )  # left, right, unlabelled
    sample = Sample(
        np.zeros((50, 100, 3), np.uint8),
        np.array([[5, 10, 40, 30]], np.float32),
        np.array([3]),
        keypoints,
    )
    flipped = horizontal_flip(sample, flip_idx=[1, 0, 2])
    np.testing.assert_array_equal(flipped.boxes, [[60, 10, 95, 30]])
    np.testing.assert_array_equal(flipped.keypoints[0], [[70, 20, 1], [90, 20, 2], [0, 0, 0]])
    via_affine = random_affine(
        sample,
        np.random.default_rng(0),
        (50, 100),
        translate=0,
        scale=0,
        fliplr=1.0,
        flip_idx=[1, 0, 2],
    )
    np.testing.assert_allclose(via_affine.keypoints[0], flipped.keypoints[0], atol=1e-4)
    np.testing.assert_allclose(via_affine.boxes, flipped.boxes, atol=1e-4)


def test_visible_area_rule():
    boxes = np.array(
        [
            [-90, 10, 10, 40],  # 10% inside: dropped
            [-50, 10, 50, 40],  # 50% inside: kept, clipped
            [10, 10, 11.5, 40],  # 1.5 px wide: dropped
            [10, 10, 95, 13],  # aspect 28: dropped
            [20, 20, 60, 60],  # kept unchanged
        ],
        np.float32,
    )
    sample = Sample(np.zeros((100, 100, 3), np.uint8), boxes, np.arange(5))
    kept = filter_boxes(sample)
    np.testing.assert_array_equal(kept.labels, [1, 4])
    np.testing.assert_array_equal(kept.boxes, [[0, 10, 50, 40], [20, 20, 60, 60]])


@pytest.mark.parametrize("seed", range(6))
def test_mosaic_boxes_inside_and_on_their_pixels(seed):
    rng = np.random.default_rng(seed)
    samples = []
    for i, color in enumerate(COLORS):
        height, width = rng.integers(200, 321, 2)
        x0, y0 = rng.integers(10, 80, 2)
        samples.append(rect_sample(height, width, (x0, y0, x0 + 90, y0 + 70), color, label=i))
    canvas = mosaic4(samples, 320, rng)
    assert canvas.image.shape == (640, 640, 3)
    out = random_affine(canvas, rng, 320, translate=0.1, scale=0.3, fliplr=0.5)
    assert ((out.boxes >= 0) & (out.boxes <= 320)).all()
    for box, label in zip(out.boxes, out.labels, strict=True):
        np.testing.assert_allclose(color_box(out.image, COLORS[label]), box, atol=1.5)
    for label, color in enumerate(COLORS):  # a mostly visible rectangle keeps its box
        seen = color_box(out.image, color)
        if seen is not None and np.prod(seen[2:] - seen[:2]) > 0.5 * 90 * 70 * 0.7**2:
            assert label in out.labels


def test_mixup_concatenates_and_blends():
    a = rect_sample(64, 64, (0, 0, 10, 10), label=1)
    b = rect_sample(64, 64, (20, 20, 40, 40), label=2)
    b.image[:] = 200
    mixed = mixup(a, b, np.random.default_rng(0))
    np.testing.assert_array_equal(mixed.labels, [1, 2])
    np.testing.assert_array_equal(mixed.boxes, np.concatenate([a.boxes, b.boxes]))
    assert 60 < mixed.image[50, 50, 0] < 140  # ~ half of 200


def test_hsv_jitter_is_seeded_and_keeps_grey_hue():
    rng_image = np.random.default_rng(3)
    image = rng_image.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    first = hsv_jitter(image, 0.015, 0.7, 0.4, np.random.default_rng(5))
    second = hsv_jitter(image, 0.015, 0.7, 0.4, np.random.default_rng(5))
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, image)
    grey = np.full((8, 8, 3), 90, np.uint8)
    jittered = hsv_jitter(grey, 0.5, 0.9, 0.0, np.random.default_rng(0))
    np.testing.assert_array_equal(
        jittered, grey
    )  # no saturation: hue and saturation gains are no-ops
    assert hsv_jitter(image, 0, 0, 0, np.random.default_rng(0)) is image


def test_letterbox_matrix_inverse_formula():
    matrix = letterbox_matrix(0.5, (3, 7))
    np.testing.assert_allclose(matrix @ [10, 20, 1], [8, 17, 1])


def test_letterbox_of_a_thin_strip_keeps_at_least_one_pixel():
    ratio, resized, pad = letterbox_params((20, 4000), 64)  # 4000 x 20 image into 64: 0.32 rows
    assert resized == (64, 1)
    assert pad == (0, 31)
    image = np.full((20, 4000, 3), 200, np.uint8)
    out = letterbox(image, 64)[0]
    assert out.shape == (64, 64, 3)
