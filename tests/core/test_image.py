"""The one letterbox and its way back for every result field, and the model input conversion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgevision.core.image import (
    center_crop,
    center_crop_view,
    letterbox,
    letterbox_params,
    to_input,
    unletterbox_boxes,
    unletterbox_keypoints,
    unletterbox_masks,
)


def test_runtime_uses_the_one_letterbox_the_model_was_trained_with():
    """No twin to drift: the device path letterboxes with the training/validation code itself
    (a numpy copy here once missed the thin-strip fix that the training side got)."""
    import edgevision.runtime as runtime
    from edgevision.core import image as shared
    from edgevision.data.datasets import transforms
    from edgevision.runtime import session

    assert runtime.letterbox is shared.letterbox is session.letterbox is transforms.letterbox
    assert letterbox(np.zeros((20, 4000, 3), np.uint8), 64)[0].shape == (64, 64, 3)


def test_to_input_equals_the_predictor_conversion():
    images = [
        np.random.default_rng(i).integers(0, 256, (32, 48, 3), dtype=np.uint8) for i in range(2)
    ]
    want = (
        torch.stack([torch.from_numpy(i.transpose(2, 0, 1).copy()) for i in images])
        .float()
        .div_(255)
    )
    got = to_input(images)
    assert got.dtype == np.float32 and got.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(got, want.numpy())


@pytest.mark.parametrize("orig_hw", [(420, 525), (525, 420), (30, 640)])
def test_every_field_maps_back_to_where_it_was(orig_hw):
    ratio, _, pad = letterbox_params(orig_hw, 320)
    rng = np.random.default_rng(0)
    height, width = orig_hw
    corners = np.sort(rng.uniform(0, 1, (20, 2, 2)), axis=1) * [width, height]  # (x, y) pairs
    boxes = corners.reshape(20, 4)
    boxes = boxes.astype(np.float32)
    forward = boxes * ratio + np.tile(pad, 2)
    np.testing.assert_allclose(unletterbox_boxes(forward, ratio, pad, orig_hw), boxes, atol=1e-3)
    points = np.concatenate([boxes[:, :2], rng.uniform(0, 1, (20, 1))], axis=1)[:, None]
    moved = points.copy()
    moved[..., :2] = points[..., :2] * ratio + pad
    back = unletterbox_keypoints(moved, ratio, pad, orig_hw)
    np.testing.assert_allclose(back, points, atol=1e-3)  # visibility/score carried over


def test_boxes_and_keypoints_outside_the_image_are_clipped():
    boxes = np.array([[-50.0, -5.0, 400.0, 900.0]], np.float32)
    got = unletterbox_boxes(boxes, 0.5, (10, 20), (100, 150))
    np.testing.assert_allclose(got, [[0, 0, 150, 100]])
    points = np.array([[[-40.0, 500.0, 2.0]]], np.float32)
    np.testing.assert_allclose(
        unletterbox_keypoints(points, 0.5, (10, 20), (100, 150)), [[[0, 100, 2]]]
    )


def test_masks_lose_the_padding_and_keep_their_values():
    orig_hw = (60, 100)
    ratio, (resized_w, resized_h), pad = letterbox_params(orig_hw, 80)
    masks = np.zeros((2, 80, 80), np.uint8)
    masks[:, pad[1] : pad[1] + resized_h, pad[0] : pad[0] + resized_w // 2] = [[[1]], [[3]]]
    back = unletterbox_masks(masks, ratio, pad, orig_hw)
    assert back.shape == (2, 60, 100) and back.dtype == np.uint8
    assert set(np.unique(back[1])) == {0, 3}  # class ids, not blends
    assert back[0, :, :48].all() and not back[0, :, 52:].any()  # left half, in original pixels


def test_center_crop_view_is_the_classifiers_val_transform():
    image = np.zeros((100, 300, 3), np.uint8)
    image[:, 140:160] = 255
    view = center_crop_view(image, 64)  # shorter side 73 (64 * 256/224), then the middle 64
    assert view.shape == (64, 64, 3) and view[:, 32].min() == 255 and view[:, 0].max() == 0


def test_center_crop_and_center_crop_view_sizes():
    image = np.arange(6 * 8, dtype=np.uint8).reshape(6, 8, 1).repeat(3, axis=2)
    crop = center_crop(image, 4)
    assert crop[..., 0].tolist() == [
        [10, 11, 12, 13],
        [18, 19, 20, 21],
        [26, 27, 28, 29],
        [34, 35, 36, 37],
    ]
    wide = np.zeros((100, 300, 3), np.uint8)
    wide[:, 140:160] = 255  # a bright bar in the middle survives the centre crop
    out = center_crop_view(wide, 56)  # shorter side to 64 (56 * 256 / 224), then crop 56
    assert out.shape == (56, 56, 3) and out[:, 28].min() == 255 and out[:, 0].max() == 0
