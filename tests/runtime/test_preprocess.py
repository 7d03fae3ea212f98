"""The numpy letterbox twin against the torch-side transforms, pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgevision.data.transforms import letterbox as torch_side_letterbox
from edgevision.ops import unletterbox_boxes as torch_unletterbox
from edgevision.runtime.preprocess import letterbox, to_input, unletterbox_boxes


@pytest.mark.parametrize(
    "height, width, shape",
    [(240, 320, 320), (333, 517, 160), (100, 60, 320), (700, 300, (128, 192)), (64, 64, 64)],
)
def test_letterbox_is_identical_to_the_transforms_letterbox(height, width, shape):
    image = np.random.default_rng(height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    got, ratio, pad = letterbox(image, shape)
    want, want_ratio, want_pad = torch_side_letterbox(image, shape)
    assert (ratio, pad) == (want_ratio, want_pad)
    np.testing.assert_array_equal(got, want)


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


def test_unletterbox_boxes_equals_ops_and_clips():
    boxes = np.random.default_rng(0).uniform(-20, 340, (50, 4)).astype(np.float32)
    got = unletterbox_boxes(boxes, 0.61, (0, 37), (420, 525))
    want = torch_unletterbox(torch.from_numpy(boxes), 0.61, (0, 37), (420, 525)).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
    assert got[:, 0::2].min() >= 0 and got[:, 0::2].max() <= 525 and got[:, 1::2].max() <= 420
